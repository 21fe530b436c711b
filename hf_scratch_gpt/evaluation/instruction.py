"""Instruction finetunes evaluated: greedy responses, scored against references, optionally judged.

- `generate_responses`: the model's answer to each conversation's last user turn (batched, left-padded, greedy
  unless told otherwise), with whether the EOS token ended it.
- `response_metrics`: exact match and ROUGE-L F1 (Google's `rouge_score` package) against the references, the
  share of responses that ended with EOS, the mean response length, and a degeneracy check: the share of
  prompts answered by the single most common response (a collapsed model answers everything the same way).
- `judge_responses`: the book's chapter 7 LLM-as-judge, any Hugging Face causal LM rating each response 0-100
  against the reference.

Usage:

    responses = generate_responses(model, tokenizer, conversations, references, max_new_tokens=64)
    metrics = response_metrics(responses)   # {"exact_match": 0.93, "rouge_l": 0.97, "eos_rate": 1.0, ...}
    scores = judge_responses(responses, "Qwen/Qwen2.5-0.5B-Instruct")   # [85.0, None, 40.0, ...]
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


@dataclass
class Response:
    """One generated answer. `num_tokens` counts the new tokens up to and including the EOS token."""

    prompt: str  # the last user turn's text
    text: str  # the answer, special tokens removed, stripped
    reference: str | None  # the expected answer, when the data has one
    ended_with_eos: bool
    num_tokens: int


def context_length(config) -> int:
    """The longest sequence (prompt + new tokens) a causal LM's position embeddings allow."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(
        f"{type(config).__name__} names no context length (n_positions / max_position_embeddings)"
    )


def generate_responses(
    model,
    tokenizer,
    conversations: list[list[dict]],
    references: list[str | None] | None = None,
    *,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    **generate_kwargs,
) -> list[Response]:
    """Answers to each conversation (chat messages ending with the user turn to answer), in input order.

    Rendered with the tokenizer's chat template and a generation prompt; greedy by default (the model's
    generation config supplies the rest, e.g. no_repeat_ngram_size; `generate_kwargs` override both). Prompts
    are batched in order of length and left-padded. A prompt is cut from the left only when it leaves the answer
    less than `answer_room(context, max_new_tokens)` tokens (at most a quarter of the context): a conversation
    that fits is answered whole, however large `max_new_tokens` is; the answer gets the room that is left.
    """
    if references is not None and len(references) != len(conversations):
        raise ValueError(f"{len(references)} references for {len(conversations)} conversations")
    references = references if references is not None else [None] * len(conversations)
    texts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations
    ]
    generated = generate_new_tokens(model, tokenizer, texts, max_new_tokens, batch_size, **generate_kwargs)
    eos = tokenizer.eos_token_id
    responses = []
    for conversation, reference, new in zip(conversations, references, generated, strict=True):
        ended = eos in new
        n_new = new.index(eos) + 1 if ended else len(new)
        text = tokenizer.decode(new[:n_new], skip_special_tokens=True).strip()
        responses.append(Response(conversation[-1]["content"], text, reference, ended, n_new))
    return responses


@torch.no_grad()
def answer_room(context: int, max_new_tokens: int) -> int:
    """Tokens kept free for the answer when a prompt must be cut: `max_new_tokens`, but never more than a quarter
    of the context. Reserving all of `max_new_tokens` (256 by default, the whole context of the project's small
    models) would cut every multi-turn conversation down to half the context before it is answered.

    >>> answer_room(context=256, max_new_tokens=256), answer_room(context=1024, max_new_tokens=32)
    (64, 32)
    """
    return min(max_new_tokens, context // 4)


def generate_new_tokens(
    model,
    tokenizer,
    texts: list[str],
    max_new_tokens: int,
    batch_size: int,
    desc: str = "generating responses",
    **generate_kwargs,
) -> list[list[int]]:
    """The new token ids generated after each text (batched by length, left-padded, cut from the left)."""
    model.eval()
    context = context_length(model.config)
    prompt_budget = context - answer_room(context, max_new_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    settings = {
        "do_sample": False,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": pad,
        **generate_kwargs,
    }
    padding_side, truncation_side = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side = "left"  # batched generation: every prompt ends at the same position
    tokenizer.truncation_side = "left"  # keep the end of a long prompt: the question and the assistant prefix
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    n_cut = sum(len(ids) > prompt_budget for ids in encoded)
    if n_cut:
        logger.warning(
            "%d of %d prompts are longer than %d tokens and are cut from the left",
            n_cut,
            len(texts),
            prompt_budget,
        )
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    results: list[list[int]] = [[] for _ in texts]
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc):
            indices = order[start : start + batch_size]
            inputs = tokenizer(
                [texts[i] for i in indices],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=prompt_budget,
                add_special_tokens=False,
            ).to(model.device)
            prompt_length = inputs["input_ids"].shape[1]  # (B, T) after left padding
            limit = min(max_new_tokens, context - prompt_length)
            output = model.generate(**inputs, max_new_tokens=limit, **settings)  # (B, T + new)
            for index, new in zip(indices, output[:, prompt_length:].tolist(), strict=True):
                results[index] = new
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = padding_side, truncation_side
    return results


def response_metrics(responses: list[Response]) -> dict[str, float]:
    """Exact match and ROUGE-L (where references exist), EOS rate, mean length and the degeneracy share.

    - exact_match: share of responses equal to their reference after stripping surrounding whitespace;
    - rouge_l: mean ROUGE-L F1 (longest common subsequence of words, `rouge_score`'s tokenizer: lowercase,
      letters and digits);
    - eos_rate: share that ended with the EOS token (the rest ran into the token limit);
    - mean_response_tokens: mean of `num_tokens`;
    - most_common_response_share: share of responses equal to the most common one (1 / n at best).
    """
    if not responses:
        raise ValueError("no responses to score")
    n = len(responses)
    metrics = {
        "num_responses": float(n),
        "eos_rate": sum(r.ended_with_eos for r in responses) / n,
        "mean_response_tokens": sum(r.num_tokens for r in responses) / n,
        "most_common_response_share": Counter(r.text for r in responses).most_common(1)[0][1] / n,
    }
    scored = [r for r in responses if r.reference is not None]
    if len(scored) < n:
        logger.warning(
            "%d of %d responses have no reference: exact_match and rouge_l %s",
            n - len(scored),
            n,
            "are computed on the others" if scored else "are skipped",
        )
    if scored:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeL"])
        metrics["exact_match"] = sum(r.text.strip() == r.reference.strip() for r in scored) / len(scored)
        metrics["rouge_l"] = sum(scorer.score(r.reference, r.text)["rougeL"].fmeasure for r in scored) / len(
            scored
        )
    return metrics


# ---------------------------------------------------------------- LLM as judge (the book's chapter 7)

JUDGE_PROMPT = (
    "Given the input `{prompt}` and correct output `{reference}`, score the model response `{response}` on a "
    "scale from 0 to 100, where 100 is the best score. Respond with the integer number only."
)


def judge_prompt(response: Response) -> str:
    return JUDGE_PROMPT.format(prompt=response.prompt, reference=response.reference, response=response.text)


def parse_score(text: str) -> float | None:
    """The first whole number from 0 to 100 in a judge's reply, or None.

    >>> parse_score("Score: 85/100"), parse_score("I'd say 7."), parse_score("no idea"), parse_score("250")
    (85.0, 7.0, None, None)
    """
    for match in re.finditer(r"(?<![\d.])\d{1,3}(?!\d|\.\d)", text):
        value = int(match.group())
        if value <= 100:
            return float(value)
    return None


class JudgeLoadError(RuntimeError):
    """The judge model or its tokenizer could not be loaded."""


def load_judge(name_or_path: str, trust_remote_code: bool = False):
    """(model, tokenizer) of the judge, or JudgeLoadError saying which model and why."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:
        raise JudgeLoadError(
            f"could not load the judge model {name_or_path!r} ({type(err).__name__}: {err}); --judge_model takes "
            "a local folder or a Hub id of a causal language model (online)"
        ) from err
    return model.eval(), tokenizer


@torch.no_grad()
def judge_responses(
    responses: list[Response],
    judge,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 8,
    trust_remote_code: bool = False,
    **generate_kwargs,
) -> list[float | None]:
    """A 0-100 score per response from the judge (a name or path, or a loaded (model, tokenizer) pair).

    The judge answers the book's prompt greedily, through its chat template when it has one (instruction-tuned
    judges) and as plain text plus "Score:" otherwise. Responses without a reference, and replies with no
    number in 0-100, score None.
    """
    model, tokenizer = load_judge(judge, trust_remote_code) if isinstance(judge, str) else judge
    scored = [(i, r) for i, r in enumerate(responses) if r.reference is not None]
    if tokenizer.chat_template:  # an instruction-tuned judge: ask in its chat format
        conversations = [[{"role": "user", "content": judge_prompt(r)}] for _, r in scored]
        texts = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]
    else:
        texts = [f"{judge_prompt(r)}\nScore:" for _, r in scored]
    generated = generate_new_tokens(
        model, tokenizer, texts, max_new_tokens, batch_size, desc="judging responses", **generate_kwargs
    )
    replies = tokenizer.batch_decode(generated, skip_special_tokens=True)
    scores: list[float | None] = [None] * len(responses)
    for (index, _), text in zip(scored, replies, strict=True):
        scores[index] = parse_score(text)
    return scores


def judge_metrics(scores: list[float | None]) -> dict[str, float]:
    """Mean judge score over the parsed replies and the share of replies that held a score."""
    parsed = [s for s in scores if s is not None]
    metrics = {"judge_parsed_rate": len(parsed) / len(scores) if scores else 0.0}
    if parsed:
        metrics["judge_score"] = sum(parsed) / len(parsed)
    return metrics
