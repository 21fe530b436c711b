"""Shared by the Space tests: a tiny random checkpoint and space/app.py launched in-process on 127.0.0.1.

`shared_space()` starts one app for the whole test session (the three test files use it), so the tokenizer
training, checkpoint saving and server start-up happen once.
"""

from __future__ import annotations

import atexit
import importlib.util
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import torch

from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM, ScratchGPTForSequenceClassification
from scratch_tokenizer.default_corpus import default_corpus_text
from scratch_tokenizer.train import train_tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_PATH = REPO_ROOT / "space" / "app.py"
CONTEXT = 128  # tiny context so that long prompts really are cut
LABELS = {0: "ham", 1: "spam"}
CAP = 32  # max new tokens per request in the app under test
CONCURRENCY = 4  # requests each endpoint of the app under test serves at once


def load_app():
    """space/app.py as a module (it is a script in a folder, not part of the package)."""
    if "space_app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("space_app", APP_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["space_app"] = module
        spec.loader.exec_module(module)
    return sys.modules["space_app"]


def make_tokenizer():
    """Our BPE with 43 merges, trained on the start of the built-in corpus (a second or two)."""
    return train_tokenizer(texts=[default_corpus_text()[:50_000]], vocab_size=300, show_progress=False)


def build_checkpoints(root: Path) -> tuple[Path, Path]:
    """Save a tiny random ScratchGPT LM and classifier (with a trained tokenizer) under `root`."""
    tokenizer = make_tokenizer()
    eos = tokenizer.eos_token_id
    sizes = dict(vocab_size=len(tokenizer), n_positions=CONTEXT, n_embd=32, n_layer=2, n_head=2)
    torch.manual_seed(0)
    lm_dir, cls_dir = root / "lm", root / "classifier"
    ScratchGPTForCausalLM(ScratchGPTConfig(**sizes, bos_token_id=eos, eos_token_id=eos)).save_pretrained(
        lm_dir
    )
    classifier_config = ScratchGPTConfig(
        **sizes, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, id2label=LABELS, num_labels=2
    )
    ScratchGPTForSequenceClassification(classifier_config).save_pretrained(cls_dir)
    for folder in (lm_dir, cls_dir):
        tokenizer.save_pretrained(folder)
    return lm_dir, cls_dir


def chat_checkpoint(folder: Path, context: int = 512, **chat_config) -> Path:
    """A tiny random LM saved as recipes/finetune_instruct.py saves a chat model (`chat_finetuned` and the
    `chat_config` it records, e.g. chat_examples), with a context long enough for a few turns."""
    tokenizer = make_tokenizer()
    eos = tokenizer.eos_token_id
    config = ScratchGPTConfig(
        vocab_size=len(tokenizer), n_positions=context, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=eos, eos_token_id=eos, chat_finetuned=True, **chat_config,
    )  # fmt: skip
    torch.manual_seed(0)
    ScratchGPTForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(demo) -> Iterator[str]:
    """Launch `demo` in this process on a free port of 127.0.0.1; yield its url; close it afterwards."""
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield url
    finally:
        demo.close()


@contextmanager
def running_app(
    root: Path, max_new_tokens_cap: int = CAP, concurrency: int = CONCURRENCY
) -> Iterator[SimpleNamespace]:
    """Serve fresh tiny checkpoints saved under `root`; yield (url, demo, lm_dir, cls_dir); close afterwards."""
    app = load_app()
    lm_dir, cls_dir = build_checkpoints(root)
    model, tokenizer = app.load_checkpoint(str(lm_dir), "causal")
    classifier, classifier_tokenizer = app.load_checkpoint(str(cls_dir), "classify")
    demo = app.build_demo(
        model,
        tokenizer,
        classifier,
        classifier_tokenizer,
        model_name="tiny-test",
        max_new_tokens_cap=max_new_tokens_cap,
        concurrency=concurrency,
    )
    with serving(demo) as url:
        yield SimpleNamespace(url=url, demo=demo, lm_dir=lm_dir, cls_dir=cls_dir)


_SHARED: list[SimpleNamespace] = []


def shared_space(tmp_path_factory) -> SimpleNamespace:
    """The app of `running_app` (CAP new tokens, CONCURRENCY), started on first use, closed at exit."""
    if not _SHARED:
        stack = ExitStack()
        _SHARED.append(stack.enter_context(running_app(tmp_path_factory.mktemp("space"))))
        atexit.register(stack.close)
    return _SHARED[0]
