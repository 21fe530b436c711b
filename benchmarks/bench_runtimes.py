"""Greedy batch-1 decoding speed of every way to run one model, on the same weights in one run.

Our generate() (fp32, bf16, int8, int8_weights), transformers' GPT-2 (fp32, bf16), CTranslate2 (fp32, int8) and
llama.cpp (f32, q8_0, when built).

Setup per shape: a random ScratchGPT (biases and LayerNorms random too) saved with a byte-level BPE tokenizer of
its vocabulary, then exported the way a user does it: `python -m hf_scratch_gpt.convert --to_gpt2` (for
transformers' GPT2LMHeadModel and CTranslate2's converter) and `--to_gguf --outtype f32|q8_0` (llama.cpp). Our
settings are `prepare_for_inference(model, dtype, quantize)`, what the Space and the recipes run (HF GPT-2 has
no int8 row: see `torch_runs`). A 64-token prompt, exactly --new_tokens new tokens (no EOS stop), every
runtime on --threads threads; the runs alternate within each round, so machine noise hits all alike.

Shapes: "bench" is benchmarks/bench_generate.py's config (6 layers, 6 heads, 384 wide, 8192 vocabulary, about
14M parameters), "gpt2" GPT-2 124M's (12 x 12 x 768, GPT-2's own 50257-token vocabulary from ../shared/data/gpt2),
"tiny" a toy for the smoke test. Printed: the machine, median new tokens/s per runtime, whether its tokens equal
our fp32 greedy ones, its ratio to CTranslate2 int8 (the issue's target: our fastest setting that keeps quality
>= 1x, aim 1.5x; which settings keep quality is benchmarks/quantized_quality.py's measurement), and our bf16 /
HF GPT-2 bf16 (target >= 1.2x).

llama.cpp rows need the binary of benchmarks/llama_cpp_greedy.c (benchmarks/llama_cpp.py builds it); without it
they are skipped with a note. Pass its path with --llama_cpp_bin, or leave it under /tmp/llama_build.

    python benchmarks/bench_runtimes.py                          # both shapes, 3 rounds
    python benchmarks/bench_runtimes.py --shapes bench --rounds 1 --new_tokens 64   # quick look
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import machine_line
from transformers import GPT2LMHeadModel

from hf_scratch_gpt.convert import main as convert
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.inference import prepare_for_inference
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from scratch_tokenizer.bpe import ByteLevelBPE
from scratch_tokenizer.default_corpus import default_corpus_text
from scratch_tokenizer.hf_tokenizer import to_hf_tokenizer
from scratch_tokenizer.train import train_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
GPT2_FILES = REPO_ROOT.parent / "shared" / "data" / "gpt2"
SHAPES = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=300),
    "bench": dict(n_layer=6, n_head=6, n_embd=384, n_positions=512, vocab_size=8192),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257),
}
PROMPT_TOKENS = 64
REFERENCE, CT2_INT8 = "ours fp32", "ctranslate2 int8"
LLAMA_BUILD = Path("/tmp/llama_build")


def tokenizer_for(vocab_size: int):
    """A byte-level BPE of exactly `vocab_size` tokens: GPT-2's own for 50257, else ours trained on the corpus."""
    if vocab_size == 50257:
        if not (GPT2_FILES / "encoder.json").is_file():
            sys.exit(f"error: the gpt2 shape uses GPT-2's vocabulary from {GPT2_FILES}, which is absent")
        return to_hf_tokenizer(
            ByteLevelBPE.from_gpt2_files(GPT2_FILES / "encoder.json", GPT2_FILES / "vocab.bpe")
        )
    tokenizer = train_tokenizer(texts=[default_corpus_text()], vocab_size=vocab_size, show_progress=False)
    if len(tokenizer) != vocab_size:
        sys.exit(f"error: the corpus gave a {len(tokenizer)}-token vocabulary, not {vocab_size}")
    return tokenizer


def random_checkpoint(folder: Path, shape: dict) -> ScratchGPTForCausalLM:
    """A random ScratchGPT of `shape` with its tokenizer, saved to `folder` (biases and LayerNorms random too, so
    every converted tensor matters)."""
    tokenizer = tokenizer_for(shape["vocab_size"])
    eos = tokenizer.eos_token_id
    torch.manual_seed(0)
    model = ScratchGPTForCausalLM(ScratchGPTConfig(**shape, bos_token_id=eos, eos_token_id=eos)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(0.02 * torch.randn_like(param))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def torch_runs(ours, hf, prompt: torch.Tensor, new_tokens: int) -> dict[str, Callable[[], list[int]]]:
    """Our generate() at fp32, bf16 and both int8 settings, HF GPT-2's at fp32 and bf16: callables returning the
    new token ids. (No HF GPT-2 int8: its layers are transformers' Conv1D, not nn.Linear, so neither int8 path
    would quantize more than its LM head.)"""
    common = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    models = {}
    for dtype, quantize, label in (
        ("float32", "none", "fp32"),
        ("bfloat16", "none", "bf16"),
        ("float32", "int8", "int8"),
        ("float32", "int8_weights", "int8_weights"),
    ):
        models[f"ours {label}"] = prepare_for_inference(ours, dtype, quantize)[0]
    models["hf fp32"] = hf
    models["hf bf16"] = copy.deepcopy(hf).to(torch.bfloat16)

    def run(model) -> Callable[[], list[int]]:
        def generate() -> list[int]:
            with torch.inference_mode():
                return model.generate(prompt, **common)[0, prompt.shape[1] :].tolist()

        return generate

    return {name: run(model) for name, model in models.items()}  # fmt: skip


def ctranslate2_runs(gpt2_dir: Path, prompt_ids: list[int], new_tokens: int, threads: int) -> dict:
    """CTranslate2 on the GPT-2 export, converted once, run as float32 and as int8 (quantized at load)."""
    import ctranslate2

    converted = gpt2_dir.parent / "ctranslate2"
    ctranslate2.converters.TransformersConverter(str(gpt2_dir)).convert(str(converted), force=True)
    vocabulary = json.loads((converted / "vocabulary.json").read_text(encoding="utf-8"))
    tokens = [vocabulary[i] for i in prompt_ids]
    runs = {}
    for compute_type, label in (("float32", "fp32"), ("int8", "int8")):
        generator = ctranslate2.Generator(
            str(converted), device="cpu", compute_type=compute_type, intra_threads=threads
        )

        def generate(generator=generator) -> list[int]:
            result = generator.generate_batch(
                [tokens], max_length=new_tokens, min_length=new_tokens, sampling_topk=1,
                include_prompt_in_result=False,
            )  # fmt: skip
            return result[0].sequences_ids[0]

        runs[f"ctranslate2 {label}"] = generate
    return runs


def llama_cpp_binary(given: str | None) -> Path | None:
    """The llama_cpp_greedy binary: --llama_cpp_bin, else the first one under /tmp/llama_build, else None."""
    if given:
        return Path(given)
    found = sorted(LLAMA_BUILD.rglob("llama_cpp_greedy")) if LLAMA_BUILD.is_dir() else []
    return next((path for path in found if path.is_file()), None)


def llama_cpp_runs(binary: Path, checkpoint: Path, work: Path, prompt_ids, new_tokens, threads) -> dict:
    """llama.cpp on our GGUF exports (f32, q8_0); its own timer excludes the model load."""
    runs = {}
    for outtype in ("f32", "q8_0"):
        out = work / f"gguf-{outtype}"
        convert(["--to_gguf", str(checkpoint), "--output_dir", str(out), "--outtype", outtype])
        (gguf,) = out.glob("*.gguf")
        command = [str(binary), str(gguf), str(new_tokens), str(threads), *map(str, prompt_ids)]
        name, env = f"llama.cpp {outtype}", None
        probe = subprocess.run([*command[:2], "1", *command[3:]], capture_output=True)  # one new token
        if probe.returncode < 0:  # killed by a signal (SIGSEGV, SIGILL seen)
            # This llama.cpp's repacked-weight (extra buffer type) path crashes on some CPUs (q8_0 on an Intel
            # Xeon with AMX); without repacking it runs.
            name, env = f"{name} (no repack)", {**os.environ, "LLAMA_NO_EXTRA_BUFTS": "1"}
            print(f"llama.cpp {outtype}: crashed with repacked weights, run without (LLAMA_NO_EXTRA_BUFTS=1)")

        def generate(command=command, env=env) -> tuple[list[int], float]:
            done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600, env=env)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            return result["tokens"], result["seconds"]

        runs[name] = generate
    return runs


def timed(run) -> tuple[list[int], float]:
    """(new tokens, seconds): a runtime that times itself (llama.cpp, excluding its load) returns both."""
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    return result if isinstance(result, tuple) else (result, seconds)


def bench_shape(name: str, args) -> None:
    shape = SHAPES[name]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours = random_checkpoint(work / "checkpoint", shape)
        convert(["--to_gpt2", str(work / "checkpoint"), "--output_dir", str(work / "gpt2")])
        hf = GPT2LMHeadModel.from_pretrained(work / "gpt2").eval()
        prompt_ids = torch.randint(
            0, shape["vocab_size"], (PROMPT_TOKENS,), generator=torch.Generator().manual_seed(1)
        ).tolist()
        prompt = torch.tensor([prompt_ids])
        runs = torch_runs(ours, hf, prompt, args.new_tokens)
        runs |= ctranslate2_runs(work / "gpt2", prompt_ids, args.new_tokens, args.threads)
        binary = llama_cpp_binary(args.llama_cpp_bin)
        note = None
        if binary is None or not binary.is_file():
            note = (
                f"llama.cpp: skipped, no llama_cpp_greedy binary ({args.llama_cpp_bin or LLAMA_BUILD}); "
                "build it with benchmarks/llama_cpp.py"
            )
        else:
            runs |= llama_cpp_runs(
                binary, work / "checkpoint", work, prompt_ids, args.new_tokens, args.threads
            )

        tokens = {run_name: timed(run)[0] for run_name, run in runs.items()}  # warm-up, and the tokens
        rates: dict[str, list[float]] = {run_name: [] for run_name in runs}
        for r in range(args.rounds):
            for run_name in list(runs) if r % 2 == 0 else list(reversed(runs)):
                rates[run_name].append(args.new_tokens / timed(runs[run_name])[1])
    median = {run_name: statistics.median(values) for run_name, values in rates.items()}

    where = f" [{machine_line()}]"
    parameters = sum(p.numel() for p in ours.parameters())
    print(
        f"shape {name} {shape} ({parameters / 1e6:.1f}M parameters): prompt {PROMPT_TOKENS}, "
        f"{args.new_tokens} new tokens, batch 1, greedy, {args.threads} threads, {args.rounds} rounds"
    )
    print(f"{'runtime':>18} | new tokens/s | same tokens as ours fp32 | vs ctranslate2 int8")
    for run_name, rate in median.items():
        same = tokens[run_name] == tokens[REFERENCE]
        print(f"{run_name:>18} | {rate:12.1f} | {str(same):>24} | {rate / median[CT2_INT8]:.2f}x{where}")
    if note:
        print(note)
    fastest = max((n for n in median if n.startswith("ours ")), key=median.get)
    print(
        f"{name}: ours' fastest ({fastest}) / ctranslate2 int8: {median[fastest] / median[CT2_INT8]:.2f}x "
        f"(target >= 1x, aim 1.5x, for a setting that keeps quality: benchmarks/quantized_quality.py){where}"
    )
    ratio = median["ours bf16"] / median["hf bf16"]
    print(
        f"{name}: ours bf16 / HF GPT-2 bf16: {ratio:.2f}x (target >= 1.2x) "
        f"{'OK' if ratio >= 1.2 else 'BELOW TARGET'}{where}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=["bench", "gpt2"])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--new_tokens", type=int, default=256, help="new tokens per generation")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime")
    parser.add_argument(
        "--llama_cpp_bin", help="the llama_cpp_greedy binary (default: found under /tmp/llama_build)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    for name in args.shapes:
        bench_shape(name, args)


if __name__ == "__main__":
    main()
