"""Greedy generate() speed: ScratchGPT vs transformers' GPT2LMHeadModel (same weights), and ScratchGPT with and
without its KV cache.

Setup: a 6-layer, 6-head, 384-wide GPT, 8192-token vocabulary, context 512; a 64-token prompt, 256 new tokens,
batch 1, greedy, no early stop (no EOS). The three runs alternate within each round, so machine noise hits all
alike; the script prints median new tokens/s and the ratios. Targets: ours / HF >= 1.5x, cache / no cache >= 5x.
It also checks that all three produce the same tokens (same weights, greedy).

    python benchmarks/bench_generate.py                # 3 rounds
    python benchmarks/bench_generate.py --rounds 1     # quick look
"""

import argparse
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hf_scratch_gpt.convert import from_gpt2

CONFIG = dict(
    n_layer=6, n_head=6, n_embd=384, n_positions=512, vocab_size=8192, bos_token_id=None, eos_token_id=None
)
PROMPT_TOKENS, NEW_TOKENS = 64, 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for all runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**CONFIG)).eval()
    ours = from_gpt2(hf).eval()
    prompt = torch.randint(
        0, CONFIG["vocab_size"], (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(1)
    )
    settings = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
    runs = {
        "ours": lambda: ours.generate(prompt, use_cache=True, **settings),
        "hf": lambda: hf.generate(prompt, use_cache=True, **settings),
        "ours_no_cache": lambda: ours.generate(prompt, use_cache=False, **settings),
    }

    outputs = {name: run() for name, run in runs.items()}  # warm-up, and the tokens to compare
    same = all(torch.equal(outputs["ours"], out) for out in outputs.values())
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        names = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in names:
            start = time.perf_counter()
            with torch.inference_mode():
                runs[name]()
            rates[name].append(NEW_TOKENS / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}

    print(
        f"config {CONFIG}, prompt {PROMPT_TOKENS}, new {NEW_TOKENS}, batch 1, greedy, {args.threads} threads, "
        f"{args.rounds} rounds"
    )
    print(f"identical tokens across the three runs: {same}")
    for name, rate in median.items():
        print(f"{name:>14}: {rate:7.1f} new tokens/s ({1000 / rate:.2f} ms/token)")
    vs_hf = median["ours"] / median["hf"]
    vs_no_cache = median["ours"] / median["ours_no_cache"]
    print(f"ours / HF GPT-2: {vs_hf:.2f}x (target >= 1.5x) {'OK' if vs_hf >= 1.5 else 'BELOW TARGET'}")
    print(
        f"ours cache / no cache: {vs_no_cache:.2f}x (target >= 5x) {'OK' if vs_no_cache >= 5 else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    main()
