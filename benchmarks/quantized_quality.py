"""Does a faster inference setting keep quality? float32 vs bfloat16 vs the two int8 settings on trained models.

The rule a default must pass (hf_scratch_gpt.model.inference) before it may replace float32: it decodes faster (by
at least 5%, beyond the noise of a shared CPU), and it is not worse: held-out perplexity at most 1% above
float32's, exact match on the built-in instruction tasks at most 1 point below float32's, measured here in the
same run as its decode speed. Each setting is what `prepare_for_inference(model, dtype, quantize)` gives, so what
is measured is what the Space and the recipes run.

- perplexity: the pretrained model (`--pretrain`, made by recipes/pretrain.py on the built-in corpus) on the
  held-out text exactly as recipes/pretrain.py splits and packs it: the last 10% of the corpus lines, in blocks
  of the context (float32 reproduces the run's own eval_perplexity);
- exact match: the instruction-finetuned model (`--instruct`, made by recipes/finetune_instruct.py) answering the
  built-in task set's 200 test records (the recipe's split under seed 42) greedily, repetition penalty 1.1, 32
  new tokens at most; also how many answers are identical to float32's;
- speed: greedy batch-1 new tokens/s of the instruction model, interleaved rounds, as a ratio to float32.

    python benchmarks/quantized_quality.py --pretrain outputs/pretrain --instruct outputs/instruct
    python benchmarks/quantized_quality.py --pretrain outputs/pretrain --instruct outputs/instruct --rounds 1
"""

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars of answering and packing would bury the figures

import datasets
import torch
import transformers
from machine import machine_line

from hf_scratch_gpt.data.instruct import prompt_and_reference, to_messages
from hf_scratch_gpt.data.instruct_tasks import (
    DEFAULT_MULTITURN_SHARE,
    DEFAULT_TRAIN_EXAMPLES,
    instruct_task_splits,
)
from hf_scratch_gpt.data.lm import tokenize_and_pack
from hf_scratch_gpt.data.loading import split_off, text_to_dataset
from hf_scratch_gpt.evaluation.instruction import generate_responses, response_metrics
from hf_scratch_gpt.model.gpt2 import load_causal_lm
from hf_scratch_gpt.model.inference import bf16_is_fast, prepare_for_inference, resolve_setting
from scratch_tokenizer.default_corpus import default_corpus_text
from scratch_tokenizer.hf_tokenizer import load_chat_tokenizer

SETTINGS = {
    "fp32": ("float32", "none"),
    "bf16": ("bfloat16", "none"),
    "int8": ("float32", "int8"),  # int8 weights and activations (PyTorch dynamic)
    "int8_weights": ("float32", "int8_weights"),  # torchao weight-only
}
PERPLEXITY_TOLERANCE = 0.01  # relative to float32's
EXACT_MATCH_TOLERANCE = 0.01  # 1 point, absolute
# Decode speed over float32's that counts as faster: round-to-round noise on a shared CPU is about 5%.
FASTER = 1.05
ANSWERS = dict(max_new_tokens=32, repetition_penalty=1.1, no_repeat_ngram_size=0, batch_size=16)


@torch.inference_mode()
def perplexity(model, blocks, batch_size: int = 16) -> float:
    """exp(mean next-token loss) over the held-out blocks (all the same length, so a mean of block means)."""
    losses = []
    for start in range(0, len(blocks), batch_size):
        ids = torch.tensor(blocks[start : start + batch_size]["input_ids"])  # (B, T)
        losses.append(model(input_ids=ids, labels=ids).loss.float().item() * len(ids))
    return math.exp(sum(losses) / len(blocks))


def held_out_blocks(tokenizer, block_size: int, max_blocks: int | None):
    """recipes/pretrain.py's validation blocks of the built-in corpus: its last 10% of lines, no EOS between."""
    held_out = split_off(text_to_dataset(default_corpus_text()), 10.0, shuffle=False)["validation"]
    blocks = tokenize_and_pack(held_out, tokenizer, "text", block_size, append_eos=False, name="validation")
    return blocks.select(range(min(max_blocks, len(blocks)))) if max_blocks else blocks


def decode_rate(model, prompt_ids: torch.Tensor, new_tokens: int) -> float:
    """Greedy new tokens/s for one generate() call of exactly `new_tokens` tokens."""
    start = time.perf_counter()
    model.generate(prompt_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return new_tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pretrain", default="outputs/pretrain", help="recipes/pretrain.py's output folder")
    parser.add_argument(
        "--instruct", default="outputs/instruct", help="recipes/finetune_instruct.py's folder"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for every setting")
    parser.add_argument("--new_tokens", type=int, default=128, help="new tokens per timed generation")
    parser.add_argument("--num_test", type=int, default=200, help="test records answered (at most all)")
    parser.add_argument("--max_blocks", type=int, default=None, help="held-out blocks scored (default: all)")
    # The built-in task set the --instruct model was trained on (the recipe's defaults, seed 42): its test split.
    parser.add_argument("--task_train_examples", type=int, default=DEFAULT_TRAIN_EXAMPLES)
    parser.add_argument("--task_multiturn_share", type=float, default=DEFAULT_MULTITURN_SHARE)
    parser.add_argument("--task_eval_examples", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()

    base_tok = load_chat_tokenizer(args.pretrain)
    base = load_causal_lm(args.pretrain).eval()
    blocks = held_out_blocks(base_tok, base.config.n_positions, args.max_blocks)
    tokenizer = load_chat_tokenizer(args.instruct)
    chat = load_causal_lm(args.instruct).eval()
    n_train, n_eval = args.task_train_examples, args.task_eval_examples
    splits = instruct_task_splits(
        None, n_train, n_eval, n_eval, seed=42, multiturn_share=args.task_multiturn_share
    )
    test = to_messages(splits["test"], "test")
    test = test.select(range(min(args.num_test, len(test))))
    prompts, references = zip(*map(prompt_and_reference, test["messages"]), strict=True)

    results, answers, chats = {}, {}, {}
    for name, (dtype, quantize) in SETTINGS.items():
        scorer, _ = prepare_for_inference(base, dtype, quantize)
        chats[name], _ = prepare_for_inference(chat, dtype, quantize)
        responses = generate_responses(chats[name], tokenizer, list(prompts), list(references), **ANSWERS)
        answers[name] = [r.text for r in responses]
        results[name] = {
            "perplexity": perplexity(scorer, blocks),
            "exact_match": response_metrics(responses)["exact_match"],
        }

    # Decode speed: a test prompt continued for --new_tokens tokens (no EOS stop), settings interleaved.
    prompt = tokenizer.apply_chat_template(list(prompts[0]), add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    new_tokens = min(args.new_tokens, chat.config.n_positions - prompt_ids.shape[1])
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with torch.inference_mode():
        for model in chats.values():
            decode_rate(model, prompt_ids, 4)  # warm-up
        for r in range(args.rounds):
            for name in list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS)):
                rates[name].append(decode_rate(chats[name], prompt_ids, new_tokens))
    speed = {name: statistics.median(values) for name, values in rates.items()}

    where = f" [{machine_line()}]"
    print(machine_line())
    print(
        f"models: {args.pretrain} ({sum(p.numel() for p in base.parameters()):,} parameters) on {len(blocks)} "
        f"held-out blocks of {base.config.n_positions}; {args.instruct} on {len(prompts)} test records; "
        f"decode: batch 1, greedy, {new_tokens} new tokens, {args.rounds} rounds"
    )
    fp32 = results["fp32"]
    for name, figures in results.items():
        ppl_change = figures["perplexity"] / fp32["perplexity"] - 1
        em_change = figures["exact_match"] - fp32["exact_match"]
        same = sum(a == b for a, b in zip(answers[name], answers["fp32"], strict=True))
        keeps = ppl_change <= PERPLEXITY_TOLERANCE and em_change >= -EXACT_MATCH_TOLERANCE  # not worse
        ratio = speed[name] / speed["fp32"]
        verdict = "fp32 itself" if name == "fp32" else (
            ("PASSES" if keeps and ratio >= FASTER else "FAILS") + f" the default rule (quality "
            f"{'kept' if keeps else 'lost'}, {'faster' if ratio >= FASTER else f'not {FASTER}x faster'})"
        )  # fmt: skip
        print(
            f"{name}: perplexity {figures['perplexity']:.3f} ({ppl_change:+.2%}), exact match "
            f"{figures['exact_match']:.1%} ({100 * em_change:+.1f} points), answers identical to fp32 "
            f"{same}/{len(prompts)}, decode {speed[name]:.1f} new tokens/s = {ratio:.2f}x fp32: {verdict}{where}"
        )
    auto = resolve_setting("auto", "none")
    print(f"--dtype auto here: {auto.dtype} (native bf16: {bf16_is_fast()})")


if __name__ == "__main__":
    main()
