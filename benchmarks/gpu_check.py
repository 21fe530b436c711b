"""GPU check: ScratchGPT vs transformers' GPT2LMHeadModel (same weights) at GPT-2 small size (124M) on an NVIDIA
GPU; the same code runs on a CPU at a toy size with `--tiny` (tests/test_benchmarks.py does).

1. Training step (forward with labels + backward + AdamW) under bf16 autocast, tokens/s ours / HF, eager and
   under `torch.compile` (both models the same settings, dropout `--dropout`).
2. Attention implementations against eager on a batch with left padding: "sdpa" always; on a GPU also
   "flex_attention", and "flash_attention_2" / "flash_attention_3" when installed (those need half precision, so the check is theirs in bf16 vs eager
   in fp32 being no further off than eager in bf16 is: the bf16 rounding, nothing more).
3. Greedy `generate()`, batch 1: tokens identical ours vs HF, and new tokens/s ours / HF.

The two models alternate within each round (ours, HF, then HF, ours, ...), so machine noise hits both alike;
figures are medians, and every figure line names the device. A failed check (tokens or logits differ) exits 1
after printing everything.

    python benchmarks/gpu_check.py                          # on a GPU machine: 124M, batch 8 x 1024
    python benchmarks/gpu_check.py --tiny --no_compile      # smoke run on a CPU
"""

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from machine import cpu_model, machine_line
from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.gpt2 import to_gpt2
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM


@dataclass(frozen=True)
class Size:
    config: dict
    batch: int
    context: int
    prompt_tokens: int
    new_tokens: int


GPT2_SMALL = Size(
    config=dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257),
    batch=8, context=1024, prompt_tokens=64, new_tokens=256,
)  # fmt: skip
TINY = Size(
    config=dict(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=128),
    batch=2, context=32, prompt_tokens=8, new_tokens=8,
)  # fmt: skip


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {cpu_model()}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_rates(
    runs: dict[str, Callable[[], None]], work: float, rounds: int, device
) -> dict[str, float]:
    """Median of work / seconds per run over `rounds`, alternating the order of the runs every round."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name in list(runs) if r % 2 == 0 else list(reversed(runs)):
            sync(device)
            start = time.perf_counter()
            runs[name]()
            sync(device)
            rates[name].append(work / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def build_pair(size: Size, dropout: float, device: torch.device) -> dict[str, torch.nn.Module]:
    """Ours and HF GPT-2 with the same weights (HF's is our export), both on the SDPA kernel."""
    torch.manual_seed(0)
    config = ScratchGPTConfig(
        **size.config,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=None,
        eos_token_id=None,
    )
    ours = ScratchGPTForCausalLM(config)
    hf = to_gpt2(ours)
    for model in (ours, hf):
        model.set_attn_implementation("sdpa")
    return {"ours": ours.to(device), "hf": hf.to(device)}


def train_steps(model, batch: torch.Tensor, steps: int, compiled: bool) -> Callable[[], None]:
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def run() -> None:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(batch.device.type, dtype=torch.bfloat16):
                loss = forward(input_ids=batch, labels=batch).loss
            loss.backward()
            optimizer.step()

    return run


def check_train(size: Size, args, device, compiled: bool) -> str:
    models = {name: model.train() for name, model in build_pair(size, args.dropout, device).items()}
    generator = torch.Generator().manual_seed(1)
    batch = torch.randint(0, size.config["vocab_size"], (size.batch, size.context), generator=generator)
    batch = batch.to(device)
    runs = {name: train_steps(model, batch, args.steps, compiled) for name, model in models.items()}
    for run in runs.values():  # warm-up: compilation, AdamW state, allocator
        run()
    rate = interleaved_rates(runs, args.steps * size.batch * size.context, args.rounds, device)
    mode = "compiled" if compiled else "eager"
    return (
        f"train step bf16 {mode}, dropout {args.dropout}: ours/HF = {rate['ours'] / rate['hf']:.2f}x "
        f"(ours {rate['ours']:,.0f}, HF {rate['hf']:,.0f} tokens/s; batch {size.batch} x {size.context}) "
        f"[{device_name(device)}]"
    )


def attention_implementations(device: torch.device) -> list[str]:
    names = ["sdpa"]
    # flex compiles its kernel: a minute of inductor on a CPU for nothing sdpa does not show there
    if device.type == "cuda":
        names.append("flex_attention")
    if device.type == "cuda" and is_flash_attn_2_available():
        names.append("flash_attention_2")
    if device.type == "cuda" and is_flash_attn_3_available():
        names.append("flash_attention_3")
    return names


def check_attention(size: Size, device) -> tuple[list[str], bool]:
    model = build_pair(size, 0.0, device)["ours"].eval()
    by_dtype = {torch.float32: model, torch.bfloat16: copy.deepcopy(model).to(torch.bfloat16)}
    length = min(size.context, 128)
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(0, size.config["vocab_size"], (2, length), generator=generator).to(device)
    mask = torch.ones_like(ids)
    mask[1, : length // 3] = 0  # row 1 is left-padded
    real = mask.bool()  # compare where there are real tokens; padded positions have no defined output

    def logits(implementation: str, dtype: torch.dtype) -> torch.Tensor:
        by_dtype[dtype].set_attn_implementation(implementation)
        with torch.no_grad():
            return by_dtype[dtype](ids, attention_mask=mask).logits[real].float()

    eager32 = logits("eager", torch.float32)
    bf16_rounding = (logits("eager", torch.bfloat16) - eager32).abs().max().item()
    lines, ok = [], True
    for implementation in attention_implementations(device):
        half = implementation.startswith("flash")
        try:
            got = logits(implementation, torch.bfloat16 if half else torch.float32)
        except Exception as err:  # a kernel that fails to run is a failed check, reported with the others
            lines.append(f"attention {implementation}: ERROR {err!r} [{device_name(device)}]")
            ok = False
            continue
        diff = (got - eager32).abs().max().item()
        tolerance = 2 * bf16_rounding + 1e-3 if half else (1e-5 if device.type == "cpu" else 1e-4)
        ok &= diff <= tolerance
        precision = "bf16 vs eager fp32" if half else "fp32"
        lines.append(
            f"attention {implementation} vs eager ({precision}, left padding): max |logit diff| {diff:.2e} "
            f"(tolerance {tolerance:.1e}) {'OK' if diff <= tolerance else 'MISMATCH'} [{device_name(device)}]"
        )
    return lines, ok


def check_generate(size: Size, args, device) -> tuple[str, bool]:
    models = {name: model.eval() for name, model in build_pair(size, 0.0, device).items()}
    generator = torch.Generator().manual_seed(3)
    prompt = torch.randint(0, size.config["vocab_size"], (1, size.prompt_tokens), generator=generator)
    prompt = prompt.to(device)
    settings = dict(
        max_new_tokens=size.new_tokens, min_new_tokens=size.new_tokens, do_sample=False, pad_token_id=0
    )
    with torch.inference_mode():
        tokens = {name: model.generate(prompt, **settings) for name, model in models.items()}  # and warm-up
        same = torch.equal(tokens["ours"], tokens["hf"])
        runs = {
            name: (lambda model=model: model.generate(prompt, **settings)) for name, model in models.items()
        }
        rate = interleaved_rates(runs, size.new_tokens, args.rounds, device)
    return (
        f"generate greedy, batch 1, {size.prompt_tokens} + {size.new_tokens} tokens: tokens identical {same}; "
        f"ours/HF = {rate['ours'] / rate['hf']:.2f}x (ours {rate['ours']:.1f}, HF {rate['hf']:.1f} new tokens/s) "
        f"[{device_name(device)}]"
    ), same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer toy model (CPU smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="training steps per round")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout of both models while training")
    parser.add_argument("--no_compile", action="store_true", help="skip the torch.compile'd training step")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in the equality checks
    size = TINY if args.tiny else GPT2_SMALL

    print(machine_line(), flush=True)
    print(f"device {device_name(device)}; config {size.config}", flush=True)
    for compiled in (False,) if args.no_compile else (False, True):
        print(check_train(size, args, device, compiled), flush=True)
    attention_lines, attention_ok = check_attention(size, device)
    print("\n".join(attention_lines), flush=True)
    generate_line, generate_ok = check_generate(size, args, device)
    print(generate_line, flush=True)
    if not (attention_ok and generate_ok):
        sys.exit("a check failed: see above")


if __name__ == "__main__":
    main()
