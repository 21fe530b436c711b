"""The GPU check and the continuous-batching benchmark run end to end on a CPU at their toy size: exit 0 (their
token and logit checks pass) and print every figure line with the device. Speed is never asserted."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

DEVICE = r"\[(CPU|machine: CPU) .+\]$"  # every figure names the machine it came from


def run_benchmark(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def figure_lines(out: str, pattern: str) -> list[str]:
    lines = [line for line in out.splitlines() if re.match(pattern, line)]
    for line in lines:
        assert re.search(DEVICE, line), line
    return lines


def check_gpu_check_output(out: str, compiled: bool) -> None:
    assert out.startswith("machine: CPU ")
    modes = ["eager", "compiled"] if compiled else ["eager"]
    train = figure_lines(out, r"train step bf16 (eager|compiled), dropout 0.0: ours/HF = \d+\.\d\dx ")
    assert [re.search(r"bf16 (\w+)", line).group(1) for line in train] == modes
    assert len(figure_lines(out, r"attention sdpa vs eager \(fp32, left padding\): .* OK ")) == 1
    assert (
        len(figure_lines(out, r"generate greedy, batch 1, .*: tokens identical True; ours/HF = \d+\.\d\dx "))
        == 1
    )


def test_gpu_check_runs_on_cpu_at_tiny_size():
    out = run_benchmark(
        "gpu_check.py", "--tiny", "--no_compile", "--rounds", "1", "--steps", "1", "--threads", "1"
    )
    check_gpu_check_output(out, compiled=False)


@pytest.mark.slow
def test_gpu_check_with_torch_compile_runs_on_cpu_at_tiny_size():
    out = run_benchmark("gpu_check.py", "--tiny", "--rounds", "1", "--steps", "1", "--threads", "1")
    check_gpu_check_output(out, compiled=True)


def test_continuous_batching_benchmark_runs_at_tiny_size():
    out = run_benchmark("bench_continuous_batching.py", "--tiny", "--rounds", "1", "--threads", "1")
    assert out.startswith("machine: CPU ")
    for name in ("ours", "hf"):
        assert f"{name}: generate_batch rows equal each row's greedy generate(): True" in out
    assert "ours and HF GPT-2 give the same tokens: True" in out
    figure_lines(
        out, r"continuous batching ours / HF GPT-2: \d+\.\d\dx \(target >= 1\.0x\) (OK|BELOW TARGET) "
    )


def test_runtimes_benchmark_runs_at_tiny_size():
    """Every installed runtime decodes the same weights and reports whether its tokens equal our fp32 greedy ones
    (llama.cpp rows appear only where it is built)."""
    pytest.importorskip("ctranslate2", reason="optional: pip install 'hf_scratch_gpt[ctranslate2]'")
    out = run_benchmark(
        "bench_runtimes.py", "--shapes", "tiny", "--rounds", "1", "--new_tokens", "8", "--threads", "1"
    )
    assert out.startswith("machine: CPU ")
    rows = figure_lines(out, r"\s*(ours|hf|ctranslate2|llama\.cpp) \S+ \|")
    names = [row.split("|")[0].strip() for row in rows]
    for name in ("ours fp32", "ours bf16", "ours int8", "ours int8_weights", "hf fp32", "hf bf16",
                 "ctranslate2 fp32", "ctranslate2 int8"):  # fmt: skip
        assert name in names, out
    same = {row.split("|")[0].strip(): row.split("|")[2].strip() for row in rows}
    # float32 runtimes must agree exactly; bf16 / int8 may flip a near-tie on another CPU, so only reported.
    assert all(same[name] == "True" for name in ("ours fp32", "hf fp32", "ctranslate2 fp32")), out
    assert set(same.values()) <= {"True", "False"}, out
    figure_lines(out, r"tiny: ours bf16 / HF GPT-2 bf16: \d+\.\d\dx \(target >= 1\.2x\) (OK|BELOW TARGET) ")


def test_quantized_quality_benchmark_runs_on_tiny_trained_models(tmp_path):
    """The quality rule's script on tiny models the recipes trained: a line per setting naming the machine, float32
    reproduces the pretraining run's own held-out perplexity and all its own answers, and every other setting is
    judged (PASSES / FAILS) against it."""
    pytest.importorskip("torchao", reason="optional: pip install 'hf_scratch_gpt[quantize]'")
    from recipe_helpers import FAST_ARGS, run_recipe

    base, chat = tmp_path / "pretrain", tmp_path / "instruct"
    tiny = ["--model_size", "tiny", "--vocab_size", "300", "--block_size", "128", "--max_steps", "4"]
    run_recipe("pretrain", [*tiny, "--eval_steps", "4", "--output_dir", str(base), *FAST_ARGS])
    tasks = ["--task_train_examples", "30", "--task_eval_examples", "6"]
    run_recipe(
        "finetune_instruct",
        ["--model_name_or_path", str(base), "--output_dir", str(chat), "--max_steps", "2", "--max_new_tokens", "4",
         *tasks, *FAST_ARGS],
    )  # fmt: skip
    out = run_benchmark(
        "quantized_quality.py", "--pretrain", str(base), "--instruct", str(chat), *tasks, "--rounds", "1",
        "--new_tokens", "4", "--threads", "1",
    )  # fmt: skip
    lines = {
        line.split(":")[0]: line for line in figure_lines(out, r"(fp32|bf16|int8|int8_weights): perplexity")
    }
    assert sorted(lines) == ["bf16", "fp32", "int8", "int8_weights"], out
    recorded = json.loads((base / "all_results.json").read_text())["eval_perplexity"]
    printed = float(re.search(r"perplexity (\d+\.\d+)", lines["fp32"]).group(1))
    assert printed == pytest.approx(recorded, rel=1e-3), out
    assert "answers identical to fp32 6/6" in lines["fp32"] and "fp32 itself" in lines["fp32"]
    for name in ("bf16", "int8", "int8_weights"):
        assert re.search(r"(PASSES|FAILS) the default rule", lines[name]), lines[name]
