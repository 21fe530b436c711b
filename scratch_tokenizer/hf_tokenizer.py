"""The Hugging Face side of the tokenizer: our BPE as a fast `tokenizers` model.

The merges we learn in Python become a Rust `tokenizers.models.BPE` with GPT-2's pipeline, wrapped as a
`PreTrainedTokenizerFast`. It gives the same ids as `ByteLevelBPE.encode` (the tests check), runs at Rust
speed, and saves to a folder that `AutoTokenizer.from_pretrained` loads without this package installed.

    >>> from scratch_tokenizer.bpe import train_bpe
    >>> from scratch_tokenizer.hf_tokenizer import to_hf_tokenizer
    >>> bpe = train_bpe(["aaabdaaabac"], vocab_size=260, show_progress=False)
    >>> tokenizer = to_hf_tokenizer(bpe, model_max_length=1024)
    >>> tokenizer("aaabdaaabac<|endoftext|>")["input_ids"]
    [258, 100, 258, 97, 99, 259]

Pipeline: Split(GPT-2 regex, "isolated") cuts pre-tokens exactly as `ByteLevelBPE` does, ByteLevel
(use_regex=False) writes their bytes in GPT-2's printable alphabet, BPE applies the merges by rank, and the
ByteLevel decoder turns tokens back into bytes and UTF-8 text. Special tokens are added tokens: the HF
tokenizer always treats text spelling one as that special token (our `encode` default "all"; pass
`split_special_tokens=True` to the HF tokenizer to encode it as plain text). Lone surrogates: the Rust core
rejects them (TypeError) where `ByteLevelBPE.encode` reads them as U+FFFD; clean such text with
`scratch_tokenizer.bpe.replace_surrogates` first.
"""

import json
import re
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from scratch_tokenizer.bpe import GPT2_SPLIT_PATTERN, ByteLevelBPE, bytes_to_unicode

# Chat format with plain-text markers, so it also works with GPT-2's vocabulary (no new special tokens):
#
#   {system}\n\n### User:\n{user}\n\n### Assistant:\n{assistant}<|endoftext|>\n\n### User:\n ...
#
# The system message is optional. Each assistant answer ends with the eos token, so a model learns to stop.
# `{% generation %}` marks the answer and its eos, for `return_assistant_tokens_mask=True` (loss on the
# assistant's tokens only). `add_generation_prompt=True` appends "### Assistant:\n" for the model to continue.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '### User:\\n' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '### Assistant:\\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{{ '\\n\\n' }}"
    "{% else %}"
    "{{ raise_exception('unknown chat role ' + message['role'] + ': use system, user or assistant') }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif %}"
)

# `{% generation %}` / `{% endgeneration %}` (also with `-` whitespace control): a transformers-only Jinja extension.
GENERATION_MARKERS = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def serving_chat_template(template: str) -> str:
    """`template` without the training-only `{% generation %}` markers, for runtimes that do not know them.

    The markers only tell `return_assistant_tokens_mask=True` which tokens are the assistant's; without them the
    template renders the same text, which is what llama.cpp, Ollama, CTranslate2 users or any plain Jinja loader
    need. Exports use this; training keeps CHAT_TEMPLATE as it is.

    >>> serving_chat_template("A{% generation %}{{ x }}{%- endgeneration -%}B")
    'A{{ x }}B'
    """
    return GENERATION_MARKERS.sub("", template)


def serving_tokenizer(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """`tokenizer` made ready for an export that other runtimes read, in place (and returned).

    The chat template loses its training-only markers (`serving_chat_template`), and a tokenizer saved before
    `to_hf_tokenizer` named an unk token gets eos as unk, as GPT-2 has: CTranslate2 refuses a null unk_token,
    and a byte-level BPE never produces an unknown token, so no encoding changes.
    """
    if tokenizer.unk_token is None and tokenizer.eos_token is not None:
        tokenizer.unk_token = tokenizer.eos_token
    template = tokenizer.chat_template
    if isinstance(template, str):
        tokenizer.chat_template = serving_chat_template(template)
    elif isinstance(template, dict):  # named templates: {"default": ..., "tool_use": ...}
        tokenizer.chat_template = {name: serving_chat_template(t) for name, t in template.items()}
    return tokenizer


# The JSON files a saved tokenizer folder may hold (tokenizer.json is the fast tokenizer itself).
TOKENIZER_JSON_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
)


def check_tokenizer_files(folder: str | Path) -> None:
    """Raise ValueError naming the first damaged tokenizer file in `folder`: JSON that does not parse (a file cut
    short while copying, most often), or a tokenizer.json that `tokenizers` cannot build, such as a merge of a
    token missing from the vocabulary. What transformers says then names no file."""
    fix = (
        "Copy it again from where it was saved, or save the tokenizer again (tokenizer.save_pretrained); with no "
        "whole copy, train a new one (python -m scratch_tokenizer) and the model again with it"
    )
    folder = Path(folder)
    for path in (folder / name for name in TOKENIZER_JSON_FILES):
        if not path.is_file():
            continue
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            whole = text.rstrip().endswith(("}", "]"))  # where every saved JSON file ends
            cut = "" if whole else f" It ends mid-way, after {len(data):,} bytes: cut short."
            raise ValueError(
                f"{path} is damaged: not valid JSON ({err.msg} at line {err.lineno} column {err.colno} of "
                f"{len(text.splitlines())} lines).{cut} {fix}."
            ) from None
    if (folder / "tokenizer.json").is_file():
        try:
            Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as err:  # tokenizers raises plain Exception for bad merges and vocabularies
            raise ValueError(
                f"{folder / 'tokenizer.json'} is damaged: tokenizers cannot build a tokenizer from it ({err}). "
                f"{fix}."
            ) from None


def load_tokenizer(name: str | Path, trust_remote_code: bool = False):
    """`AutoTokenizer.from_pretrained(name)`, with a local folder's files checked first (`check_tokenizer_files`)."""
    from transformers import AutoTokenizer

    if Path(name).is_dir():
        check_tokenizer_files(name)
    return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)


def load_chat_tokenizer(name: str, trust_remote_code: bool = False, pad_with_eos: bool = True):
    """A checkpoint's tokenizer ready for chat data: `CHAT_TEMPLATE` when it has no template of its own (e.g.
    GPT-2's, or a base saved before chat finetuning) or has our template without its training markers (an
    export: `serving_tokenizer`), and, with `pad_with_eos`, EOS as padding when it has none."""
    tokenizer = load_tokenizer(name, trust_remote_code)
    if tokenizer.chat_template in (None, serving_chat_template(CHAT_TEMPLATE)):
        tokenizer.chat_template = CHAT_TEMPLATE  # the markers give the assistant-only loss its mask
    if pad_with_eos and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def byte_level_pre_tokenizer(pattern: str = GPT2_SPLIT_PATTERN) -> pre_tokenizers.PreTokenizer:
    """GPT-2's pre-tokenization in `tokenizers`: cut by `pattern`, then write each piece's bytes as text."""
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def to_hf_tokenizer(bpe: ByteLevelBPE, model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """Wrap `bpe` as a `PreTrainedTokenizerFast` that encodes exactly like `bpe.encode`.

    eos, bos, pad and unk are `<|endoftext|>` (as in GPT-2), or the first special token if there is no
    `<|endoftext|>`; `CHAT_TEMPLATE` is set when there is such an eos token (it ends each answer). A byte-level
    BPE never produces an unknown token (every byte is in the vocabulary), so unk changes no encoding; it is
    named because runtimes that read the tokenizer's config (CTranslate2) refuse a null unk_token.
    `model_max_length` is the model's context size when known (None: unlimited).

    One difference from `bpe.encode`: text holding a lone surrogate (U+D800..U+DFFF) raises TypeError here,
    where `bpe.encode` reads it as U+FFFD; pass such text through `bpe.replace_surrogates` first.
    """
    alphabet = bytes_to_unicode()
    special_ids = set(bpe.special_tokens.values())

    def as_text(token: bytes) -> str:
        return "".join(alphabet[b] for b in token)

    vocab = {as_text(token): idx for idx, token in bpe.vocab.items() if idx not in special_ids}
    vocab.update(bpe.special_tokens)
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(
            "token ids must be contiguous 0..N-1 for the HF export (added tokens would collide otherwise); "
            f"these {len(vocab)} tokens have ids up to {max(vocab.values())}"
        )
    merges = [(as_text(bpe.vocab[left]), as_text(bpe.vocab[right])) for left, right in bpe.merges]

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
    tokenizer.pre_tokenizer = byte_level_pre_tokenizer(bpe.pattern)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in bpe.special_tokens])

    specials = list(bpe.special_tokens)
    main_special = "<|endoftext|>" if "<|endoftext|>" in specials else (specials[0] if specials else None)
    extra = {"model_max_length": model_max_length} if model_max_length is not None else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=main_special,
        eos_token=main_special,
        pad_token=main_special,
        unk_token=main_special,
        extra_special_tokens=[t for t in specials if t != main_special],
        clean_up_tokenization_spaces=False,  # decode must give back the exact text
        chat_template=CHAT_TEMPLATE if main_special else None,
        **extra,
    )
