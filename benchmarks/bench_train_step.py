"""Training-step throughput and peak memory: ScratchGPT vs transformers' GPT2LMHeadModel, same config and weights.

One step = forward with labels + backward + AdamW step (fused, the Trainer's default optimizer) on a batch of
8 x 256 tokens of a 6-layer, 6-head, 384-wide GPT with an 8192-token vocabulary (about 14M parameters). Both
models always run the same settings: fp32 or bf16 autocast, dropout 0.0 or 0.1 (GPT-2's default), eager or
under `torch.compile` (what a user who wants speed picks; inductor on CPU, the first steps compile).

Throughput: the two models alternate within each round (ours, HF, then HF, ours, ...) in one process, so machine
noise hits both alike; the script prints median tokens/s and the ratio ours / HF, with the CPU model. Targets:
eager >= 1.2x in fp32 and bf16 at dropout 0.0 and 0.1; compiled >= 1.1x in bf16.

Peak memory: one step of each model runs under torch.profiler with profile_memory=True, which records every
tensor allocation and free torch makes on the CPU with its size and time. Replaying those events in time order
gives the bytes held by tensors created during the step at each moment; the peak is what the step costs on top of
the weights and optimizer state that existed before it (activations kept for backward, gradients, temporaries).
Allocator caching and Python objects are not counted, so the figure is exact and repeatable, unlike process RSS.
Target: ours <= HF.

    python benchmarks/bench_train_step.py                  # every setting (about 10 minutes on 2 free cores)
    python benchmarks/bench_train_step.py --mode eager --precision bf16 --dropout 0.0 --rounds 2
"""

import argparse
import statistics
import time

import torch
from machine import machine_line
from torch.profiler import ProfilerActivity, profile
from transformers import GPT2Config, GPT2LMHeadModel

from hf_scratch_gpt.model.gpt2 import from_gpt2

SHAPE = dict(
    n_layer=6, n_head=6, n_embd=384, n_positions=256, vocab_size=8192, bos_token_id=0, eos_token_id=0
)
BATCH, CONTEXT = 8, 256


def build(which: str, dropout: float, seed: int = 0) -> torch.nn.Module:
    """HF GPT-2 with random weights, or ScratchGPT converted from it (same weights, same dropout)."""
    torch.manual_seed(seed)
    config = GPT2Config(**SHAPE, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    gpt2 = GPT2LMHeadModel(config)
    return (gpt2 if which == "hf" else from_gpt2(gpt2)).train()


def make_step(model: torch.nn.Module, bf16: bool, compiled: bool):
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    generator = torch.Generator().manual_seed(1)
    batch = torch.randint(0, SHAPE["vocab_size"], (BATCH, CONTEXT), generator=generator)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()

    return step


def peak_step_memory_mib(step) -> float:
    """Peak bytes held by tensors allocated during one step (see the module docstring)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # positive for an allocation, negative for a free
        peak = max(peak, live)
    return peak / 2**20


def measure(
    rounds: int, steps: int, bf16: bool, dropout: float, compiled: bool
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Median tokens/s over interleaved rounds, and peak step memory (eager only), for each model."""
    step_fns = {which: make_step(build(which, dropout), bf16, compiled) for which in ("ours", "hf")}
    for fn in step_fns.values():  # warm-up: compilation, first-call allocations, AdamW state creation
        for _ in range(3 if compiled else 1):
            fn()
    memory = None if compiled else {which: peak_step_memory_mib(fn) for which, fn in step_fns.items()}
    rates: dict[str, list[float]] = {"ours": [], "hf": []}
    for r in range(rounds):
        for which in ("ours", "hf") if r % 2 == 0 else ("hf", "ours"):
            start = time.perf_counter()
            for _ in range(steps):
                step_fns[which]()
            rates[which].append(steps * BATCH * CONTEXT / (time.perf_counter() - start))
    return {which: statistics.median(values) for which, values in rates.items()}, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="interleaved timing rounds per setting")
    parser.add_argument("--steps", type=int, default=2, help="training steps per model per round")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both models")
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.0, 0.1], help="dropout of both models")
    parser.add_argument("--precision", choices=("fp32", "bf16"), nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--mode", choices=("eager", "compile"), nargs="+", default=["eager", "compile"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(machine_line())
    print(
        f"shape {SHAPE}, batch {BATCH} x {CONTEXT} tokens, fused AdamW, {args.threads} threads, "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    for mode in args.mode:
        compiled = mode == "compile"
        # Compiled: bf16 only (the setting a user who compiles for speed picks); eager: every precision and dropout.
        for precision in ["bf16"] if compiled else args.precision:
            for dropout in args.dropout:
                rates, memory = measure(args.rounds, args.steps, precision == "bf16", dropout, compiled)
                target = 1.1 if compiled else 1.2
                speed = rates["ours"] / rates["hf"]
                label = f"{mode} {precision} dropout {dropout}"
                print(
                    f"[{label}] tokens/s: ours {rates['ours']:.0f}, HF GPT-2 {rates['hf']:.0f}, ratio "
                    f"{speed:.2f}x (target >= {target}x: {'OK' if speed >= target else 'BELOW'})",
                    flush=True,
                )
                if memory is not None:
                    mem = memory["ours"] / memory["hf"]
                    print(
                        f"[{label}] peak step memory: ours {memory['ours']:.0f} MiB, HF GPT-2 "
                        f"{memory['hf']:.0f} MiB, ratio {mem:.2f} (target <= 1: {'OK' if mem <= 1 else 'ABOVE'})",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
