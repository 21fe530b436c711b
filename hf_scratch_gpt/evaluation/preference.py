"""Preference evaluation: how well a model ranks the chosen answer of a pair above the rejected one.

DPO's implicit reward of an answer y to a prompt x is `beta * (log pi(y|x) - log ref(y|x))`: how much more likely
the tuned policy makes the answer than the frozen reference model does, where log p(y|x) is the sum of the
log-probabilities of the answer's tokens. On held-out pairs this module reports:

- `reward_accuracy`: the share of pairs whose chosen answer gets the strictly higher reward (TRL's
  `rewards/accuracies`). Before training the policy *is* the reference, every reward is 0 and this is 0 by
  definition, so it only means something after training.
- `reward_margin`: the mean of reward(chosen) - reward(rejected) (TRL's `rewards/margins`), and the mean rewards.
- `likelihood_accuracy`: the share of pairs where the model itself gives the chosen answer the higher
  log-likelihood, log p(chosen|x) > log p(rejected|x). This is what "before" means for the starting (instruction-
  finetuned) model, and the same question lm-evaluation-harness's two-choice task asks (its `acc`).

The log-likelihoods are computed here with a plain forward pass (not TRL's code), so they cross-check TRL.

Usage:

    ref = pair_logps(model, tokenized_pairs, pad_token_id=tokenizer.pad_token_id)   # before training
    ...train...
    policy = pair_logps(model, tokenized_pairs, pad_token_id=tokenizer.pad_token_id)
    metrics = preference_metrics(policy, ref, beta=0.1)
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@dataclass
class PairLogps:
    """Summed log-probabilities of the chosen and rejected answers of each pair (nats), shape (n_pairs,)."""

    chosen: torch.Tensor
    rejected: torch.Tensor


def preference_metrics(policy: PairLogps, reference: PairLogps, beta: float) -> dict[str, float]:
    """Reward accuracy, mean margin and mean rewards of DPO's implicit reward, plus the policy's likelihood ranking.

    >>> policy = PairLogps(torch.tensor([-1.0, -4.0]), torch.tensor([-3.0, -2.0]))
    >>> reference = PairLogps(torch.tensor([-2.0, -3.0]), torch.tensor([-2.0, -2.0]))
    >>> {k: round(v, 4) for k, v in preference_metrics(policy, reference, beta=0.5).items()}
    {'reward_accuracy': 0.5, 'reward_margin': 0.25, 'chosen_reward': 0.0, 'rejected_reward': -0.25, 'likelihood_accuracy': 0.5}
    """
    chosen_rewards = beta * (policy.chosen - reference.chosen)
    rejected_rewards = beta * (policy.rejected - reference.rejected)
    return {
        "reward_accuracy": (chosen_rewards > rejected_rewards).float().mean().item(),
        "reward_margin": (chosen_rewards - rejected_rewards).mean().item(),
        "chosen_reward": chosen_rewards.mean().item(),
        "rejected_reward": rejected_rewards.mean().item(),
        "likelihood_accuracy": likelihood_accuracy(policy),
    }


def likelihood_accuracy(logps: PairLogps) -> float:
    """Share of pairs whose chosen answer is strictly more likely than the rejected one."""
    return (logps.chosen > logps.rejected).float().mean().item()


def answer_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, answer_mask: torch.Tensor):
    """Sum of log p(token | tokens before it) over the positions where `answer_mask` is 1; shape (B,).

    `input_ids`, `attention_mask`, `answer_mask`: (B, T), right-padded. The first token has no prediction, and the
    last is only a target (so T may be the model's context + 1, as in lm-eval).
    """
    logits = model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1]).logits.float()
    log_probs = F.log_softmax(logits, dim=-1)  # (B, T-1, V): predictions of tokens 1..T-1
    token_logps = log_probs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return (token_logps * answer_mask[:, 1:]).sum(-1)


def _batch(sequences: list[tuple[list[int], list[int]]], pad_token_id: int, max_length: int | None):
    """(prompt ids, answer ids) pairs -> right-padded input_ids / attention_mask / answer_mask, each (B, T).

    Sequences longer than `max_length` lose their end, as TRL's collator does (`truncation_mode="keep_start"`).
    """
    rows = [(prompt + answer, [0] * len(prompt) + [1] * len(answer)) for prompt, answer in sequences]
    rows = [(ids[:max_length], mask[:max_length]) for ids, mask in rows]
    length = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    answer_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for row, (ids, mask) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        answer_mask[row, : len(ids)] = torch.tensor(mask)
    return input_ids, attention_mask, answer_mask


def pair_logps(
    model, tokenized, pad_token_id: int, batch_size: int = 16, max_length: int | None = None
) -> PairLogps:
    """Log-likelihoods of the answers of tokenized pairs (`prompt_ids`, `chosen_ids`, `rejected_ids` columns)."""
    prompts = tokenized["prompt_ids"]
    return PairLogps(
        *(
            answers_logps(
                model,
                list(zip(prompts, tokenized[column], strict=True)),
                pad_token_id,
                batch_size,
                max_length,
            )  # fmt: skip
            for column in ("chosen_ids", "rejected_ids")
        )
    )


@torch.no_grad()
def answers_logps(
    model,
    sequences: list[tuple[list[int], list[int]]],
    pad_token_id: int,
    batch_size: int = 16,
    max_length: int | None = None,
) -> torch.Tensor:
    """log p(answer | prompt) for (prompt ids, answer ids) pairs, in batches; shape (len(sequences),)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for start in tqdm(range(0, len(sequences), batch_size), desc="scoring answers"):
        tensors = _batch(sequences[start : start + batch_size], pad_token_id, max_length)
        scores.append(answer_logps(model, *(t.to(device) for t in tensors)).cpu())
    model.train(was_training)
    return torch.cat(scores)
