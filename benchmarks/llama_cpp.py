"""llama.cpp itself on our export: build its CPU binaries from the source that the llama-cpp-python sdist vendors,
run the f32 GGUF greedily, check the tokens against our generate() and report new tokens/s. Not run in CI.

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llama_src
    python benchmarks/llama_cpp.py --sdist /tmp/llama_src/llama_cpp_python-0.3.36.tar.gz --build_dir /tmp/llama_build

Steps: extract the sdist (once); cmake-configure llama.cpp for this CPU (`-DGGML_NATIVE=ON`, Release, no tests,
server or network code) and build `llama-simple` with its libllama, timed; compile `llama_cpp_greedy.c` (token
ids in, greedy token ids out) against that libllama; make a random model at the benchmark config with a tokenizer
of ours, export it to f32 GGUF with our `--to_gguf` and with llama.cpp's own converter; check that llama.cpp
tokenizes text as our tokenizer does and that its greedy tokens equal our generate()'s; time both, interleaved.
A second run reuses the build (pass --rebuild to time it again).

For other scripts (benchmarks/bench_runtimes.py): `build_llama_cpp(sdist, build_dir) -> bin_dir` and
`llama_cpp_greedy(bin_dir, gguf, prompt_ids, n_new) -> (tokens, new tokens/s)`; `convert_with_llama_cpp` runs the
vendored converter.

llama.cpp's converter identifies a BPE pre-tokenizer by hashing its tokenization of a fixed text, so it knows a
vocabulary only if its own list has it (GPT-2's is there: an export with GPT-2's vocabulary converts unchanged).
Every vocabulary we train is new to it ("BPE pre-tokenizer was not recognized"), although our pre-tokenizer is
GPT-2's exactly. `convert_with_llama_cpp(..., pre_tokenizer="gpt-2")` then runs the unchanged script in a Python
that answers the converter's pre-tokenizer question with that name, after `check_gguf_tokenizer` has checked
that the tokenizer splits text as GPT-2 does. Our own `--to_gguf` writes the same name without this detour.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

SDIST_ENV = "LLAMA_CPP_PYTHON_SDIST"
SDIST_VERSION = "0.3.36"
HOW_TO_GET = f"pip download --no-deps --no-binary :all: llama-cpp-python=={SDIST_VERSION}"
GREEDY_SOURCE = Path(__file__).with_name("llama_cpp_greedy.c")
# What llama-simple and libllama need: no tests, server, HTTPS or downloads (the machine may be offline).
CMAKE_OPTIONS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
]
TARGETS = ("llama-simple",)


def llama_cpp_source(sdist: str | Path, into: str | Path) -> Path:
    """The llama.cpp folder of the sdist: the .tar.gz extracted under `into` (once), or an extracted sdist folder,
    or a llama.cpp folder itself."""
    sdist = Path(sdist)
    if sdist.is_dir():
        for candidate in (sdist, sdist / "vendor" / "llama.cpp"):
            if (candidate / "convert_hf_to_gguf.py").is_file():
                return candidate
        raise FileNotFoundError(f"{sdist} holds neither vendor/llama.cpp nor convert_hf_to_gguf.py")
    if not sdist.is_file():
        raise FileNotFoundError(f"{sdist} does not exist; get the sdist with: {HOW_TO_GET}")
    into = Path(into)
    done = into / ".extracted"
    if not done.is_file():
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as archive:
            archive.extractall(into, filter="data")
        done.write_text(str(sdist), encoding="utf-8")
    found = sorted(into.glob("*/vendor/llama.cpp/convert_hf_to_gguf.py"))
    if not found:
        raise FileNotFoundError(
            f"{sdist} has no vendor/llama.cpp/convert_hf_to_gguf.py: not a llama-cpp-python sdist"
        )
    return found[0].parent


# Run in a fresh Python: the vendored converter with its own gguf-py, the pre-tokenizer name given.
NAMED_PRE_TOKENIZER = """
import runpy, sys
llama_dir, name = sys.argv[1], sys.argv[2]
sys.path.insert(0, llama_dir)
sys.argv = [llama_dir + "/convert_hf_to_gguf.py", *sys.argv[3:]]
import conversion.base
conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: name
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def convert_with_llama_cpp(
    llama_dir: Path, model_dir: Path, outfile: Path, outtype: str = "f32", pre_tokenizer: str | None = None
) -> subprocess.CompletedProcess:
    """llama.cpp's `convert_hf_to_gguf.py` on a GPT-2 folder, unchanged; with `pre_tokenizer`, its hash lookup of
    the pre-tokenizer is answered with that name (only "gpt-2", after checking the tokenizer splits as GPT-2's)."""
    args = [str(model_dir), "--outfile", str(outfile), "--outtype", outtype]
    if pre_tokenizer is None:
        command = [sys.executable, str(llama_dir / "convert_hf_to_gguf.py"), *args]
    else:
        if pre_tokenizer != "gpt-2":
            raise ValueError(
                f"pre_tokenizer {pre_tokenizer!r}: only 'gpt-2' is checked against our tokenizer"
            )
        from transformers import AutoConfig, AutoTokenizer

        from hf_scratch_gpt.export.gguf_limits import check_gguf_tokenizer

        vocab_size = AutoConfig.from_pretrained(model_dir).vocab_size
        check_gguf_tokenizer(
            AutoTokenizer.from_pretrained(model_dir), vocab_size
        )  # GPT-2's splitting, or raise
        command = [sys.executable, "-c", NAMED_PRE_TOKENIZER, str(llama_dir), pre_tokenizer, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)


def build_llama_cpp(
    sdist: str | Path, build_dir: str | Path, jobs: int = 2, rebuild: bool = False, nice: bool = True
) -> Path:
    """Build llama.cpp's `llama-simple` and libllama for this CPU under `build_dir`, and our greedy program beside
    them; returns the folder of the binaries. Prints the build time; a finished build is reused unless `rebuild`."""
    build_dir = Path(build_dir)
    source = llama_cpp_source(sdist, build_dir / "source")
    cmake_build = build_dir / "cmake"
    bin_dir = cmake_build / "bin"
    greedy = bin_dir / "llama_cpp_greedy"
    if greedy.is_file() and not rebuild:
        return bin_dir
    if shutil.which("cmake") is None:
        raise RuntimeError("cmake is not on PATH: install it (apt-get install cmake) to build llama.cpp")
    prefix = ["nice", "-n", "19"] if nice else []
    start = time.perf_counter()
    run([*prefix, "cmake", "-S", str(source), "-B", str(cmake_build), *CMAKE_OPTIONS])
    run([*prefix, "cmake", "--build", str(cmake_build), "--target", *TARGETS, "-j", str(jobs)])
    library = next(bin_dir.glob("libllama.so*"), None) or next(cmake_build.rglob("libllama.so"), None)
    if library is None:
        raise RuntimeError(f"the build made no libllama.so under {cmake_build}")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) on PATH: install one (apt-get install gcc)")
    run([
        compiler, "-O2", "-std=c11", "-o", str(greedy), str(GREEDY_SOURCE), "-I", str(source / "include"),
        "-I", str(source / "ggml" / "include"), "-L", str(library.parent), "-lllama",
        f"-Wl,-rpath,{library.parent}:{bin_dir}",
    ])  # fmt: skip
    seconds = time.perf_counter() - start
    (build_dir / "build_time.json").write_text(
        json.dumps({"seconds": seconds, "jobs": jobs, "targets": TARGETS, "sdist": str(sdist)}),
        encoding="utf-8",
    )
    print(
        f"built llama.cpp ({', '.join(TARGETS)}, libllama, llama_cpp_greedy) in {seconds / 60:.1f} min, -j{jobs}"
    )
    return bin_dir


def run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} ... failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )


def llama_cpp_greedy(
    bin_dir: Path, gguf: Path, prompt_ids: list[int], n_new: int, threads: int = 2
) -> tuple[list[int], float]:
    """llama.cpp's greedy continuation of `prompt_ids` (exactly `n_new` tokens, no stop token), and its new
    tokens/s over the prompt's forward pass and the decoding steps (model load excluded, as for generate())."""
    command = [
        str(Path(bin_dir) / "llama_cpp_greedy"),
        str(gguf),
        str(n_new),
        str(threads),
        *map(str, prompt_ids),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"llama_cpp_greedy failed on {gguf}: {result.stderr[-3000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return out["tokens"], n_new / out["seconds"]


def llama_cpp_tokenize(bin_dir: Path, gguf: Path, text: str) -> list[int]:
    """llama.cpp's own tokenization of `text` with the GGUF's vocabulary (no BOS; special tokens parsed)."""
    command = [str(Path(bin_dir) / "llama_cpp_greedy"), str(gguf), "--tokenize", text]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"llama_cpp_greedy --tokenize failed on {gguf}: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["tokens"]


# The benchmark config of benchmarks/bench_generate.py (14M parameters), with a tokenizer of ours of that size.
CONFIG = dict(n_layer=6, n_head=6, n_embd=384, n_positions=512, vocab_size=8192)
PROMPT_TOKENS, NEW_TOKENS = 64, 256
TOKENIZE_TEXTS = [
    "To be, or not to be: that is the question.",
    "héllo wörld 🤗 안녕 3.14  \n\n x<|endoftext|>y",
]


def benchmark_model(folder: Path):
    """A random ScratchGPT at CONFIG with our tokenizer trained on the default corpus, saved in `folder` (reused)."""
    import torch

    from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
    from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
    from scratch_tokenizer.train import train_tokenizer

    if not (folder / "model.safetensors").is_file():
        tokenizer = train_tokenizer(vocab_size=CONFIG["vocab_size"], show_progress=False)
        torch.manual_seed(0)
        # No bos/eos: generate() then never stops early, as llama_cpp_greedy does not.
        config = ScratchGPTConfig(**CONFIG, bos_token_id=None, eos_token_id=None)
        ScratchGPTForCausalLM(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return ScratchGPTForCausalLM.from_pretrained(folder).eval()


def export_ggufs(checkpoint: Path, work: Path, llama_dir: Path) -> dict[str, Path]:
    """The f32 GGUF from our `--to_gguf` (when this checkout has it) and from llama.cpp's converter."""
    ggufs = {}
    convert = [sys.executable, "-m", "hf_scratch_gpt.convert", "--overwrite_output_dir"]
    if "--to_gguf" in subprocess.run([*convert[:3], "--help"], capture_output=True, text=True).stdout:
        run([*convert, "--to_gguf", str(checkpoint), "--output_dir", str(work / "gguf"), "--outtype", "f32"])
        ggufs["ours --to_gguf"] = next((work / "gguf").glob("*.gguf"))
    run([*convert, "--to_gpt2", str(checkpoint), "--output_dir", str(work / "gpt2")])
    result = convert_with_llama_cpp(
        llama_dir, work / "gpt2", work / "llama-converter-f32.gguf", "f32", "gpt-2"
    )
    if result.returncode != 0:
        raise RuntimeError(f"llama.cpp's converter failed:\n{result.stderr[-3000:]}")
    ggufs["llama.cpp converter"] = work / "llama-converter-f32.gguf"
    return ggufs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sdist", default=os.environ.get(SDIST_ENV), help=f"the sdist (.tar.gz or folder); {SDIST_ENV}"
    )
    parser.add_argument("--build_dir", default="/tmp/llama_build", help="where the build and the models go")
    parser.add_argument("--jobs", type=int, default=2, help="parallel compile jobs")
    parser.add_argument("--rebuild", action="store_true", help="build again even if a build is there")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads for llama.cpp and torch")
    parser.add_argument("--new_tokens", type=int, default=NEW_TOKENS)
    args = parser.parse_args()
    if not args.sdist:
        parser.error(f"--sdist (or {SDIST_ENV}) is required; get the sdist with: {HOW_TO_GET}")

    import torch
    from machine import machine_line
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    build_dir = Path(args.build_dir)
    bin_dir = build_llama_cpp(args.sdist, build_dir, args.jobs, args.rebuild)
    build = json.loads((build_dir / "build_time.json").read_text(encoding="utf-8"))
    llama_dir = llama_cpp_source(args.sdist, build_dir / "source")
    work = build_dir / "models"
    model = benchmark_model(work / "ours")
    tokenizer = AutoTokenizer.from_pretrained(work / "ours")
    ggufs = export_ggufs(work / "ours", work, llama_dir)

    for name, gguf in ggufs.items():
        same = all(llama_cpp_tokenize(bin_dir, gguf, t) == tokenizer(t)["input_ids"] for t in TOKENIZE_TEXTS)
        print(f"{name}: llama.cpp tokenizes like our tokenizer: {same}")
    prompt = torch.randint(
        0, CONFIG["vocab_size"], (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(1)
    )
    settings = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
    reference = model.generate(prompt, **settings)[0, PROMPT_TOKENS:].tolist()

    def ours() -> tuple[list[int], float]:
        start = time.perf_counter()
        tokens = model.generate(prompt, **settings)[0, PROMPT_TOKENS:].tolist()
        return tokens, args.new_tokens / (time.perf_counter() - start)

    runs = {"ours generate() fp32": ours}
    for name, gguf in ggufs.items():
        runs[f"llama.cpp f32 ({name})"] = lambda g=gguf: llama_cpp_greedy(
            bin_dir, g, prompt[0].tolist(), args.new_tokens, args.threads
        )
    rates: dict[str, list[float]] = {name: [] for name in runs}
    same: dict[str, bool] = {}
    for r in range(args.rounds):
        for name in list(runs) if r % 2 == 0 else list(reversed(runs)):
            tokens, rate = runs[name]()
            rates[name].append(rate)
            same[name] = same.get(name, True) and tokens == reference

    print(machine_line())
    print(
        f"llama.cpp build ({', '.join(build['targets'])} + libllama, -j{build['jobs']}, nice 19): "
        f"{build['seconds'] / 60:.1f} min"
    )
    print(
        f"config {CONFIG}, prompt {PROMPT_TOKENS}, new {args.new_tokens}, batch 1, greedy, {args.rounds} rounds"
    )
    for name, values in rates.items():
        print(f"{name:>40}: {statistics.median(values):7.1f} new tokens/s, tokens equal ours: {same[name]}")
    if not all(same.values()):
        sys.exit("llama.cpp's greedy tokens differ from our generate()'s")


if __name__ == "__main__":
    main()
