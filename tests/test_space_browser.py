"""The Space in a real browser: Debian's headless Chromium driven by playwright chats with the app.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the playwright package (dev extra); never downloads
a browser. Run alone with `pytest -m "browser and not slow" tests/test_space_browser.py` (seconds); the slow test,
`-m "browser and slow"`, first trains a model to ask three questions in one chat (minutes).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from recipe_helpers import run_recipe
from space_helpers import chat_checkpoint, load_app, serving, shared_space
from task_answers import solve

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


# ---------------------------------------------------------------- several questions in one chat

# Built-in-style questions of three families (the instructions that hold their data), asked in this order.
FAMILIES = ["count_words", "even_odd", "first_word"]
QUESTIONS = [
    "How many words are there in: red cat blue",
    "Is 14 even or odd?",
    "Which word comes first in: sun owl",
]


def rendered_prompt(turns: list[tuple[str, str]], question: str) -> str:
    """The chat template's text, written out by hand: every earlier turn with its answer and EOS, then the question."""
    history = "".join(f"### User:\n{q}\n\n### Assistant:\n{a}<|endoftext|>\n\n" for q, a in turns)
    return f"{history}### User:\n{question}\n\n### Assistant:\n"


@pytest.fixture
def generations(monkeypatch):
    """Every generation the app runs: the prompt ids it got and the text it produced (the app's stream_generate,
    wrapped)."""
    app = load_app()
    original, calls = app.stream_generate, []

    def recorded(model, tokenizer, prompt_ids, max_new_tokens, **sampling):
        call = SimpleNamespace(prompt_ids=list(prompt_ids), text=None)
        calls.append(call)
        for generation in original(model, tokenizer, prompt_ids, max_new_tokens, **sampling):
            if generation.done:
                call.text = generation.text
            yield generation

    monkeypatch.setattr(app, "stream_generate", recorded)
    return calls


def open_chat(playwright, url: str):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url, wait_until="load")  # gradio keeps a connection open: "networkidle" never comes
    return browser, page


def ask(page, sync_api, question: str) -> None:
    """Type `question` into the chat and send it (once the box takes input again: not while a reply streams)."""
    # The message box is the Chat tab's only text box (its placeholder goes after the first message: gradio 6).
    message = page.get_by_role("textbox").filter(visible=True)
    sync_api.expect(message).to_be_editable(timeout=60_000)
    message.fill(question)
    message.press("Enter")


def wait_for_generation(page, generations: list, n: int) -> None:
    """Wait until the app has finished generation number `n` (of the `generations` fixture)."""
    for _ in range(600):
        if len(generations) >= n and generations[n - 1].text is not None:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"generation {n} did not finish within a minute ({len(generations)} started)")


def test_browser_one_chat_sends_the_whole_history_and_a_new_chat_starts_afresh(tmp_path, generations):
    """Three questions in one chat on a tiny random chat model: each prompt the model gets is the hand-rendered
    conversation so far; an example is one click; Clear starts a new chat whose prompt has no history."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    app = load_app()
    folder = chat_checkpoint(
        tmp_path / "chat", chat_examples=QUESTIONS, chat_multiturn=True, chat_task_families=["count_words"]
    )
    model, tokenizer = app.load_checkpoint(str(folder), "causal")
    demo = app.build_demo(model, tokenizer, model_name="tiny-chat", max_new_tokens_cap=8)
    with serving(demo) as url, sync_api.sync_playwright() as playwright:
        browser, page = open_chat(playwright, url)
        try:
            sync_api.expect(
                page.get_by_text("Trained on the built-in task set (count words)")
            ).to_be_visible()
            page.get_by_role("button", name=QUESTIONS[0]).click()  # an example: sent at once
            wait_for_generation(page, generations, 1)
            for n, question in enumerate(QUESTIONS[1:], start=2):
                ask(page, sync_api, question)
                wait_for_generation(page, generations, n)
            sync_api.expect(page.get_by_test_id("bot")).to_have_count(3)
            assert [u.inner_text().strip() for u in page.get_by_test_id("user").all()] == QUESTIONS
            page.get_by_role("button", name="Clear").click()  # the trash icon at the top right of the chat
            sync_api.expect(page.get_by_test_id("bot")).to_have_count(0)
            examples_back = page.get_by_role("button", name=QUESTIONS[1])
            sync_api.expect(examples_back).to_be_visible()
            ask(page, sync_api, QUESTIONS[1])
            wait_for_generation(page, generations, 4)
        finally:
            browser.close()
    assert len(generations) == 4 and all(call.text is not None for call in generations)
    # The chat keeps each reply as it shows it, stripped (gradio's Chatbot strips a message's text), which is also
    # how the recipe scores answers; the random model's replies here hold newlines.
    answers = [call.text.strip() for call in generations]
    expected = [
        rendered_prompt(list(zip(QUESTIONS[:n], answers[:n], strict=True)), QUESTIONS[n]) for n in range(3)
    ]
    expected.append(rendered_prompt([], QUESTIONS[1]))  # the new chat
    for call, text in zip(generations, expected, strict=True):
        assert tokenizer.decode(call.prompt_ids) == text
        assert call.prompt_ids == tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.slow
def test_browser_three_questions_in_one_chat_on_a_trained_model(tmp_path, generations):
    """About 3 minutes on 2 free cores: pretrain as the README does, finetune on three families of the built-in task
    set (half of its records conversations, the default), then ask three questions in one chat: each answer
    is the computed one, and each prompt the whole chat so far."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    base, chat = tmp_path / "pretrain", tmp_path / "instruct"
    run_recipe("pretrain", ["--output_dir", str(base), "--disable_tqdm", "true"])
    # 1,200 training records per family, as the default set gives each of its ten
    finetune = ["--task_families", *FAMILIES, "--task_train_examples", "3600", "--disable_tqdm", "true"]
    metrics = run_recipe(
        "finetune_instruct", ["--model_name_or_path", str(base), "--output_dir", str(chat), *finetune]
    )
    assert metrics["test_exact_match_multiturn"] >= 0.9 and metrics["test_exact_match_singleturn"] >= 0.9
    answers = [
        solve({"family": f, "instruction": q, "input": ""}) for f, q in zip(FAMILIES, QUESTIONS, strict=True)
    ]
    assert answers == ["3", "even", "sun"]  # the solver, checked by hand
    app = load_app()
    model, tokenizer = app.load_checkpoint(str(chat), "causal")
    with (
        serving(app.build_demo(model, tokenizer, model_name="instruct")) as url,
        sync_api.sync_playwright() as pw,
    ):
        browser, page = open_chat(pw, url)
        try:
            for n, (question, answer) in enumerate(zip(QUESTIONS, answers, strict=True), start=1):
                ask(page, sync_api, question)
                wait_for_generation(page, generations, n)
                sync_api.expect(page.get_by_test_id("bot").nth(n - 1)).to_have_text(answer)
        finally:
            browser.close()
    for n, call in enumerate(generations):
        assert call.text == answers[n]
        expected = rendered_prompt(list(zip(QUESTIONS[:n], answers[:n], strict=True)), QUESTIONS[n])
        assert tokenizer.decode(call.prompt_ids) == expected
