"""The Gradio Space (space/app.py) driven through gradio_client, on a tiny random checkpoint made here.

The app runs in this process on 127.0.0.1; expected outputs come from calling the model directly
(generate(), a forward pass, the tokenizer), never from the app's own helpers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError
from space_helpers import APP_PATH, CAP, CONTEXT, LABELS, load_app, shared_space
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

# gradio's queue triggers pandas deprecation warnings on every request.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Greedy decoding as the /complete endpoint's (temperature, top_k, top_p); its arguments are
# (prompt, temperature, top_k, top_p, max_new_tokens, seed).
GREEDY = (0.0, 0, 1.0)


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    return shared_space(tmp_path_factory)


@pytest.fixture(scope="module")
def lm(space):
    """The same checkpoint the app serves, loaded independently."""
    return AutoModelForCausalLM.from_pretrained(space.lm_dir).eval(), AutoTokenizer.from_pretrained(
        space.lm_dir
    )


def direct_greedy(model, tokenizer, prompt_ids: list[int], max_new_tokens: int) -> str:
    """Reference continuation: plain generate() and decode of the new tokens only."""
    input_ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True)


def test_chat_reply_is_the_model_continuation_of_the_chat_template(space, lm):
    model, tokenizer = lm
    reply, stats = Client(space.url, verbose=False).predict(
        message="Hello, who are you?", temperature=0.0, max_new_tokens=20, api_name="/chat"
    )
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello, who are you?"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("### Assistant:\n")
    assert reply == direct_greedy(
        model, tokenizer, tokenizer(prompt, add_special_tokens=False)["input_ids"], 20
    )
    assert "tokens/s" in stats


def test_chat_uses_the_history_of_the_session(space, lm):
    model, tokenizer = lm
    client = Client(space.url, verbose=False)
    first, _ = client.predict(message="Hi", temperature=0.0, max_new_tokens=8, api_name="/chat")
    second, _ = client.predict(message="And then?", temperature=0.0, max_new_tokens=8, api_name="/chat")
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "And then?"},
    ]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert second == direct_greedy(
        model, tokenizer, tokenizer(prompt, add_special_tokens=False)["input_ids"], 8
    )


def test_streamed_chunks_arrive_in_order_each_extending_the_last(space):
    job = Client(space.url, verbose=False).submit("The", *GREEDY, CAP, 0, api_name="/complete")
    # Each update is (continuation so far, stats).
    texts = [text for text, _ in job]
    assert len(set(texts)) >= 3, f"expected several streamed updates, got {texts}"
    for before, after in zip(texts, texts[1:], strict=False):
        assert after.startswith(before)
    final_text, final_stats = job.outputs()[-1]
    assert final_text == texts[-1]
    assert "new tokens in" in final_stats and "tokens/s" in final_stats


def test_completion_with_a_seed_is_reproducible_and_differs_across_seeds(space):
    client = Client(space.url, verbose=False)
    sampled = dict(temperature=1.5, top_k=0, top_p=1.0, max_new_tokens=24)
    first = [
        client.predict("Once upon a time", *sampled.values(), seed, api_name="/complete")[0]
        for seed in (1, 2)
    ]
    again = [
        client.predict("Once upon a time", *sampled.values(), seed, api_name="/complete")[0]
        for seed in (1, 2)
    ]
    assert first == again
    assert first[0] != first[1]  # the seed is really used (24 tokens at temperature 1.5 of a random model)


def test_completion_without_a_seed_samples_freely(space):
    # An emptied seed box sends None: sampling goes on unseeded instead of failing on int(None).
    client = Client(space.url, verbose=False)
    runs = [client.predict("Once upon a time", 1.5, 0, 1.0, 24, None, api_name="/complete") for _ in range(2)]
    assert all("tokens/s" in stats for _, stats in runs)
    assert runs[0][0] != runs[1][0]  # not silently a fixed seed


def test_greedy_completion_is_the_model_continuation(space, lm):
    model, tokenizer = lm
    text, _ = Client(space.url, verbose=False).predict(
        "Once upon a time", *GREEDY, 16, 0, api_name="/complete"
    )
    assert text == direct_greedy(model, tokenizer, tokenizer("Once upon a time")["input_ids"], 16)


def test_classification_probabilities_are_the_softmax_of_the_classifier(space):
    text = "WINNER! Claim your free prize now"
    result, _ = Client(space.url, verbose=False).predict(text, api_name="/classify")
    got = {c["label"]: c["confidence"] for c in result["confidences"]}
    assert set(got) == set(LABELS.values())
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-6)
    model = AutoModelForSequenceClassification.from_pretrained(space.cls_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(space.cls_dir)
    with torch.no_grad():
        probs = model(**tokenizer(text, return_tensors="pt")).logits[0].softmax(-1)
    assert got == pytest.approx({LABELS[i]: p for i, p in enumerate(probs.tolist())}, abs=1e-5)
    assert result["label"] == max(got, key=got.get)


@pytest.mark.parametrize("text", ["Hello, do you like tea?", "naïve café 😀 \n\n  spaces", "a"])
def test_tokens_tab_shows_the_tokenizer_ids_and_pieces_that_rebuild_the_text(space, lm, text):
    _, tokenizer = lm
    pieces, ids, summary = Client(space.url, verbose=False).predict(text, api_name="/tokens")
    assert ids == tokenizer(text)["input_ids"]
    assert [p["class_or_confidence"] for p in pieces] == [str(i) for i in ids]
    if text.isascii():  # multi-byte characters may be split across tokens, each decoded on its own
        assert "".join(p["token"] for p in pieces) == text
    assert summary.startswith(f"{len(ids)} tokens for {len(text)} characters")


# ---------------------------------------------------------------- bad input


def test_empty_message_is_refused_with_a_message_and_the_app_keeps_serving(space):
    client = Client(space.url, verbose=False)
    for empty in ("", "   \n"):
        with pytest.raises(AppError, match="empty"):
            client.predict(message=empty, api_name="/chat")
    reply, stats = client.predict(message="still there?", temperature=0.0, max_new_tokens=4, api_name="/chat")
    assert isinstance(reply, str) and "tokens/s" in stats


def test_empty_prompt_completes_from_the_start_token(space, lm):
    model, tokenizer = lm
    text, _ = Client(space.url, verbose=False).predict("", *GREEDY, 8, 0, api_name="/complete")
    assert text == direct_greedy(model, tokenizer, [tokenizer.bos_token_id], 8)


@pytest.mark.parametrize("endpoint", ["/complete", "/chat"])
def test_prompt_of_100k_characters_is_cut_from_the_left_and_still_answered(space, lm, endpoint):
    model, tokenizer = lm
    prompt = "".join(f"word{i} " for i in range(20_000))[:100_000]
    client = Client(space.url, verbose=False)
    if endpoint == "/complete":
        text, stats = client.predict(prompt, *GREEDY, 16, 0, api_name=endpoint)
        ids = tokenizer(prompt)["input_ids"]
        assert text == direct_greedy(model, tokenizer, ids[-(CONTEXT - 16) :], 16)
    else:
        text, stats = client.predict(message=prompt, temperature=0.0, max_new_tokens=16, api_name=endpoint)
        assert isinstance(text, str)
    assert "cut from the left" in stats and f"{CONTEXT}-token context" in stats
    assert "tokens/s" in stats


def test_max_new_tokens_above_the_cap_is_refused_by_the_ui_and_clamped_by_the_server(space, lm):
    client = Client(space.url, verbose=False)
    refused = rf"Value 10000 is greater than maximum value {CAP}\."  # gradio's check of the slider's range
    with pytest.raises(AppError, match=refused):
        client.predict("Hi", *GREEDY, 10_000, 0, api_name="/complete")
    with pytest.raises(AppError, match=refused):
        client.predict(message="Hi", temperature=0.0, max_new_tokens=10_000, api_name="/chat")
    assert "tokens/s" in client.predict("Hi", *GREEDY, CAP, 0, api_name="/complete")[1]
    # Behind the slider, the server clamps whatever it is asked for.
    app = load_app()
    _, tokenizer = lm
    kept, max_new, note = app.apply_limits(tokenizer("Hi")["input_ids"], 10_000, cap=CAP, context=CONTEXT)
    assert max_new == CAP and f"clamped from 10000 to {CAP}" in note
    kept, max_new, _ = app.apply_limits(list(range(500)), 10_000, cap=10_000, context=CONTEXT)
    assert max_new == CONTEXT - 1 and kept == [499]


def test_fit_to_context_cuts_from_the_left():
    app = load_app()
    assert app.fit_to_context(list(range(10)), context=6, max_new_tokens=2) == ([6, 7, 8, 9], 6)
    assert app.fit_to_context([1, 2], context=6, max_new_tokens=2) == ([1, 2], 0)


def _biased_copy(model, token_id: int):
    """A copy of `model` whose final hidden state is always (a scaled) embedding of `token_id`: greedy
    decoding then emits `token_id` at every step (tied weights: logits = wte @ h)."""
    biased = type(model)(model.config).eval()
    biased.load_state_dict(model.state_dict())
    with torch.no_grad():
        wte = biased.get_input_embeddings().weight
        wte[token_id] *= 10  # its logit, 100 |w|^2, beats every other w_i . 10 w
        ln_f = biased.transformer.ln_f
        ln_f.weight.zero_()
        ln_f.bias.copy_(wte[token_id])
    return biased


def test_stream_generate_shows_only_new_tokens_and_stops_at_eos(lm):
    model, tokenizer = lm
    app = load_app()
    prompt = tokenizer("Once upon")["input_ids"]
    token = tokenizer("e")["input_ids"][0]
    steps = list(app.stream_generate(_biased_copy(model, token), tokenizer, prompt, max_new_tokens=10))
    assert steps[-1].done and steps[-1].new_tokens == 10
    assert steps[-1].text == tokenizer.decode([token] * 10)

    steps = list(app.stream_generate(_biased_copy(model, tokenizer.eos_token_id), tokenizer, prompt, 10))
    assert steps[-1].done and steps[-1].new_tokens == 1 and steps[-1].text == ""


def test_a_failing_generation_raises_instead_of_hanging(lm):
    model, tokenizer = lm
    out_of_vocabulary = [model.config.vocab_size + 5]  # the embedding lookup fails inside generate's thread
    with pytest.raises(RuntimeError, match="generation failed"):
        list(load_app().stream_generate(model, tokenizer, out_of_vocabulary, max_new_tokens=4))


def test_empty_text_to_classify_is_refused_with_a_message(space):
    client = Client(space.url, verbose=False)
    with pytest.raises(AppError, match="empty"):
        client.predict("", api_name="/classify")
    assert client.predict("fine now", api_name="/classify")[0]["label"] in LABELS.values()


@pytest.mark.parametrize("name", ["absolute", "no-such-run/lm"])  # the second also reads as a hub id
def test_missing_model_folder_exits_non_zero_naming_the_path(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such-checkpoint" if name == "absolute" else name
    with pytest.raises(SystemExit) as exit_info:
        load_app().main(["--model", str(missing)])  # start-up, before any server is launched
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert str((tmp_path / missing).resolve()) in err
    assert "does not exist" in err or "there is no folder" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no model given: pass --model"),
        (["--model", "m", "--max_new_tokens_cap", "0"], "--max_new_tokens_cap must be at least 1, not 0"),
        (["--model", "m", "--concurrency", "-2"], "--concurrency must be at least 1, not -2"),
    ],
)
def test_bad_command_line_is_a_usage_error(monkeypatch, capsys, argv, message):
    monkeypatch.delenv("MODEL_ID", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        load_app().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("trust_remote_code", [False, True])
def test_with_the_package_installed_no_code_from_the_checkpoint_runs(space, trust_remote_code):
    assert (space.lm_dir / "modeling_scratch_gpt.py").is_file()  # the folder ships code (and an auto_map) ...
    model, _ = load_app().load_checkpoint(str(space.lm_dir), trust_remote_code=trust_remote_code)
    assert (
        type(model).__module__ == "hf_scratch_gpt.model.modeling_scratch_gpt"
    )  # ... but the package's classes load


@pytest.mark.slow  # a fresh interpreter importing gradio and transformers: 10-30 s
def test_without_the_package_custom_code_runs_only_with_trust_remote_code(space, tmp_path):
    # As if hf_scratch_gpt were not installed: the checkpoint's own modeling code is then the only way to load it.
    script = f"""
import sys
sys.modules["hf_scratch_gpt"] = None  # makes `import hf_scratch_gpt` raise ImportError
sys.path.insert(0, {str(APP_PATH.parent)!r})
import app
assert not app.HAVE_PACKAGE
try:
    app.main(["--model", {str(space.lm_dir)!r}])
except SystemExit as exit:
    print("exit code", exit.code)
model, _ = app.load_checkpoint({str(space.lm_dir)!r}, trust_remote_code=True)
print("loaded", type(model).__module__)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "exit code 1" in proc.stdout
    assert "--trust_remote_code" in proc.stderr and str(space.lm_dir) in proc.stderr
    assert "loaded transformers_modules." in proc.stdout  # the class came from the checkpoint folder


def _tabs_and_notice(demo) -> tuple[str, bool]:
    """The tab the page opens on, and whether the base-model notice is shown (from the app's page config)."""
    components = demo.config["components"]
    (tabs,) = [c for c in components if c["type"] == "tabs"]
    notice = any(c["props"].get("elem_id") == "base-model-notice" for c in components)
    return tabs["props"]["selected"], notice


def test_a_base_model_opens_on_complete_and_its_chat_tab_says_so(space):
    app = load_app()
    model, tokenizer = app.load_checkpoint(str(space.lm_dir), "causal")
    assert (
        getattr(model.config, "chat_finetuned", None) is None
    )  # saved by pretraining, never instruct-finetuned
    selected, notice = _tabs_and_notice(app.build_demo(model, tokenizer, model_name="base"))
    assert (selected, notice) == ("complete", True)
    markdown = [c["props"].get("value", "") for c in app.build_demo(model, tokenizer).config["components"]]
    assert any("This is a base model" in text and "**Complete** tab" in text for text in markdown)


def test_a_chat_finetuned_model_opens_on_chat_without_the_notice(space, tmp_path):
    app = load_app()
    model, tokenizer = app.load_checkpoint(str(space.lm_dir), "causal")
    model.config.chat_finetuned = True  # what recipes/finetune_instruct.py records
    model.save_pretrained(tmp_path / "chat")
    tokenizer.save_pretrained(tmp_path / "chat")
    reloaded, tokenizer = app.load_checkpoint(str(tmp_path / "chat"), "causal")
    assert _tabs_and_notice(app.build_demo(reloaded, tokenizer)) == ("chat", False)


def _chat_tab(demo) -> tuple[list[str], str]:
    """The example prompts the empty chat offers, and the text above the chat (from the app's page config)."""
    components = demo.config["components"]
    (chatbot,) = [c for c in components if c["type"] == "chatbot"]
    guide = [c["props"]["value"] for c in components if c["props"].get("elem_id") == "chat-guide"]
    return [example["text"] for example in chatbot["props"].get("examples") or []], "".join(guide)


@pytest.mark.parametrize("multiturn", [True, False])
def test_a_chat_model_offers_the_prompts_it_was_trained_on(space, tmp_path, multiturn):
    """What recipes/finetune_instruct.py records in config.json becomes clickable examples and a note."""
    app = load_app()
    model, tokenizer = app.load_checkpoint(str(space.lm_dir), "causal")
    examples = ["What is 4 + 5?", "Reverse the word order: red cat blue"]
    model.config.update(
        {
            "chat_finetuned": True,
            "chat_examples": examples,
            "chat_multiturn": multiturn,
            "chat_task_families": ["reverse_words", "add"],
        }
    )
    model.save_pretrained(tmp_path / "chat")
    tokenizer.save_pretrained(tmp_path / "chat")
    reloaded, tokenizer = app.load_checkpoint(str(tmp_path / "chat"), "causal")
    shown, guide = _chat_tab(app.build_demo(reloaded, tokenizer))
    assert shown == examples
    assert "built-in task set (reverse words, add)" in guide
    assert ("single-turn data only" in guide) is not multiturn
    assert "**Clear**" in guide  # how to start a new chat, either way


def test_a_chat_model_without_recorded_examples_offers_none(space, tmp_path):
    """A chat checkpoint saved before the recipe recorded examples (or by another tool): no examples, no note."""
    app = load_app()
    model, tokenizer = app.load_checkpoint(str(space.lm_dir), "causal")
    model.config.chat_finetuned = True
    shown, guide = _chat_tab(app.build_demo(model, tokenizer))
    assert shown == [] and "single-turn" not in guide and "built-in task set" not in guide


def test_dtype_and_quantize_flags_prepare_the_model_and_refuse_unknown_choices(monkeypatch, capsys, lm):
    app = load_app()
    monkeypatch.delenv("DTYPE", raising=False)
    args = app.parse_args(["--model", "m"])
    assert (args.dtype, args.quantize) == ("auto", "none")
    assert app.parse_args(["--model", "m", "--dtype", "bfloat16", "--quantize", "int8_weights"]).quantize == (
        "int8_weights"
    )
    with pytest.raises(SystemExit):
        app.parse_args(["--model", "m", "--dtype", "float16"])
    assert "invalid choice: 'float16'" in capsys.readouterr().err
    model, _ = lm
    ready, precision = app.prepare_model(model, "float32", "int8")
    assert ready is not model and precision == "float32, int8 weights and activations (PyTorch dynamic)"
