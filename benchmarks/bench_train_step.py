"""Training-step throughput and peak memory: ScratchGPT vs transformers' GPT2LMHeadModel, same config and weights.

One step = forward with labels + backward + AdamW step, on a batch of 8 x 256 tokens of a 6-layer, 6-head,
384-wide GPT with an 8192-token vocabulary (about 14M parameters), in fp32 and under bf16 autocast.

Throughput: the two models run in interleaved rounds (ours, HF, HF, ours, ...) in one process, so machine noise
hits both alike; the script prints median tokens/s and the ratio ours / HF. Targets: >= 1.0x fp32, >= 1.2x bf16.

Peak memory: each (model, precision) pair trains a few steps in its own fresh subprocess, and we report the peak
resident set size (ru_maxrss, the kernel's high-water mark of the process's resident memory, which counts every
allocation torch makes on CPU) minus the resident size just before the first step (model built, batch made,
optimizer created but its state still empty). That difference is what a training step adds on top of the weights:
activations kept for backward, gradients, AdamW's two moment buffers, temporaries. Target: ours <= HF.

    python benchmarks/bench_train_step.py                 # full run (a few minutes on 2 cores)
    python benchmarks/bench_train_step.py --rounds 2 --steps 1   # quick look
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hf_scratch_gpt.convert import from_gpt2

CONFIG = dict(n_layer=6, n_head=6, n_embd=384, n_positions=256, vocab_size=8192, bos_token_id=0, eos_token_id=0)
BATCH, CONTEXT = 8, 256


def build(which: str, seed: int = 0) -> torch.nn.Module:
    """HF GPT-2 with random weights, or ScratchGPT converted from it (same weights, same dropout)."""
    torch.manual_seed(seed)
    gpt2 = GPT2LMHeadModel(GPT2Config(**CONFIG))
    return (gpt2 if which == "hf" else from_gpt2(gpt2)).train()


def make_step(model: torch.nn.Module, bf16: bool):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, CONFIG["vocab_size"], (BATCH, CONTEXT), generator=torch.Generator().manual_seed(1))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()

    return step


def throughput(rounds: int, steps: int, bf16: bool) -> dict[str, float]:
    """Median tokens/s of each model over interleaved rounds."""
    steps_fn = {which: make_step(build(which), bf16) for which in ("ours", "hf")}
    for fn in steps_fn.values():  # warm-up: first-call allocations, AdamW state creation
        fn()
    rates: dict[str, list[float]] = {"ours": [], "hf": []}
    for r in range(rounds):
        order = ("ours", "hf") if r % 2 == 0 else ("hf", "ours")
        for which in order:
            start = time.perf_counter()
            for _ in range(steps):
                steps_fn[which]()
            rates[which].append(steps * BATCH * CONTEXT / (time.perf_counter() - start))
    return {which: statistics.median(values) for which, values in rates.items()}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure_memory_child(which: str, bf16: bool, steps: int) -> None:
    """Runs in a fresh subprocess: prints the step's peak RSS above the pre-step baseline, in MiB."""
    step = make_step(build(which), bf16)
    before = rss_mib()
    for _ in range(steps):
        step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"peak_above_baseline_mib": peak - before}))


def peak_memory(which: str, bf16: bool, threads: int) -> float:
    command = [sys.executable, __file__, "--memory-child", which, "--threads", str(threads)]
    if bf16:
        command.append("--bf16")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_above_baseline_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="interleaved timing rounds per precision")
    parser.add_argument("--steps", type=int, default=2, help="training steps per model per round")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both models")
    parser.add_argument("--skip-memory", action="store_true", help="only measure throughput")
    parser.add_argument("--memory-child", choices=("ours", "hf"), help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.memory_child:
        measure_memory_child(args.memory_child, args.bf16, steps=2)
        return

    print(f"config {CONFIG}, batch {BATCH} x {CONTEXT} tokens, {args.threads} threads")
    for precision, bf16 in (("fp32", False), ("bf16 autocast", True)):
        rates = throughput(args.rounds, args.steps, bf16)
        target = 1.2 if bf16 else 1.0
        ratio = rates["ours"] / rates["hf"]
        print(
            f"[{precision}] train step tokens/s: ours {rates['ours']:.0f}, HF GPT-2 {rates['hf']:.0f}, "
            f"ratio {ratio:.2f}x (target >= {target}x) {'OK' if ratio >= target else 'BELOW TARGET'}"
        )
        if not args.skip_memory:
            ours, hf = peak_memory("ours", bf16, args.threads), peak_memory("hf", bf16, args.threads)
            print(
                f"[{precision}] peak memory of a step above baseline: ours {ours:.0f} MiB, HF GPT-2 {hf:.0f} MiB, "
                f"ratio {ours / hf:.2f} (target <= 1) {'OK' if ours <= hf else 'ABOVE TARGET'}"
            )


if __name__ == "__main__":
    main()
