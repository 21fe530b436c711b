"""Gradio Space for hf_scratch_gpt: chat, completion, classification and a look at the tokenizer.

The last stage of the pipeline: the model generates text autoregressively (with its KV cache) behind a UI.
Works with any causal LM checkpoint the Auto classes can load, ours or GPT-2. It opens on Chat for a checkpoint
that recipes/finetune_instruct.py made (its config.json says `"chat_finetuned": true`); for a base model the Chat
tab says so and the app opens on Complete, which is what a base model does well. A chat model's Chat tab offers
the held-out prompts the recipe recorded with it (config.json `chat_examples`) as examples, names what it was
trained on, and notes a model trained on single-turn data only; its Clear button starts a new chat.

Run locally:

    python space/app.py --model outputs/instruct --classifier outputs/spam --port 7860

On Hugging Face Spaces set the variables MODEL_ID (and optionally CLASSIFIER_ID) instead of flags.

A model that cannot be loaded (a damaged file is named) stops the app at start-up with that message. A classifier
that cannot classify (damaged, or a language model with no trained head) leaves the other tabs working, and the
Classify tab says why.

`--dtype auto|float32|bfloat16` and `--quantize none|int8|int8_weights` (or the variables DTYPE and QUANTIZE)
choose the precision the model answers in: auto is bfloat16 where the hardware computes it natively, else
float32; int8 runs the Linear layers in int8 (PyTorch's dynamic quantization, CPU only: the fast one), and
int8_weights stores their weights as int8 through torchao (`pip install 'hf_scratch_gpt[quantize]'`). Both need
the package installed; without it the model answers in float32. Measured quality and speed: benchmarks/RESULTS.md.

With the hf_scratch_gpt package installed (`pip install -e .` in the repository), `import hf_scratch_gpt`
registers ScratchGPT with the Auto classes, so no code from the checkpoint runs. Without it, a ScratchGPT
checkpoint needs the modeling code saved with it: pass --trust_remote_code (or set TRUST_REMOTE_CODE=1), only
for checkpoints you trust.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

try:
    import hf_scratch_gpt  # noqa: F401  (registers ScratchGPT with the Auto classes)

    HAVE_PACKAGE = True
except ImportError:
    HAVE_PACKAGE = False

MAX_TOKENS_SHOWN = 2000  # the Tokens tab colours at most this many tokens (the browser slows down beyond)
# generate() samples from torch's global RNG, shared by all threads: one generation at a time keeps a seeded
# completion reproducible (on CPU one generation already uses all cores). The queue still admits `concurrency`
# requests per endpoint; their generations take turns here. Every holder finishes (at most max_new_tokens
# steps, fewer once its reader has left), so waiting requests always get their turn.
_GENERATE_LOCK = threading.Lock()


# ---------------------------------------------------------------- loading


def resolve_checkpoint(name: str) -> str:
    """A local folder as an absolute path, or a hub id unchanged; a missing folder raises FileNotFoundError."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    looks_like_hub_id = not name.startswith((".", "/", "~", "\\")) and name.count("/") <= 1
    if not looks_like_hub_id or path.exists():
        raise FileNotFoundError(
            f"model folder {path.resolve()} does not exist (or is not a folder): pass a folder written by "
            "save_pretrained (config.json, model.safetensors, tokenizer files) or a hub id like user/name"
        )
    return name


def load_checkpoint(name: str, head: str = "causal", trust_remote_code: bool = False):
    """Load (model, tokenizer) for `head` "causal" or "classify" from a folder or hub id, ready for inference."""
    source = resolve_checkpoint(name)
    # The installed package provides the classes: never run the copy of the code saved with the checkpoint.
    trust = trust_remote_code and not HAVE_PACKAGE
    auto_class = AutoModelForCausalLM if head == "causal" else AutoModelForSequenceClassification
    try:
        if HAVE_PACKAGE:  # a damaged weights or tokenizer file: an error naming it
            from hf_scratch_gpt.model.checkpoint_files import check_checkpoint_files

            check_checkpoint_files(source)
        model, loading = auto_class.from_pretrained(source, trust_remote_code=trust, output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust)
    except Exception as err:  # safetensors' and tokenizers' errors are neither OSError nor ValueError
        hint = (
            ""
            if Path(source).is_dir()
            else f" (there is no folder {Path(name).resolve()}, so it was tried as a hub id)"
        )
        if not (HAVE_PACKAGE or trust):
            hint += (
                ". If it is a ScratchGPT checkpoint, install hf_scratch_gpt (pip install -e . in the repository) "
                "or pass --trust_remote_code / TRUST_REMOTE_CODE=1 to run the modeling code saved with it"
            )
        raise RuntimeError(f"could not load {head} checkpoint {source!r}: {err}{hint}") from err
    if head == "classify":
        check_trained_head(model, loading["missing_keys"], source)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval(), tokenizer


def prepare_model(model, dtype: str = "auto", quantize: str = "none"):
    """(`model` ready to answer at `dtype` with `quantize` weights, the setting in words) through the package's
    hf_scratch_gpt.model.inference; without the package only float32 is possible (auto means float32)."""
    if HAVE_PACKAGE:
        from hf_scratch_gpt.model.inference import prepare_for_inference

        ready, setting = prepare_for_inference(model, dtype, quantize)
        return ready, setting.describe()
    if dtype not in ("auto", "float32") or quantize != "none":
        raise RuntimeError(
            f"--dtype {dtype} --quantize {quantize} needs the hf_scratch_gpt package (pip install -e . in the "
            "repository; for int8_weights also: pip install 'hf_scratch_gpt[quantize]'); without it run with --dtype "
            "float32 --quantize none"
        )
    return model.float(), "float32"


def check_trained_head(model, missing_keys, source: str) -> None:
    """Refuse a classifier whose head the checkpoint does not hold (a language model's folder, say).

    from_pretrained initialises such a head at random and only its load report says so, so the Classify tab
    would show plausible but made-up probabilities. The weights decide, not config.json's `architectures`: they
    are what was trained (and a config can name a classifier whose head was never saved).
    """
    head = sorted(key for key in missing_keys if not key.startswith(f"{model.base_model_prefix}."))
    if head:
        saved_as = ", ".join(getattr(model.config, "architectures", None) or ["an unknown class"])
        raise RuntimeError(
            f"{source} has no trained classification head: its weights hold no {', '.join(head)} (it was saved "
            f"as {saved_as}), so the head would be random and its label probabilities made up. Finetune a "
            f"classifier from it (python recipes/finetune_classifier.py --model_name_or_path {source} "
            f"--train_file DATA --output_dir outputs/classifier) and pass that folder as --classifier."
        )


def is_chat_model(model) -> bool:
    """True for a checkpoint that recipes/finetune_instruct.py finetuned (it records chat_finetuned in the config)."""
    return getattr(model.config, "chat_finetuned", False) is True


BASE_MODEL_NOTICE = (
    "**This is a base model**, not a chat model: it was pretrained to continue text and was not finetuned on "
    "instructions, so its replies here will not follow what you ask. Use the **Complete** tab, or finetune it "
    "first: `python recipes/finetune_instruct.py --model_name_or_path {name}`."
)
SINGLE_TURN_NOTICE = (
    "**Trained on single-turn data only:** it answers the first message of a chat; for each new question start "
    "a new chat (the **Clear** button at the top right of the chat)."
)
NEW_CHAT_HINT = "The **Clear** button at the top right of the chat starts a new chat."


def chat_examples(model) -> list[str]:
    """The held-out prompts recipes/finetune_instruct.py recorded in config.json (`chat_examples`), or []."""
    examples = getattr(model.config, "chat_examples", None)
    return [e for e in examples if isinstance(e, str) and e.strip()] if isinstance(examples, list) else []


def chat_guide(model) -> str:
    """What the Chat tab says about a chat model: what it was trained on, and how to ask it (markdown, or "")."""
    config = model.config
    families = getattr(config, "chat_task_families", None)
    lines = []
    if families:
        lines.append(
            f"Trained on the built-in task set ({', '.join(f.replace('_', ' ') for f in families)}): ask the way "
            "its examples below do. Other questions get short answers in the same style."
        )
    elif chat_examples(model):
        lines.append("The examples below are held-out prompts from its training data.")
    single_turn = getattr(config, "chat_multiturn", None) is False
    lines.append(SINGLE_TURN_NOTICE if single_turn else NEW_CHAT_HINT)
    return "\n\n".join(lines)


def context_length(model) -> int:
    """The longest sequence (prompt + new tokens) the model's position embeddings allow."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"{type(model.config).__name__} names no context length (max_position_embeddings)")


# ---------------------------------------------------------------- limits (pure helpers)


def fit_to_context(ids: list[int], context: int, max_new_tokens: int) -> tuple[list[int], int]:
    """Cut `ids` from the left so that ids + max_new_tokens fit `context`; return (kept ids, number cut).

    >>> fit_to_context([1, 2, 3, 4, 5], context=4, max_new_tokens=1)
    ([3, 4, 5], 2)
    """
    cut = max(0, len(ids) - (context - max_new_tokens))
    return ids[cut:], cut


def apply_limits(ids: list[int], requested: float, cap: int, context: int) -> tuple[list[int], int, str]:
    """Clamp the new-token budget to [1, cap] and cut the prompt from the left to fit the context.

    Returns (prompt ids to use, max new tokens, a note saying what was changed or "").

    >>> kept, max_new, note = apply_limits([1, 2, 3, 4, 5], requested=1000, cap=2, context=6)
    >>> kept, max_new
    ([2, 3, 4, 5], 2)
    >>> print(note)
    Prompt cut from the left: kept the last 4 of 5 tokens to fit the 6-token context. Max new tokens clamped from 1000 to 2.
    """
    max_new = max(1, min(int(requested), cap, context - 1))  # leave room for at least one prompt token
    kept, cut = fit_to_context(ids, context, max_new)
    notes = []
    if cut:
        notes.append(
            f"Prompt cut from the left: kept the last {len(kept)} of {len(ids)} tokens to fit the "
            f"{context}-token context."
        )
    if int(requested) > max_new:
        notes.append(f"Max new tokens clamped from {int(requested)} to {max_new}.")
    return kept, max_new, " ".join(notes)


# ---------------------------------------------------------------- generation


@dataclass
class Generation:
    """Decoded new text so far; `done` once generate() returned, with its token count and time."""

    text: str
    done: bool = False
    new_tokens: int = 0
    seconds: float = 0.0

    def speed(self) -> str:
        if not self.done:
            return "generating..."
        rate = self.new_tokens / self.seconds if self.seconds > 0 else 0.0
        return f"{self.new_tokens} new tokens in {self.seconds:.2f} s ({rate:.1f} tokens/s)"


class _StopOnEvent(StoppingCriteria):
    """Ends generate() early when the reader went away (the user pressed stop or closed the page)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), device=input_ids.device)


def stream_generate(
    model,
    tokenizer,
    prompt_ids: list[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[Generation]:
    """Yield the growing continuation of `prompt_ids` (only new tokens, EOS hidden), then a final `done` one.

    generate() runs in a thread and pushes tokens into a TextIteratorStreamer that this generator reads.
    temperature 0 is greedy decoding; top_k 0 and top_p 1 switch those filters off.

    Usage (with `model, tokenizer = load_checkpoint("out/sft")`):

        for g in stream_generate(model, tokenizer, tokenizer("Hello")["input_ids"], max_new_tokens=8):
            print(g.text, g.speed())
    """
    input_ids = torch.tensor([prompt_ids], device=model.device)  # (1, T)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    stop = threading.Event()
    kwargs = dict(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=max_new_tokens,
        streamer=streamer,
        stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p))
    else:
        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    result: dict = {}

    def run() -> None:
        try:
            with _GENERATE_LOCK:
                if seed is not None:
                    torch.manual_seed(int(seed))
                start = time.perf_counter()
                output = model.generate(**kwargs)  # (1, T + new)
                result["seconds"] = time.perf_counter() - start
                result["new_tokens"] = output.shape[1] - input_ids.shape[1]
        except Exception as err:  # surfaced by the reading side below
            result["error"] = err
            streamer.end()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    text = ""
    try:
        for chunk in streamer:
            if chunk:
                text += chunk
                yield Generation(text)
    finally:
        stop.set()  # no-op when generation finished; stops it when the reader left early
    thread.join()
    if "error" in result:
        raise RuntimeError(f"generation failed: {result['error']}") from result["error"]
    yield Generation(text, done=True, new_tokens=result["new_tokens"], seconds=result["seconds"])


def classify_text(model, tokenizer, text: str) -> tuple[dict[str, float], int]:
    """Label probabilities for `text` (cut from the left to fit the context), and how many tokens were cut."""
    ids, cut = fit_to_context(tokenizer(text)["input_ids"], context_length(model), 0)
    if not ids:
        raise ValueError("the text is empty: type something to classify")
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0]  # (num_labels,)
    probs = logits.float().softmax(-1).tolist()
    return {model.config.id2label.get(i, f"LABEL_{i}"): p for i, p in enumerate(probs)}, cut


def token_pieces(tokenizer, text: str) -> tuple[list[str], list[int]]:
    """How the tokenizer splits `text`: each token decoded on its own (a split UTF-8 char shows as U+FFFD)."""
    ids = tokenizer(text)["input_ids"]
    return tokenizer.batch_decode([[i] for i in ids]), ids


# ---------------------------------------------------------------- UI


def _shown_in_ui(fn):
    """Turn any exception into gr.Error so the page shows the message and the app keeps serving."""

    def as_ui_error(err: Exception) -> gr.Error:
        return err if isinstance(err, gr.Error) else gr.Error(f"{type(err).__name__}: {err}")

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapped_gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise as_ui_error(err) from err

        return wrapped_gen

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise as_ui_error(err) from err

    return wrapped


def _text_of(content) -> str:
    """Text of a chat message's content (a string, or gradio's list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def build_demo(
    model,
    tokenizer,
    classifier=None,
    classifier_tokenizer=None,
    model_name: str = "model",
    max_new_tokens_cap: int = 256,
    concurrency: int = 4,
    classifier_error: str | None = None,
    precision: str | None = None,
) -> gr.Blocks:
    """The Blocks app with Chat, Complete, Classify and Tokens tabs.

    Requests are queued; each endpoint serves at most `concurrency` at once (gradio counts the limit per
    event), and generations run one at a time on the model (`_GENERATE_LOCK`). `classifier_error`: why the
    classifier given could not be loaded, shown in the Classify tab.
    """
    context = context_length(model)
    cap = min(max_new_tokens_cap, context - 1)

    def generate_with_limits(ids: list[int], requested: float, **sampling) -> Iterator[tuple[str, str]]:
        # An empty prompt starts from the BOS token, as GPT-2's unconditional samples do.
        start = ids or [
            tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ]
        kept, max_new, note = apply_limits(start, requested, cap, context)
        if note:
            gr.Warning(note)
        for g in stream_generate(model, tokenizer, kept, max_new, **sampling):
            yield g.text, f"{note} {g.speed()}".strip()

    @_shown_in_ui
    def chat(message: str, history: list[dict], temperature: float, max_new_tokens: float):
        if not message or not message.strip():
            raise gr.Error("The message is empty: type something, then send.")
        messages = [{"role": m["role"], "content": _text_of(m["content"])} for m in history]
        messages.append({"role": "user", "content": message})
        if tokenizer.chat_template is None:
            raise gr.Error("This tokenizer has no chat template: use the Complete tab instead.")
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        yield from generate_with_limits(ids, max_new_tokens, temperature=temperature, top_k=50, top_p=0.95)

    @_shown_in_ui
    def complete(
        prompt: str, temperature: float, top_k: float, top_p: float, max_new_tokens: float, seed: float
    ):
        ids = tokenizer(prompt)["input_ids"] if prompt else []
        seed = None if seed is None else int(seed)  # an emptied seed box: unseeded sampling
        sampling = dict(temperature=temperature, top_k=int(top_k), top_p=top_p, seed=seed)
        yield from generate_with_limits(ids, max_new_tokens, **sampling)

    @_shown_in_ui
    def classify(text: str):
        probs, cut = classify_text(classifier, classifier_tokenizer or tokenizer, text)
        return probs, (f"Text cut from the left: {cut} tokens dropped to fit the context." if cut else "")

    @_shown_in_ui
    def tokens(text: str):
        pieces, ids = token_pieces(tokenizer, text)
        shown = list(zip(pieces[:MAX_TOKENS_SHOWN], map(str, ids[:MAX_TOKENS_SHOWN]), strict=True))
        summary = f"{len(ids)} tokens for {len(text)} characters"
        if len(ids) > MAX_TOKENS_SHOWN:
            summary += f" (colouring the first {MAX_TOKENS_SHOWN})"
        return shown, ids, summary

    n_params = sum(p.numel() for p in model.parameters())
    chat_model = is_chat_model(model)
    kind = "chat model" if chat_model else "base model (not instruction-finetuned)"
    with gr.Blocks(title=f"hf_scratch_gpt: {model_name}") as demo:
        gr.Markdown(
            f"# hf_scratch_gpt\n`{model_name}`: {type(model).__name__}, {kind}, {n_params:,} parameters, "
            f"{context}-token context, on {model.device}{f' in {precision}' if precision else ''}. Prompts "
            "longer than the context are cut from the "
            f"left; at most {cap} new tokens per request."
        )
        with gr.Tabs(selected="chat" if chat_model else "complete"):
            with gr.Tab("Chat", id="chat"):
                if not chat_model:
                    gr.Markdown(BASE_MODEL_NOTICE.format(name=model_name), elem_id="base-model-notice")
                else:
                    gr.Markdown(chat_guide(model), elem_id="chat-guide")
                chat_stats = gr.Markdown(render=False)
                examples = chat_examples(model) if chat_model else []
                gr.ChatInterface(
                    chat,
                    api_name="chat",
                    # Shown in the empty chat, run on click; with additional inputs gradio wants one list each.
                    examples=[[example] for example in examples] or None,
                    cache_examples=False,
                    additional_inputs=[
                        gr.Slider(
                            0.0,
                            2.0,
                            value=0.0 if chat_model else 0.8,  # a chat model answers best as it was evaluated
                            step=0.05,
                            label="Temperature (0 = greedy)",
                            render=False,
                        ),
                        gr.Slider(1, cap, value=min(64, cap), step=1, label="Max new tokens", render=False),
                    ],
                    additional_inputs_accordion=gr.Accordion("Sampling", open=False, render=False),
                    additional_outputs=[chat_stats],
                    fill_height=False,
                )
                chat_stats.render()
            with gr.Tab("Complete", id="complete"):
                prompt = gr.Textbox(label="Prompt", lines=4, placeholder="Once upon a time")
                with gr.Row():
                    temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature (0 = greedy)")
                    top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
                    top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p (1 = off)")
                with gr.Row():
                    max_new = gr.Slider(1, cap, value=min(64, cap), step=1, label="Max new tokens")
                    seed = gr.Number(value=0, precision=0, label="Seed (same seed, same text; empty: random)")
                complete_button = gr.Button("Complete", variant="primary")
                continuation = gr.Textbox(label="Continuation", lines=8)
                complete_stats = gr.Markdown()
                complete_button.click(
                    complete,
                    [prompt, temperature, top_k, top_p, max_new, seed],
                    [continuation, complete_stats],
                    api_name="complete",
                )
            with gr.Tab("Classify", id="classify"):
                if classifier_error is not None:
                    gr.Markdown(
                        f"**The classifier cannot be used.** {classifier_error}", elem_id="classifier-error"
                    )
                elif classifier is None:
                    gr.Markdown(
                        "No classifier loaded: start the app with `--classifier DIR` (or `CLASSIFIER_ID`)."
                    )
                else:
                    text = gr.Textbox(label="Text", lines=4)
                    classify_button = gr.Button("Classify", variant="primary")
                    label = gr.Label(label="Label probabilities")
                    classify_note = gr.Markdown()
                    classify_button.click(classify, text, [label, classify_note], api_name="classify")
            with gr.Tab("Tokens", id="tokens"):
                token_text = gr.Textbox(label="Text", lines=4, value="Hello, do you like tea?")
                tokenize_button = gr.Button("Tokenize", variant="primary")
                token_summary = gr.Markdown()
                pieces = gr.HighlightedText(label="Tokens (id after each)", show_legend=False)
                ids = gr.JSON(label="Token ids", max_height=240)
                tokenize_button.click(tokens, token_text, [pieces, ids, token_summary], api_name="tokens")
    demo.queue(default_concurrency_limit=concurrency, max_size=256)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=env.get("MODEL_ID"), help="causal LM folder or hub id (MODEL_ID)")
    parser.add_argument("--classifier", default=env.get("CLASSIFIER_ID"), help="classifier (CLASSIFIER_ID)")
    parser.add_argument("--host", default=env.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--max_new_tokens_cap", type=int, default=256, help="most new tokens per request")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="requests each endpoint serves at once; others queue"
    )
    parser.add_argument(
        "--dtype",
        default=env.get("DTYPE", "auto"),
        choices=["auto", "float32", "bfloat16"],
        help="precision the model answers in: auto is bfloat16 where the hardware computes it natively, else "
        "float32 (DTYPE)",
    )
    parser.add_argument(
        "--quantize",
        default=env.get("QUANTIZE", "none"),
        choices=["none", "int8", "int8_weights"],
        help="int8: the Linear layers in int8 weights and activations (PyTorch, CPU only); int8_weights: int8 "
        "weights through torchao, pip install 'hf_scratch_gpt[quantize]' (QUANTIZE)",
    )
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        default=env.get("TRUST_REMOTE_CODE") == "1",
        help="run the modeling code saved in the checkpoint (only when hf_scratch_gpt is not installed)",
    )
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("no model given: pass --model DIR_OR_HUB_ID or set MODEL_ID")
    for flag in ("max_new_tokens_cap", "concurrency"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, not {getattr(args, flag)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        model, tokenizer = load_checkpoint(args.model, "causal", args.trust_remote_code)
        model, precision = prepare_model(model, args.dtype, args.quantize)
    except (FileNotFoundError, RuntimeError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    # A classifier that cannot be used leaves the other tabs working; the Classify tab says why.
    classifier = classifier_tokenizer = classifier_error = None
    if args.classifier:
        try:
            classifier, classifier_tokenizer = load_checkpoint(
                args.classifier, "classify", args.trust_remote_code
            )
        except (FileNotFoundError, RuntimeError) as err:
            classifier_error = str(err)
            print(f"warning: the Classify tab is off: {err}", file=sys.stderr)
    if args.trust_remote_code and HAVE_PACKAGE:
        print("note: hf_scratch_gpt is installed, so its classes are used and no checkpoint code runs")
    demo = build_demo(
        model,
        tokenizer,
        classifier,
        classifier_tokenizer,
        model_name=args.model,
        max_new_tokens_cap=args.max_new_tokens_cap,
        concurrency=args.concurrency,
        classifier_error=classifier_error,
        precision=precision,
    )
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
