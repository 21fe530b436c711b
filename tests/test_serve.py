"""Serving: `transformers serve` on our GPT-2 export answers OpenAI-style chat requests with what `generate()` gives.

`transformers serve` loads `getattr(transformers, config.architectures[0])`, so a remote-code architecture cannot
be served; `python -m hf_scratch_gpt.convert --to_gpt2` writes a `GPT2LMHeadModel` folder (with our tokenizer and
its chat template), which it serves. One real server per mode (plain, `--continuous-batching`) runs on 127.0.0.1
(offline) for the whole module; greedy answers are compared with greedy `generate()` of the original ScratchGPT on
the same templated prompt.

The tests also pin what transformers 5.24's server does with requests it cannot serve (docs/serving.md, "Requests
the server cannot serve"): nothing in an exported folder changes it, so a transformers upgrade that does is noticed
here. A request that runs past the model's context (n_positions) is a bare 500 without continuous batching, and
kills the continuous-batching worker for good with it; a body without `messages`, or with a field of the wrong
type, is a bare 500 in both modes.
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
from typing import NamedTuple

import pytest
import torch

from hf_scratch_gpt.convert import main as convert_main
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from scratch_tokenizer.train import train_tokenizer

MISSING = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
TRANSFORMERS_CLI = Path(sys.executable).with_name("transformers")
pytestmark = [
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the serving extra is not installed ({', '.join(MISSING)} missing): pip install -e '.[serving]'",
    ),
    pytest.mark.skipif(
        not TRANSFORMERS_CLI.exists(), reason=f"{TRANSFORMERS_CLI} (transformers' CLI) is absent"
    ),
]

MESSAGES = [{"role": "user", "content": "Tell me about the lazy dog."}]
N_POSITIONS = 128
MAX_NEW_TOKENS = 12
STARTUP_TIMEOUT_S = 240
REQUEST_TIMEOUT_S = 120
HEALTH_WAIT_S = 10
# Starlette's answer to an uncaught error in a handler: no reason, not JSON.
BARE_500 = (500, "text/plain; charset=utf-8", b"Internal Server Error")
UPGRADE_HINT = (
    "transformers serve no longer behaves as docs/serving.md describes (requests the server cannot serve): "
    "update that section, and turn this pin into a test of the new behaviour"
)


class Export(NamedTuple):
    model_dir: Path
    expected: str  # greedy generate() of the ScratchGPT for the templated MESSAGES, MAX_NEW_TOKENS tokens
    longest_expected: str  # the same, as many tokens as fit in the context (longest_answer)
    prompt_tokens: int  # length of the templated MESSAGES

    @property
    def longest_answer(self) -> int:
        """The most new tokens that fit: the last generated token is never fed back, so it needs no position."""
        return N_POSITIONS + 1 - self.prompt_tokens


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Export:
    """A tiny ScratchGPT checkpoint with our tokenizer, exported to GPT-2 through the CLI; and what greedy
    `generate()` of the ScratchGPT itself gives for the chat-templated MESSAGES (short, and as long as fits)."""
    folder = tmp_path_factory.mktemp("serve")
    tokenizer = train_tokenizer(
        texts=["The quick brown fox jumps over the lazy dog. Tell me about it, tell me more.\n"] * 20,
        vocab_size=300,
        show_progress=False,
    )
    eos = tokenizer.eos_token_id
    config = ScratchGPTConfig(
        vocab_size=len(tokenizer), n_positions=N_POSITIONS, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, initializer_range=0.2,
    )  # fmt: skip
    # With init std 0.2 the random model answers with 7 distinct tokens, not one repeated.
    torch.manual_seed(2)
    model = ScratchGPTForCausalLM(config).eval()
    model.save_pretrained(folder / "scratch")
    tokenizer.save_pretrained(folder / "scratch")
    convert_main(["--to_gpt2", str(folder / "scratch"), "--output_dir", str(folder / "gpt2")])

    prompt = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    prompt_tokens = prompt["input_ids"].shape[1]
    export = Export(folder / "gpt2", "", "", prompt_tokens)
    with torch.no_grad():  # ScratchGPT checks every position it is given against n_positions
        out = model.generate(**prompt, max_new_tokens=export.longest_answer, do_sample=False)
    new_tokens = out[0, prompt_tokens:].tolist()
    assert len(set(new_tokens[:MAX_NEW_TOKENS])) >= 3, "the model repeats one token: pick another seed"
    # One token more than longest_answer must really need a position past the context: no EOS before it.
    assert len(new_tokens) == export.longest_answer and eos not in new_tokens, "pick another seed"
    return export._replace(
        expected=tokenizer.decode(new_tokens[:MAX_NEW_TOKENS], skip_special_tokens=True),
        longest_expected=tokenizer.decode(new_tokens, skip_special_tokens=True),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Reply(NamedTuple):
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Server:
    """`transformers serve MODEL_DIR` on 127.0.0.1 and a free port, up once /health answers 200."""

    def __init__(self, model_dir: Path, log_path: Path, *flags: str):
        self.model_dir, self.log_path = model_dir, log_path
        self.base = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        command = [str(TRANSFORMERS_CLI), "serve", str(model_dir), "--host", "127.0.0.1"]
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                [*command, "--port", self.base.rsplit(":", 1)[1], "--device", "cpu", *flags],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._is_up():
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"transformers serve exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"transformers serve not up after {STARTUP_TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.5)

    def _is_up(self) -> bool:
        try:
            return self.request("GET", "/health", timeout=5).status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def request(self, method: str, path: str, body=None, timeout: float = REQUEST_TIMEOUT_S) -> Reply:
        """One request; an HTTP error status is a Reply too. `body`: a dict/list (sent as JSON) or raw bytes."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, headers={"Content-Type": "application/json"}, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(response.status, response.headers.get("content-type", ""), response.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.headers.get("content-type", ""), err.read())

    def chat(self, **fields) -> Reply:
        """A greedy /v1/chat/completions request for MESSAGES; `fields` override or add body fields (None drops)."""
        body = {
            "model": str(self.model_dir),
            "messages": MESSAGES,
            "max_tokens": MAX_NEW_TOKENS,
            "temperature": 0.0,
        }
        body = {key: value for key, value in {**body, **fields}.items() if value is not None}
        return self.request("POST", "/v1/chat/completions", body)

    def health(self) -> Reply:
        return self.request("GET", "/health", timeout=5)

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    running = Server(exported.model_dir, tmp_path_factory.mktemp("plain") / "serve.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cb_server(exported, tmp_path_factory):
    running = Server(exported.model_dir, tmp_path_factory.mktemp("cb") / "serve.log", "--continuous-batching")
    yield running
    running.stop()


def check_answer(reply: Reply, server: Server, expected: str) -> None:
    assert reply.status == 200, f"HTTP {reply.status}: {reply.body[:2000]!r}\n{server.log()}"
    answer = reply.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == str(server.model_dir)
    (choice,) = answer["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    assert choice["message"]["content"] == expected
    assert 0 < answer["usage"]["completion_tokens"] <= MAX_NEW_TOKENS
    assert (
        answer["usage"]["total_tokens"]
        == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    )


def long_prompt_messages(model_dir: Path) -> list[dict]:
    """A user message whose templated prompt alone is longer than the context."""
    from transformers import AutoTokenizer

    messages = [{"role": "user", "content": "Tell me about the lazy dog. " * 40}]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert len(tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]) > N_POSITIONS
    return messages


def test_export_is_a_plain_gpt2_folder(exported):
    config = json.loads((exported.model_dir / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and "auto_map" not in config
    # GPT-2's own config.json has n_ctx == n_positions, and llama.cpp's GGUF converter requires n_ctx.
    assert config["n_positions"] == N_POSITIONS and config.get("n_ctx") == N_POSITIONS
    assert (exported.model_dir / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (exported.model_dir / "tokenizer_config.json").read_text()
    )
    assert not list(exported.model_dir.glob("*.py"))  # no remote code travels with it


def test_transformers_serve_answers_like_generate(exported, server):
    check_answer(server.chat(), server, exported.expected)


@pytest.mark.parametrize("past_the_context", ["max_tokens", "no_max_tokens", "prompt"])
def test_request_past_the_context_is_a_bare_500_and_the_server_lives(exported, server, past_the_context):
    """Pinned: generate() runs the position embeddings out of range. A request without max_tokens is one of these:
    the server raises max_new_tokens to at least 1024 (transformers/cli/serving/utils.py, _build_generation_config),
    more than this model's context."""
    fields = {
        "max_tokens": {"max_tokens": exported.longest_answer + 1},
        "no_max_tokens": {"max_tokens": None},
        "prompt": {"messages": long_prompt_messages(exported.model_dir)},
    }[past_the_context]
    assert tuple(server.chat(**fields)) == BARE_500, UPGRADE_HINT
    assert server.health().json() == {"status": "ok"}
    check_answer(server.chat(), server, exported.expected)


def test_longest_request_that_fits_the_context_is_answered(exported, server):
    """One token fewer than the failing max_tokens above is served: prompt + answer = n_positions + 1 tokens."""
    reply = server.chat(max_tokens=exported.longest_answer)
    assert reply.status == 200, reply.body[:2000]
    assert reply.json()["usage"]["total_tokens"] == N_POSITIONS + 1
    assert reply.json()["choices"][0]["message"]["content"] == exported.longest_expected


MALFORMED = {
    # Uncaught KeyError / TypeError / ValueError in the handler: Starlette's bare 500, no reason given.
    "no_messages": ({"messages": None}, 500),
    "messages_a_string": ({"messages": "Tell me about the lazy dog."}, 500),
    "content_a_number": ({"messages": [{"role": "user", "content": 5}]}, 500),
    "max_tokens_not_a_number": ({"max_tokens": "many"}, 500),
    # Checked before the handler runs: a 422 whose JSON names the problem.
    "unknown_field": ({"max_length": 20}, 422),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_request_is_pinned_and_the_server_lives(exported, server, case):
    fields, status = MALFORMED[case]
    reply = server.chat(**fields)
    if status == 500:
        assert tuple(reply) == BARE_500, UPGRADE_HINT
    else:
        assert (reply.status, reply.content_type) == (422, "application/json"), UPGRADE_HINT
        assert "Unexpected fields in the request" in reply.json()["detail"]
    assert server.health().json() == {"status": "ok"}


def test_body_that_is_not_a_json_object_is_a_422(server):
    for body in (b"{not json", [1, 2]):
        reply = server.request("POST", "/v1/chat/completions", body)
        assert (reply.status, reply.content_type) == (422, "application/json")
        assert reply.json()["detail"][0]["type"] in ("json_invalid", "dict_type")


# The continuous-batching tests share one server, and the last one kills its worker: keep it last in this file.


@pytest.mark.slow
def test_transformers_serve_continuous_batching_answers_like_generate(exported, cb_server):
    assert cb_server.health().status == 200, (
        "the CB worker is already dead: did a test that kills it run first?"
    )
    check_answer(cb_server.chat(), cb_server, exported.expected)


@pytest.mark.slow
def test_continuous_batching_malformed_request_leaves_the_worker_alive(exported, cb_server):
    assert tuple(cb_server.chat(messages=None)) == BARE_500, UPGRADE_HINT
    assert cb_server.health().json() == {"status": "ok"}
    check_answer(cb_server.chat(), cb_server, exported.expected)


@pytest.mark.slow
def test_continuous_batching_request_past_the_context_kills_the_worker(exported, cb_server):
    """Pinned: the batching worker runs the request, the position embeddings go out of range, and the error ends
    the worker thread; the server process lives on, answering 503 to every generation request until restarted.
    The failing request's own reply races the worker's shutdown: the same 503, or a bare 500."""
    check_answer(cb_server.chat(), cb_server, exported.expected)  # alive before

    reply = cb_server.chat(max_tokens=exported.longest_answer + 1)
    if reply.status == 503:
        assert "index out of range" in reply.json()["error"], UPGRADE_HINT
    else:
        assert tuple(reply) == BARE_500, UPGRADE_HINT

    deadline = time.monotonic() + HEALTH_WAIT_S
    while (health := cb_server.health()).status == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    dead = (503, {"status": "unhealthy", "reason": "cb_worker_dead"})
    assert (health.status, health.json()) == dead, UPGRADE_HINT
    after = cb_server.chat()
    assert after.status == 503, UPGRADE_HINT
    assert "CB worker is dead" in after.json()["error"] and "index out of range" in after.json()["error"]
    assert cb_server.process.poll() is None  # the process lives: /health is how a supervisor sees the state
