"""Load on the Space: 16 gradio_client sessions ask for a completion at the same time.

All must succeed and the app must still answer afterwards. The throughput is printed (run with -s to see it),
a measurement on a shared machine, not an assertion.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from space_helpers import shared_space

SESSIONS = 16
NEW_TOKENS = 16

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def one_session(url: str, index: int) -> tuple[str, str]:
    """A fresh client (its own session) asking for a sampled completion with its own seed."""
    client = Client(url, verbose=False)
    return client.predict(f"Request {index}:", 0.8, 50, 0.95, NEW_TOKENS, index, api_name="/complete")


def test_16_concurrent_sessions_all_complete_and_the_app_still_answers(tmp_path_factory):
    space = shared_space(tmp_path_factory)  # queued with a concurrency limit of 4
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
    print(
        f"\n{SESSIONS} concurrent completions ({NEW_TOKENS} new tokens each) in {seconds:.2f} s: "
        f"{SESSIONS / seconds:.2f} completions/s, {sum(new_tokens) / seconds:.1f} new tokens/s end to end"
    )

    # Still serving, and the load did not break seeded reproducibility.
    assert one_session(space.url, 3)[0] == results[3][0]
