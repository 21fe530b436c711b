"""The Space in a real browser: Debian's headless Chromium driven by playwright chats with the app.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the playwright package (dev extra); never downloads
a browser. Run alone with `pytest -m browser tests/test_space_browser.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from space_helpers import shared_space

CHROMIUM = Path("/usr/bin/chromium")
# Flags from ../shared/STACK.md: no sandbox (containers, root), no GPU, and no background network traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_browser_chat_streams_a_reply_and_screenshots_it(tmp_path, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    space = shared_space(tmp_path_factory)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            # gradio keeps a connection open, so "networkidle" never comes: wait for "load", then for the UI.
            page.goto(space.url, wait_until="load")
            # The test model is a base model, so the app opens on Complete; the Chat tab still chats (with a notice).
            page.get_by_role("tab", name="Chat").click()
            assert page.get_by_text("This is a base model").is_visible()
            # Greedy decoding, so the random test model's reply is the same on every run.
            # Complete has the same controls: only the visible (Chat) ones.
            page.get_by_text("Sampling").filter(visible=True).first.click()
            temperature = (
                page.get_by_label("Temperature (0 = greedy)")
                .and_(page.get_by_test_id("number-input"))
                .filter(visible=True)
                .first
            )
            temperature.fill("0")
            temperature.press("Enter")
            message = page.get_by_placeholder("Type a message...")
            message.fill("Hello, who are you?")
            message.press("Enter")

            reply = page.get_by_test_id("bot").last
            reply.wait_for(timeout=60_000)
            page.get_by_text("tokens/s").wait_for(timeout=60_000)  # the speed line comes when streaming ends
            assert page.get_by_test_id("user").last.inner_text().strip() == "Hello, who are you?"
            assert reply.inner_text().strip(), "the bot's reply bubble is empty"
            screenshot = tmp_path / "chat.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(screenshot) as image:
        image.verify()  # raises on a truncated or corrupt file
    with Image.open(screenshot) as image:
        assert image.width == 1100 and image.height >= 900
        assert len(image.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16  # not a blank page
