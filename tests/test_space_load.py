"""Load on the Space: 16 gradio_client sessions ask for a completion at the same time.

All must succeed and the app must still answer afterwards; the queue must admit at most its concurrency limit
at once, and the generations must take turns on the model. The throughput is printed (run with -s to see
it), a measurement on a shared machine, not an assertion.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from gradio_client import Client
from space_helpers import CONCURRENCY, load_app, shared_space

from hf_scratch_gpt import ScratchGPTForCausalLM

SESSIONS = 16
NEW_TOKENS = 16

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Peak:
    """How many threads are `inside()` at once, and the most there ever were."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now = self.peak = 0

    @contextmanager
    def inside(self) -> Iterator[None]:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            with self._lock:
                self.now -= 1


def one_session(url: str, index: int) -> tuple[str, str]:
    """A fresh client (its own session) asking for a sampled completion with its own seed."""
    client = Client(url, verbose=False)
    return client.predict(f"Request {index}:", 0.8, 50, 0.95, NEW_TOKENS, index, api_name="/complete")


def test_16_concurrent_sessions_all_complete_and_the_app_still_answers(tmp_path_factory, monkeypatch):
    space = shared_space(tmp_path_factory)
    app = load_app()
    handlers, generations = Peak(), Peak()
    stream_generate, generate = app.stream_generate, ScratchGPTForCausalLM.generate

    def counted_stream(*args, **kwargs):  # a request being served, until its stream ends
        with handlers.inside():
            yield from stream_generate(*args, **kwargs)

    def counted_generate(self, *args, **kwargs):  # the model at work
        with generations.inside():
            return generate(self, *args, **kwargs)

    monkeypatch.setattr(app, "stream_generate", counted_stream)  # the app looks it up at call time
    monkeypatch.setattr(ScratchGPTForCausalLM, "generate", counted_generate)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        results = list(pool.map(lambda i: one_session(space.url, i), range(SESSIONS)))
    seconds = time.perf_counter() - start

    new_tokens = []
    for text, stats in results:
        assert isinstance(text, str)
        match = re.search(r"(\d+) new tokens in", stats)
        assert match, f"no speed line in {stats!r}"
        new_tokens.append(int(match.group(1)))
    assert all(1 <= n <= NEW_TOKENS for n in new_tokens)
    assert 2 <= handlers.peak <= CONCURRENCY  # the queue let several in, never more than its limit
    assert generations.peak == 1  # and their generations took turns
    print(
        f"\n{SESSIONS} concurrent completions ({NEW_TOKENS} new tokens each) in {seconds:.2f} s: "
        f"{SESSIONS / seconds:.2f} completions/s, {sum(new_tokens) / seconds:.1f} new tokens/s end to end; "
        f"at most {handlers.peak} served at once"
    )

    # Still serving, and the load did not break seeded reproducibility.
    assert one_session(space.url, 3)[0] == results[3][0]
