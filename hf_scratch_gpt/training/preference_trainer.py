"""TRL's `DPOTrainer` with the recipes' additions and left-truncated prompts.

`PreferenceTrainer` is hf_scratch_gpt's RecipeTrainer (hf_scratch_gpt.training.trainer) combined with TRL's
DPOTrainer. RecipeTrainer comes first in Python's method order, so its additions hold whatever TRL overrides: the
`--max_train_seconds` wall-clock budget with its time-based learning-rate schedule, checkpoints saved with the KV
cache on, and `end_run()`. Each of its methods ends in `super()`, which reaches DPOTrainer (DPO's loss, metrics,
logging, data preparation) and then transformers' Trainer.

One change to what TRL trains on: TRL 1.16 truncates a pair that exceeds `max_length` at its end
(`truncation_mode="keep_start"`; the left-truncating `"keep_end"` is deprecated) and drops pairs whose prompt alone
fills `max_length`. Here a prompt that leaves no room for its answers loses its *start* instead, so the answers,
which are what DPO compares, keep their tokens, and no pair is lost. TRL 1.16 takes preference data only as text
or messages (it tokenizes them itself, with no way in for ready token ids), so the cut is made in the messages,
before TRL sees them: the first characters of the prompt's content go (whole leading messages first, such as a
system prompt) until the prompt, rendered by the chat template, fits in the tokens that `prompt_budget`
(hf_scratch_gpt.data.preference) allows it. The prompt stays a well-formed turn ("### User:" ... "### Assistant:")
whose content is the end of the original. Only TRL's public API is used: no private TRL method is overridden
(of its public ones, `evaluate` fits the pairs passed to it, and RecipeTrainer's `log` runs before DPOTrainer's).

TRL is an optional dependency: `pip install 'hf_scratch_gpt[trl]'`.

Usage:

    trainer = PreferenceTrainer(model=model, args=dpo_config, train_dataset=pairs["train"],
                                eval_dataset=pairs["validation"], processing_class=tokenizer,
                                peft_config=None, max_train_seconds=300)
    test_pairs = trainer.tokenize_pairs(pairs["test"], "test")  # prompt_ids / chosen_ids / rejected_ids
"""

import json
import logging

from datasets import Dataset, IterableDataset
from trl import DPOTrainer, extract_prompt

from hf_scratch_gpt.data.preference import prompt_budget
from hf_scratch_gpt.training.arguments import length_within_context
from hf_scratch_gpt.training.trainer import RecipeTrainer

logger = logging.getLogger(__name__)

FITTED = "__fitted_to_max_length"  # a temporary column: which pairs had their prompt cut


class PreferenceTrainer(RecipeTrainer, DPOTrainer):
    """RecipeTrainer's time budget, cache-on saves and end_run + DPOTrainer; prompts truncated from the left.

    Takes DPOTrainer's arguments, plus `max_train_seconds` (RecipeTrainer's). Long prompts are cut when `args`
    sets `max_length` and `processing_class` (the tokenizer) is given; otherwise TRL's own handling applies.
    """

    def __init__(
        self,
        model,
        ref_model=None,
        args=None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        *more_args,
        max_train_seconds: float | None = None,
        **kwargs,
    ):
        max_length = getattr(args, "max_length", None)
        if max_length is not None and processing_class is not None and train_dataset is not None:
            # On the main process first: one writer of the datasets cache.
            with args.main_process_first(desc="fitting pairs into max_length"):
                train_dataset = fit_pairs(train_dataset, processing_class, max_length, "train")
                eval_dataset = fit_pairs(eval_dataset, processing_class, max_length, "eval")
        # RecipeTrainer.__init__ -> DPOTrainer.__init__ (tokenizes the pairs) -> Trainer.__init__; then the budget.
        super().__init__(
            model,
            ref_model,
            args,
            data_collator,
            train_dataset,
            eval_dataset,
            processing_class,
            *more_args,
            max_train_seconds=max_train_seconds,
            **kwargs,
        )

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """TRL's evaluate; pairs passed here have their long prompts cut from the left first, as training pairs do.

        A name (str) selects an eval dataset given at construction, which is already fitted.
        """
        given = eval_dataset is not None and not isinstance(eval_dataset, str)
        if given and self.args.max_length is not None:
            with self.args.main_process_first(desc="fitting eval pairs into max_length"):
                eval_dataset = fit_pairs(eval_dataset, self.processing_class, self.args.max_length, "eval")
        return super().evaluate(
            eval_dataset=eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
        )

    def tokenize_pairs(self, dataset: Dataset, name: str) -> Dataset:
        """Pairs tokenized exactly as the training pairs are (prompts cut from the left, then the chat template):
        the pair columns plus `prompt_ids`, `chosen_ids`, `rejected_ids`."""
        tokenizer, max_length = self.processing_class, self.args.max_length
        with self.args.main_process_first(desc=f"tokenizing {name} pairs"):
            if max_length is not None:
                dataset = fit_pairs(dataset, tokenizer, max_length, name)
            else:
                dataset = with_prompt(dataset)
            tokenized = dataset.map(
                pair_token_ids, fn_kwargs={"tokenizer": tokenizer}, desc=f"tokenizing {name} pairs"
            )
            if max_length is not None and self.args.truncation_mode == "keep_start":
                # What TRL does next: a prompt that still fills max_length would leave no answer token to score.
                tokenized = tokenized.filter(lambda ids: len(ids) < max_length, input_columns="prompt_ids")
        return tokenized


# ---------------------------------------------------------------- fitting pairs into max_length, as TRL tokenizes them


def with_prompt(dataset):
    """TRL's preference formats without an explicit `prompt` (the prompt is the start that chosen and rejected
    share) get one, as TRL does itself."""
    first = next(iter(dataset))
    return dataset if "prompt" in first else dataset.map(extract_prompt)


def pair_token_ids(example: dict, tokenizer) -> dict:
    """The token ids TRL's DPOTrainer trains a pair on: `prompt_ids`, `chosen_ids` and `rejected_ids`.

    Messages are rendered with the chat template (the prompt with the assistant header that starts the answer);
    text is tokenized as it is, each answer ending in EOS. An answer's tokens are those after the longest prefix
    that prompt and prompt + answer share (their tokens can differ at the seam).
    """
    chat_kwargs = chat_template_kwargs(example)
    prompt = token_ids(tokenizer, example["prompt"], add_generation_prompt=True, **chat_kwargs)
    answers = {}
    for column in ("chosen", "rejected"):
        answer = example[column]
        if isinstance(answer, str) and not answer.endswith(tokenizer.eos_token):
            answer += tokenizer.eos_token
        answers[column] = token_ids(tokenizer, example["prompt"] + answer, **chat_kwargs)
    shared = min(common_prefix_length(prompt, ids) for ids in answers.values())
    return {
        "prompt_ids": prompt[:shared],
        "chosen_ids": answers["chosen"][shared:],
        "rejected_ids": answers["rejected"][shared:],
    }


def chat_template_kwargs(example: dict) -> dict:
    """The per-pair template arguments TRL passes on: `tools` (a list, or JSON text) and `chat_template_kwargs`."""
    tools = example.get("tools")
    return {
        "tools": json.loads(tools) if isinstance(tools, str) else tools,
        **(example.get("chat_template_kwargs") or {}),
    }


def token_ids(tokenizer, prompt_or_messages, add_generation_prompt: bool = False, **chat_kwargs) -> list[int]:
    if isinstance(prompt_or_messages, str):
        return tokenizer(text=prompt_or_messages)["input_ids"]
    rendered = tokenizer.apply_chat_template(
        prompt_or_messages,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=add_generation_prompt,
        **chat_kwargs,
    )
    return rendered["input_ids"]


def common_prefix_length(ids: list[int], other: list[int]) -> int:
    length = 0
    while length < min(len(ids), len(other)) and ids[length] == other[length]:
        length += 1
    return length


def drop_prompt_start(prompt, n_chars: int):
    """The prompt without the first `n_chars` characters of its content.

    Text loses its first characters. A message list loses whole leading messages while their content is within the
    cut (a message with nothing left would still cost its role header), then the start of the next message's
    content; the last message always stays, possibly empty.
    """
    if isinstance(prompt, str):
        return prompt[n_chars:]
    messages = [dict(message) for message in prompt]
    while len(messages) > 1 and n_chars >= len(messages[0]["content"]):
        n_chars -= len(messages.pop(0)["content"])
    messages[0]["content"] = messages[0]["content"][n_chars:]
    return messages


def prompt_length(tokenizer, prompt, chat_kwargs: dict) -> int:
    return len(token_ids(tokenizer, prompt, add_generation_prompt=True, **chat_kwargs))


def fit_prompt(example: dict, tokenizer, max_length: int) -> dict:
    """The pair with its prompt cut from the left to the tokens `prompt_budget` allows, plus the FITTED flag."""
    ids = pair_token_ids(example, tokenizer)
    longest = max(len(ids["chosen_ids"]), len(ids["rejected_ids"]))
    fits = len(ids["prompt_ids"]) + longest <= max_length
    keep = prompt_budget(len(ids["prompt_ids"]), longest, max_length)
    prompt = example["prompt"]
    if keep >= len(ids["prompt_ids"]):  # fits, or only its answer is too long (TRL cuts that at its end)
        return {"prompt": prompt, FITTED: not fits}

    chat_kwargs = chat_template_kwargs(example)
    contents = [prompt] if isinstance(prompt, str) else [message["content"] for message in prompt]
    # Binary search for the fewest leading characters to drop. `hi` always fits (checked below), `lo` never does;
    # the token count falls as characters go, give or take a token where a cut splits one, and the answer
    # returned is always one that was checked to fit.
    lo, hi = 0, sum(len(content) for content in contents)
    if prompt_length(tokenizer, drop_prompt_start(prompt, hi), chat_kwargs) > keep:
        # Even the template around an empty prompt is over budget (a tiny max_length): keep that much, and TRL
        # cuts the answers at their end.
        return {"prompt": drop_prompt_start(prompt, hi), FITTED: True}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if prompt_length(tokenizer, drop_prompt_start(prompt, mid), chat_kwargs) <= keep:
            hi = mid
        else:
            lo = mid
    return {"prompt": drop_prompt_start(prompt, hi), FITTED: True}


def fit_pairs(dataset, tokenizer, max_length: int, split: str):
    """Cut the start of prompts that leave no room for their answers in `max_length` tokens, with a warning.

    Takes what DPOTrainer takes (a Dataset, an IterableDataset, a dict of them, or None) and returns the same kind,
    with the same columns.
    """
    if dataset is None:
        return None
    if isinstance(dataset, dict):
        return {name: fit_pairs(part, tokenizer, max_length, name) for name, part in dataset.items()}
    dataset = with_prompt(dataset)
    kwargs = {"fn_kwargs": {"tokenizer": tokenizer, "max_length": max_length}}
    if isinstance(dataset, IterableDataset):  # lazy: no count to report
        return dataset.map(fit_prompt, **kwargs).remove_columns(FITTED)
    fitted = dataset.map(fit_prompt, desc=f"fitting {split} pairs into max_length={max_length}", **kwargs)
    too_long = sum(fitted[FITTED])
    if too_long:
        logger.warning(
            "%d of %d %s pairs do not fit in max_length=%d tokens: their prompts were truncated from the left (the "
            "first characters of their content are dropped, so the answers keep their tokens; answers longer than "
            "half the context are also cut at their end)",
            too_long,
            len(fitted),
            split,
            max_length,
        )
    return fitted.remove_columns(FITTED)


# ---------------------------------------------------------------- the shortest max_length that holds a pair


def shortest_pair_length(tokenizer) -> int:
    """The tokens of the shortest preference pair: a one-token prompt and a one-token answer in the chat template,
    counted as the template's own tokens around empty ones (turn headers, separators, the answer's EOS) plus two."""
    empty = [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]
    return len(token_ids(tokenizer, empty)) + 2


def check_max_length(max_length: int | None, tokenizer, context: int) -> None:
    """Refuse a `--max_length` (None: the model's `context`) above the context, or too short for the shortest pair.

    Below `shortest_pair_length` the chat template alone nearly fills max_length: prompts are cut to their bare turn
    headers, TRL drops the pairs whose prompt still fills it and cuts the answers of the rest, down to nothing at
    `--max_length 1` ("cannot reshape tensor of 0 elements" after the whole set-up).
    """
    length = length_within_context("--max_length", max_length, context)
    shortest = shortest_pair_length(tokenizer)
    if length < shortest:
        given = length if max_length is not None else f"{length}, the model's context (n_positions {context})"
        if context >= shortest:
            fix = f"raise --max_length (at most the model's context, {context})"
        else:
            fix = f"the model's context is too short too: start from a model with n_positions >= {shortest}"
        raise ValueError(
            f"--max_length must be >= {shortest}, got {given}: the chat template's turn headers, separators and EOS "
            f"take {shortest - 2} tokens with this tokenizer, so {shortest} is the shortest pair, one prompt token "
            f"and one answer token; {fix}"
        )
