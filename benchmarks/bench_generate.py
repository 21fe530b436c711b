"""Greedy generate() speed: ScratchGPT vs transformers' GPT2LMHeadModel (same weights), with each of transformers'
CPU cache settings, and ScratchGPT with and without its KV cache.

Setup: a 6-layer, 6-head, 384-wide GPT, 8192-token vocabulary, context 512; a 64-token prompt, 256 new tokens,
batch 1, greedy, no early stop (no EOS). Settings, the same for both models:
- "dynamic": generate()'s default DynamicCache;
- "static": `cache_implementation="static"`, a preallocated StaticCache (generate() compiles the decoding step with
  it on GPUs only, so on a CPU this runs eager);
- "static+compile": the same, with generate()'s compilation forced on the CPU too (a `CompileConfig` whose
  `_compile_all_devices` flag is set: what a user who wants speed on a CPU would pick).
The runs alternate within each round, so machine noise hits all alike. The script prints median new tokens/s, the
ratio ours / HF for each setting, the target (ours' best / HF GPT-2's best built-in setting, dynamic or
static, >= 1.5x), the same with compilation on both, cache / no cache (target >= 5x), the machine, and checks that
every run produced the same tokens.

    python benchmarks/bench_generate.py                # 3 rounds
    python benchmarks/bench_generate.py --rounds 1     # quick look
"""

import argparse
import statistics
import time

import torch
from machine import machine_line
from transformers import CompileConfig, GPT2Config, GPT2LMHeadModel

from hf_scratch_gpt.model.gpt2 import from_gpt2

CONFIG = dict(
    n_layer=6, n_head=6, n_embd=384, n_positions=512, vocab_size=8192, bos_token_id=None, eos_token_id=None
)
PROMPT_TOKENS, NEW_TOKENS = 64, 256


def cache_settings() -> dict[str, dict]:
    compile_on_cpu = CompileConfig(fullgraph=True)
    compile_on_cpu._compile_all_devices = True  # transformers' switch for compiling generate() off GPUs
    return {
        "dynamic": {},
        "static": {"cache_implementation": "static"},
        "static+compile": {"cache_implementation": "static", "compile_config": compile_on_cpu},
    }


BUILT_IN = ("dynamic", "static")  # what generate() does on a CPU without being told to compile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for all runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    models = {"hf": GPT2LMHeadModel(GPT2Config(**CONFIG)).eval()}
    models["ours"] = from_gpt2(models["hf"]).eval()
    prompt = torch.randint(
        0, CONFIG["vocab_size"], (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(1)
    )
    common = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
    runs = {
        f"{name} {setting}": (lambda m=model, s=extra: m.generate(prompt, **common, **s))
        for setting, extra in cache_settings().items()
        for name, model in models.items()
    }
    runs["ours no cache"] = lambda: models["ours"].generate(prompt, use_cache=False, **common)

    outputs = {name: run() for name, run in runs.items()}  # warm-up (compilation), and the tokens to compare
    reference = outputs["ours dynamic"]
    same = {name: torch.equal(out, reference) for name, out in outputs.items()}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name in list(runs) if r % 2 == 0 else list(reversed(runs)):
            start = time.perf_counter()
            runs[name]()
            rates[name].append(NEW_TOKENS / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}

    print(machine_line())
    print(f"config {CONFIG}, prompt {PROMPT_TOKENS}, new {NEW_TOKENS}, batch 1, greedy, {args.rounds} rounds")
    for name, rate in median.items():
        print(f"{name:>19}: {rate:7.1f} new tokens/s ({1000 / rate:.2f} ms/token), same tokens: {same[name]}")
    for setting in cache_settings():
        print(f"ours / HF GPT-2, {setting}: {median[f'ours {setting}'] / median[f'hf {setting}']:.2f}x")

    def best(name: str, settings) -> str:
        return max((f"{name} {setting}" for setting in settings), key=median.get)

    ours, hf = best("ours", BUILT_IN), best("hf", BUILT_IN)
    ratio = median[ours] / median[hf]
    print(
        f"target, same settings for both: ours' best built-in ({ours}) / HF GPT-2's best built-in ({hf}): "
        f"{ratio:.2f}x (target >= 1.5x) {'OK' if ratio >= 1.5 else 'BELOW TARGET'}"
    )
    every = list(cache_settings())
    print(
        f"every setting, compilation included: ours' best / HF GPT-2's best: "
        f"{median[best('ours', every)] / median[best('hf', every)]:.2f}x"
    )
    print(
        f"ours static+compile / HF GPT-2's best built-in ({hf}): {median['ours static+compile'] / median[hf]:.2f}x "
        "(different settings: what compiling buys on this machine, not a like-for-like ratio)"
    )
    vs_no_cache = median["ours dynamic"] / median["ours no cache"]
    print(
        f"ours cache / no cache: {vs_no_cache:.2f}x (target >= 5x) {'OK' if vs_no_cache >= 5 else 'BELOW TARGET'}"
    )
    print(f"identical tokens across all runs: {all(same.values())}")


if __name__ == "__main__":
    main()
