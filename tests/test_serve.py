"""Serving: `transformers serve` on our GPT-2 export answers OpenAI-style chat requests with what `generate()` gives.

`transformers serve` loads `getattr(transformers, config.architectures[0])`, so a remote-code architecture cannot
be served; `python -m hf_scratch_gpt.convert --to_gpt2` writes a `GPT2LMHeadModel` folder (with our tokenizer and
its chat template), which it serves. Each test starts the real server on 127.0.0.1 (offline), sends one
non-streaming `/v1/chat/completions` request and compares the answer with greedy `generate()` of the original
ScratchGPT on the same templated prompt.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from hf_scratch_gpt.convert import main as convert_main
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from scratch_tokenizer.train import train_tokenizer

MISSING = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the serving extra is not installed ({', '.join(MISSING)} missing): pip install -e '.[serving]'",
)

TRANSFORMERS_CLI = Path(sys.executable).with_name("transformers")
MESSAGES = [{"role": "user", "content": "Tell me about the lazy dog."}]
MAX_NEW_TOKENS = 12
STARTUP_TIMEOUT_S = 240
REQUEST_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    """A tiny ScratchGPT checkpoint with our tokenizer, exported to GPT-2 through the CLI; and the text that
    greedy `generate()` of the ScratchGPT itself gives for the chat-templated MESSAGES."""
    folder = tmp_path_factory.mktemp("serve")
    tokenizer = train_tokenizer(
        texts=["The quick brown fox jumps over the lazy dog. Tell me about it, tell me more.\n"] * 20,
        vocab_size=300,
        show_progress=False,
    )
    eos = tokenizer.eos_token_id
    config = ScratchGPTConfig(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, initializer_range=0.2,
    )  # fmt: skip
    torch.manual_seed(
        2
    )  # with init std 0.2 the random model answers with 7 distinct tokens, not one repeated
    model = ScratchGPTForCausalLM(config).eval()
    model.save_pretrained(folder / "scratch")
    tokenizer.save_pretrained(folder / "scratch")
    convert_main(["--to_gpt2", str(folder / "scratch"), "--output_dir", str(folder / "gpt2")])

    prompt = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    new_tokens = out[0, prompt["input_ids"].shape[1] :]
    expected = tokenizer.decode(new_tokens, skip_special_tokens=True)
    assert len(set(new_tokens.tolist())) >= 3, "the random model repeats one token: pick another seed"
    return folder / "gpt2", expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        return json.loads(response.read())


def serve_and_chat(model_dir: Path, log_path: Path, *flags: str) -> dict:
    """Start `transformers serve model_dir` on a free port, wait for /health, send one chat request, stop it."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [str(TRANSFORMERS_CLI), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [*command, "--device", "cpu", *flags], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"transformers serve exited with {server.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"transformers serve not up after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        body = {
            "model": str(model_dir),
            "messages": MESSAGES,
            "max_tokens": MAX_NEW_TOKENS,
            "temperature": 0.0,
        }
        try:
            return post_json(f"{base}/v1/chat/completions", body)
        except urllib.error.HTTPError as err:
            pytest.fail(f"HTTP {err.code}: {err.read()[:2000]!r}\n{log_path.read_text()[-3000:]}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


def check_answer(answer: dict, model_dir: Path, expected: str) -> None:
    assert answer["object"] == "chat.completion"
    assert answer["model"] == str(model_dir)
    (choice,) = answer["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    assert choice["message"]["content"] == expected
    assert 0 < answer["usage"]["completion_tokens"] <= MAX_NEW_TOKENS
    assert (
        answer["usage"]["total_tokens"]
        == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    )


def test_export_is_a_plain_gpt2_folder(exported):
    model_dir, _ = exported
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and "auto_map" not in config
    assert (model_dir / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (model_dir / "tokenizer_config.json").read_text()
    )
    assert not list(model_dir.glob("*.py"))  # no remote code travels with it


@pytest.mark.skipif(not TRANSFORMERS_CLI.exists(), reason=f"{TRANSFORMERS_CLI} (transformers' CLI) is absent")
def test_transformers_serve_answers_like_generate(exported, tmp_path):
    model_dir, expected = exported
    check_answer(serve_and_chat(model_dir, tmp_path / "serve.log"), model_dir, expected)


@pytest.mark.slow
@pytest.mark.skipif(not TRANSFORMERS_CLI.exists(), reason=f"{TRANSFORMERS_CLI} (transformers' CLI) is absent")
def test_transformers_serve_continuous_batching_answers_like_generate(exported, tmp_path):
    model_dir, expected = exported
    answer = serve_and_chat(model_dir, tmp_path / "serve.log", "--continuous-batching")
    check_answer(answer, model_dir, expected)
