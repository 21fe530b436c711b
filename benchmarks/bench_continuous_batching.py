"""Continuous batching speed: `generate_batch` (transformers' paged-cache engine, the one behind `transformers serve
--continuous-batching`) on ScratchGPT vs transformers' GPT2LMHeadModel holding the same weights.

Setup (the GPT of bench_train_step.py): 6 layers, 6 heads, 384 wide, 8192-token vocabulary, context 256; 16
prompts of mixed length (8 to 128 tokens), 64 new tokens each, greedy, no early stop. Rounds alternate the two models (ours, HF,
then HF, ours, ...) in one process; the script prints the median of total new tokens/s and the ratio ours / HF
(target >= 1.0x), with the machine. It checks, for both models, that each row of `generate_batch` equals that
row's greedy `generate()`, and that the two models give the same tokens; any mismatch or failed request exits 1.

The paged cache is sized explicitly (`ContinuousBatchingConfig(num_blocks=..., max_batch_tokens=...)`): left to
size itself on a CPU it reserves a share of the machine's memory, which takes most of a minute per call.

    python benchmarks/bench_continuous_batching.py               # 3 rounds
    python benchmarks/bench_continuous_batching.py --tiny --rounds 1   # smoke run (tests/test_benchmarks.py)
"""

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from machine import machine_line
from transformers import ContinuousBatchingConfig, GenerationConfig

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.gpt2 import to_gpt2
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM


@dataclass(frozen=True)
class Setup:
    config: dict
    prompt_lengths: tuple[int, ...]
    new_tokens: int
    page_size: int


FULL = Setup(
    config=dict(n_layer=6, n_head=6, n_embd=384, n_positions=256, vocab_size=8192),
    prompt_lengths=tuple(8 + (120 * i) // 15 for i in range(16)),  # 8 ... 128, mixed order below
    new_tokens=64,
    page_size=64,
)
TINY = Setup(
    config=dict(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=128),
    prompt_lengths=tuple(3 + (21 * i) // 15 for i in range(16)),
    new_tokens=8,
    page_size=16,
)


def make_prompts(setup: Setup) -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(len(setup.prompt_lengths), generator=generator).tolist()  # mixed, not sorted
    vocab = setup.config["vocab_size"]
    return [torch.randint(0, vocab, (setup.prompt_lengths[i],), generator=generator).tolist() for i in order]


def run_batch(model, prompts: list[list[int]], generation_config, cb_config) -> dict[int, list[int]]:
    """generate_batch, as {prompt index: new tokens}; failed requests (logged, not raised, by transformers) exit."""
    results = model.generate_batch(
        prompts, generation_config=generation_config, continuous_batching_config=cb_config, warmup=False
    )
    by_prompt, errors = {}, []
    for result in results.values():
        if result.error is not None:
            errors.append(result.error)
            continue
        by_prompt[prompts.index(list(result.prompt_ids))] = list(result.generated_tokens)
    if errors or len(by_prompt) != len(prompts):
        name = type(model).__name__
        sys.exit(
            f"{name}: {len(errors)} of {len(prompts)} generate_batch requests failed, first error: {errors[:1]}"
        )
    return by_prompt


def greedy_rows(model, prompts: list[list[int]], new_tokens: int) -> dict[int, list[int]]:
    rows = {}
    for i, prompt in enumerate(prompts):
        out = model.generate(
            torch.tensor([prompt]), max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
        )
        rows[i] = out[0, len(prompt) :].tolist()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for all runs")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer toy model (smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    setup = TINY if args.tiny else FULL

    torch.manual_seed(0)
    # no BOS/EOS: every request runs its full new_tokens, so both models do the same work
    ours = ScratchGPTForCausalLM(
        ScratchGPTConfig(**setup.config, bos_token_id=None, eos_token_id=None)
    ).eval()
    hf = to_gpt2(ours).eval()
    models = {"ours": ours, "hf": hf}
    prompts = make_prompts(setup)
    generation_config = GenerationConfig(
        max_new_tokens=setup.new_tokens, min_new_tokens=setup.new_tokens, do_sample=False, eos_token_id=None
    )
    pages = sum(math.ceil((len(p) + setup.new_tokens) / setup.page_size) for p in prompts)
    cb_config = ContinuousBatchingConfig(
        page_size=setup.page_size, num_blocks=pages + len(prompts), max_batch_tokens=sum(map(len, prompts))
    )

    with torch.inference_mode():
        outputs = {
            name: run_batch(model, prompts, generation_config, cb_config) for name, model in models.items()
        }
        reference = {name: greedy_rows(model, prompts, setup.new_tokens) for name, model in models.items()}
        rates: dict[str, list[float]] = {name: [] for name in models}
        for r in range(args.rounds):
            for name in list(models) if r % 2 == 0 else list(reversed(models)):
                start = time.perf_counter()
                run_batch(models[name], prompts, generation_config, cb_config)
                rates[name].append(len(prompts) * setup.new_tokens / (time.perf_counter() - start))

    print(machine_line())
    print(
        f"config {setup.config}, {len(prompts)} prompts of {min(map(len, prompts))}-{max(map(len, prompts))} "
        f"tokens, {setup.new_tokens} new each, greedy, {args.threads} threads, {args.rounds} rounds, "
        f"page size {setup.page_size}, {cb_config.num_blocks} blocks"
    )
    same = {name: outputs[name] == reference[name] for name in models}
    for name in models:
        print(f"{name}: generate_batch rows equal each row's greedy generate(): {same[name]}")
    print(f"ours and HF GPT-2 give the same tokens: {outputs['ours'] == outputs['hf']}")
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in median.items():
        print(f"{name:>5}: {rate:8.1f} new tokens/s in total (generate_batch, median of {args.rounds})")
    ratio = median["ours"] / median["hf"]
    verdict = "OK" if ratio >= 1.0 else "BELOW TARGET"
    print(f"continuous batching ours / HF GPT-2: {ratio:.2f}x (target >= 1.0x) {verdict} [{machine_line()}]")
    if not all(same.values()) or outputs["ours"] != outputs["hf"]:
        sys.exit("token mismatch: see above")


if __name__ == "__main__":
    main()
