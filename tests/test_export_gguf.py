"""GGUF export (`python -m hf_scratch_gpt.convert --to_gguf`): checked against transformers' own GGUF loader.

transformers reads a GGUF with its own code (its gpt2 tensor map, its dequantization, its tokenizer builder), so
loading our file there and comparing with our model tests the file, not our writer against itself. llama.cpp
itself is not run here (it needs a build): the names, layouts and types follow its converter and loader, and the
metadata is read back field by field with `gguf.GGUFReader`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

gguf = pytest.importorskip("gguf", reason="the GGUF export needs the `gguf` extra: pip install -e '.[gguf]'")

from recipe_helpers import ascii_text, make_checkpoint  # noqa: E402
from transformers import AutoTokenizer, GPT2LMHeadModel  # noqa: E402

from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM, ScratchGPTForSequenceClassification  # noqa: E402
from hf_scratch_gpt.convert import main  # noqa: E402
from hf_scratch_gpt.export.gguf_limits import MAX_CONTEXT, MAX_VOCAB, check_gguf_tokenizer  # noqa: E402
from hf_scratch_gpt.export.ollama import USER_MARKER  # noqa: E402
from scratch_tokenizer.hf_tokenizer import serving_chat_template  # noqa: E402

N_POSITIONS = 64
FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}  # llama.cpp's LlamaFileType values
Q8_BLOCK = 32


def randomize_biases_and_norms(model: torch.nn.Module) -> None:
    """Fresh models have zero biases and unit LayerNorms: make them random so that their export is tested too."""
    torch.manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(torch.randn_like(param) * 0.1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny ScratchGPT with our trained BPE tokenizer (n_embd 32: every matrix row is one q8_0 block)."""
    folder = make_checkpoint(
        tmp_path_factory.mktemp("gguf") / "ckpt", ascii_text(20_000), n_positions=N_POSITIONS
    )
    model = ScratchGPTForCausalLM.from_pretrained(folder)
    randomize_biases_and_norms(model)
    model.save_pretrained(folder)
    return folder


def save_variant(folder: Path, tokenizer_from: Path, model_class=ScratchGPTForCausalLM, **config) -> Path:
    """Another model with the checkpoint's tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    fields = dict(vocab_size=len(tokenizer), n_positions=N_POSITIONS, n_embd=32, n_layer=2, n_head=2)
    fields |= dict(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id) | config
    torch.manual_seed(1)
    model = model_class(ScratchGPTConfig(**fields))
    randomize_biases_and_norms(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def odd_checkpoint(checkpoint, tmp_path_factory) -> Path:
    """n_embd 40 (rows of 40 weights: no whole q8_0 block) and an LM head not tied to the embedding."""
    return save_variant(
        tmp_path_factory.mktemp("gguf") / "odd", checkpoint, n_embd=40, tie_word_embeddings=False
    )


_exports: dict = {}


def export(source: Path, outtype: str) -> Path:
    """`convert --to_gguf` once per (checkpoint, outtype) in this module; the .gguf path."""
    key = (source, outtype)
    if key not in _exports:
        out = source.parent / f"{source.name}-{outtype}"
        main(["--to_gguf", str(source), "--output_dir", str(out), "--outtype", outtype])
        _exports[key] = out / f"model-{outtype}.gguf"
    return _exports[key]


def load_gguf_with_transformers(path: Path) -> GPT2LMHeadModel:
    # transformers' gpt2 mapping sends context_length to n_ctx, not n_positions: pass the context.
    return GPT2LMHeadModel.from_pretrained(path.parent, gguf_file=path.name, n_positions=N_POSITIONS).eval()


def ids_for(vocab_size: int) -> torch.Tensor:
    return torch.randint(0, vocab_size, (3, 40), generator=torch.Generator().manual_seed(7))


def greedy(model, prompt: torch.Tensor, eos: int) -> torch.Tensor:
    settings = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=eos)
    return model.generate(prompt, **settings)


# ---------------------------------------------------------------- weights: f32 exact, the others rounded as stated


@pytest.mark.parametrize("which", ["checkpoint", "odd_checkpoint"])
def test_f32_gives_our_logits_and_greedy_tokens(request, which):
    source = request.getfixturevalue(which)
    ours = ScratchGPTForCausalLM.from_pretrained(source).eval()
    loaded = load_gguf_with_transformers(export(source, "f32"))
    assert (
        loaded.config.tie_word_embeddings is ours.config.tie_word_embeddings
    )  # `output` written only if untied
    ids = ids_for(ours.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, ours(ids).logits, rtol=0, atol=1e-5)
    eos = ours.config.eos_token_id
    assert torch.equal(greedy(loaded, ids[:1, :10], eos), greedy(ours, ids[:1, :10], eos))


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)  # C's roundf, which ggml's q8_0 reference uses


def q8_0(weight: torch.Tensor) -> torch.Tensor:
    """ggml's q8_0, written from its definition: each run of 32 weights of a row shares one scale d = max|w| / 127,
    stored as f16; each weight is round(w / d), an int8. Returns the dequantized weights."""
    blocks = weight.reshape(-1, Q8_BLOCK)
    d = blocks.abs().amax(dim=1, keepdim=True) / 127
    q = round_half_away(blocks * torch.where(d == 0, 0, 1 / d))
    return (q * d.half().float()).reshape(weight.shape)


def stored_type(name: str, weight: torch.Tensor, outtype: str) -> str:
    """What llama.cpp's converter stores a tensor as: 1-D and the position embedding in f32, a q8_0 matrix whose
    rows are not whole blocks in f16. Our nn.Linear weights are (out, in): a row is the last dimension, as ggml's."""
    if weight.dim() == 1 or name.endswith("wpe.weight"):
        return "f32"
    if outtype == "q8_0" and weight.shape[-1] % Q8_BLOCK:
        return "f16"
    return outtype


ROUND = {
    "f32": lambda w: w,
    "f16": lambda w: w.half().float(),
    "bf16": lambda w: w.bfloat16().float(),  # round to nearest even, as ggml's fp32 -> bf16
    "q8_0": q8_0,
}


def rounded_model(source: Path, outtype: str) -> ScratchGPTForCausalLM:
    """Our model with each weight rounded as the file stores it: the reference the loaded GGUF must equal."""
    model = ScratchGPTForCausalLM.from_pretrained(source).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():  # a tied lm_head is wte itself (named once)
            param.copy_(ROUND[stored_type(name, param, outtype)](param))
    return model


# Against the fp32 model: a weight moves by at most half its rounding step, relative to its size (f16: 2**-11;
# bf16: 2**-8) or to its block's largest weight (q8_0: 1/254 < 2**-7.9). Through 2 blocks and the LM head these
# relative errors add up rather than cancel in the worst case, so a logit may move by a few times that fraction
# of the largest logit; 4x the per-weight bound times max |logit| holds that with room (measured on these
# checkpoints: 0.4-0.5x for f16 and bf16, 0.1-1.4x for q8_0, whose step is relative to a block's largest weight).
WEIGHT_ERROR = {"f16": 2**-11, "bf16": 2**-8, "q8_0": 1 / 254}


@pytest.mark.parametrize("outtype", ["f16", "bf16", "q8_0"])
@pytest.mark.parametrize("which", ["checkpoint", "odd_checkpoint"])
def test_rounded_types_hold_exactly_the_rounded_weights(request, which, outtype):
    source = request.getfixturevalue(which)
    loaded = load_gguf_with_transformers(export(source, outtype))
    reference = rounded_model(source, outtype)
    ours = ScratchGPTForCausalLM.from_pretrained(source).eval()
    ids = ids_for(ours.config.vocab_size)
    with torch.no_grad():
        got, expected, exact = loaded(ids).logits, reference(ids).logits, ours(ids).logits
    # The file holds exactly the rounded weights: the same logits as our model with them (float32 sums aside).
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    tolerance = 4 * WEIGHT_ERROR[outtype] * exact.abs().max().item()
    assert (got - exact).abs().max().item() <= tolerance
    # Greedy tokens: identical to the rounded reference (same weights). Against fp32 only where the best token
    # leads the next by more than twice the tolerance; closer calls may flip, which is no fault of the file.
    eos = ours.config.eos_token_id
    assert torch.equal(greedy(loaded, ids[:1, :10], eos), greedy(reference, ids[:1, :10], eos))
    top2 = exact.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 2 * tolerance
    assert clear.any()
    assert torch.equal(got.argmax(-1)[clear], exact.argmax(-1)[clear])


def test_types_follow_llama_cpps_converter(odd_checkpoint):
    """n_embd 40: rows of 40 (attention, ffn_up, embeddings) cannot be q8_0 and fall back to f16; ffn_down's rows
    are n_inner = 160 = 5 blocks; 1-D tensors and the position embedding stay f32."""
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(export(odd_checkpoint, "q8_0")).tensors}
    assert types["blk.0.ffn_down.weight"] == "Q8_0"
    for name in ("token_embd.weight", "output.weight", "blk.1.attn_qkv.weight", "blk.1.ffn_up.weight"):
        assert types[name] == "F16", name
    assert types["position_embd.weight"] == "F32"
    assert all(types[name] == "F32" for name in types if name.endswith(("bias", "norm.weight")))


# llama.cpp's converter recognises a BPE pre-tokenizer by hashing its tokenization of a fixed text, so it knows only
# published vocabularies; ours splits as GPT-2's does, so the run names it "gpt-2", as our export does.
LLAMA_CPP_CONVERTER = """
import runpy, sys
sys.path[:0] = [".", "gguf-py"]
import conversion.base
conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
sys.argv = ["convert_hf_to_gguf.py", *sys.argv[1:]]
runpy.run_path("convert_hf_to_gguf.py", run_name="__main__")
"""
# What llama.cpp's converter writes differently: the name (it reads none from a GPT-2 folder) and a size label.
CONVERTER_ONLY = {"general.name", "general.size_label", "GGUF.kv_count"}


@pytest.mark.parametrize("outtype", ["f32", "q8_0"])
def test_same_file_as_llama_cpps_own_converter(checkpoint, tmp_path, outtype):
    """llama.cpp's convert_hf_to_gguf.py on our GPT-2 export writes the same tensors (names, types, shapes,
    bytes) and the same metadata. LLAMA_CPP_SOURCE: a llama.cpp source folder, such as vendor/llama.cpp of the
    llama-cpp-python sdist (pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36)."""
    source = Path(os.environ.get("LLAMA_CPP_SOURCE", "/nonexistent"))
    if not (source / "convert_hf_to_gguf.py").is_file():
        pytest.skip(
            "set LLAMA_CPP_SOURCE to a llama.cpp source folder (with convert_hf_to_gguf.py and gguf-py)"
        )
    gpt2 = tmp_path / "gpt2"
    main(["--to_gpt2", str(checkpoint), "--output_dir", str(gpt2)])
    theirs = tmp_path / f"llama-cpp-{outtype}.gguf"
    subprocess.run(
        [sys.executable, "-c", LLAMA_CPP_CONVERTER, str(gpt2), "--outtype", outtype, "--outfile", str(theirs)],
        cwd=source, check=True, capture_output=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    (ours, our_tensors), (their_fields, their_tensors) = fields(export(checkpoint, outtype)), fields(theirs)
    assert {k: v for k, v in ours.items() if k not in CONVERTER_ONLY} == {
        k: v for k, v in their_fields.items() if k not in CONVERTER_ONLY
    }
    theirs_by_name = {t.name: t for t in their_tensors}
    assert sorted(theirs_by_name) == sorted(t.name for t in our_tensors)
    for tensor in our_tensors:
        other = theirs_by_name[tensor.name]
        assert (tensor.tensor_type, list(tensor.shape)) == (other.tensor_type, list(other.shape)), tensor.name
        assert bytes(tensor.data) == bytes(other.data), tensor.name


# ---------------------------------------------------------------- metadata, field by field


def fields(path: Path) -> tuple[dict, list]:
    """The file's metadata as Python values, and its tensors."""
    reader = gguf.GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items()}, reader.tensors


@pytest.mark.parametrize("outtype", ["f32", "q8_0"])
def test_metadata_matches_the_checkpoint(checkpoint, outtype):
    meta, tensors = fields(export(checkpoint, outtype))
    config = json.loads((checkpoint / "config.json").read_text())
    spec = json.loads((checkpoint / "tokenizer.json").read_text())
    tokenizer_config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    template = (checkpoint / "chat_template.jinja").read_text()
    assert meta["general.architecture"] == "gpt2" and meta["general.name"] == checkpoint.name
    assert meta["gpt2.context_length"] == config["n_positions"] == N_POSITIONS
    assert meta["gpt2.embedding_length"] == config["n_embd"]
    assert meta["gpt2.block_count"] == config["n_layer"]
    assert meta["gpt2.feed_forward_length"] == 4 * config["n_embd"]  # n_inner None: GPT-2's 4 * n_embd
    assert meta["gpt2.attention.head_count"] == config["n_head"]
    assert meta["gpt2.attention.layer_norm_epsilon"] == pytest.approx(config["layer_norm_epsilon"], rel=1e-7)
    assert meta["general.file_type"] == FILE_TYPES[outtype]
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    by_id = {index: token for token, index in spec["model"]["vocab"].items()}
    by_id |= {added["id"]: added["content"] for added in spec["added_tokens"]}
    assert meta["tokenizer.ggml.tokens"] == [by_id[i] for i in range(config["vocab_size"])]
    special = {added["id"] for added in spec["added_tokens"] if added["special"]}
    assert meta["tokenizer.ggml.token_type"] == [
        3 if i in special else 1 for i in range(config["vocab_size"])
    ]
    assert meta["tokenizer.ggml.merges"] == [" ".join(merge) for merge in spec["model"]["merges"]]
    for key, token in [
        ("bos", "bos_token"),
        ("eos", "eos_token"),
        ("unknown", "unk_token"),
        ("padding", "pad_token"),
    ]:
        assert by_id[meta[f"tokenizer.ggml.{key}_token_id"]] == tokenizer_config[token], key
    assert meta["tokenizer.ggml.eos_token_id"] == config["eos_token_id"]
    assert meta["tokenizer.ggml.add_bos_token"] is False and meta["tokenizer.ggml.add_eos_token"] is False
    assert meta["tokenizer.chat_template"] == serving_chat_template(template) != template
    assert "{% generation %}" not in meta["tokenizer.chat_template"] and "{% generation %}" in template
    names = {t.name for t in tensors}
    assert "output.weight" not in names  # tied: llama.cpp and transformers reuse token_embd
    blocks = {f"blk.{i}.{part}.{kind}" for i in range(config["n_layer"]) for kind in ("weight", "bias")
              for part in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down")}  # fmt: skip
    assert names == {
        "token_embd.weight",
        "position_embd.weight",
        "output_norm.weight",
        "output_norm.bias",
        *blocks,
    }
    shapes = {t.name: list(t.shape) for t in tensors}  # ggml's order: the row (input) dimension first
    assert shapes["blk.0.ffn_up.weight"] == [config["n_embd"], 4 * config["n_embd"]]
    assert shapes["token_embd.weight"] == [config["n_embd"], config["vocab_size"]]


TEXTS = [
    "",
    "a",
    "Hello world, it's 2024!",
    "  leading spaces, trailing \n\n\tand tabs   ",
    "def f(x):\n    return x ** 2  # code",
    "ünïcödé, 한국어, 日本語 and emoji 🚀🦙",
    "<|endoftext|>special in the middle<|endoftext|>",
    "I've been told he'll say 'RE you sure?'",
]


def test_tokenizer_loaded_from_gguf_encodes_like_ours(checkpoint):
    path = export(checkpoint, "f32")
    from_gguf = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    ours = AutoTokenizer.from_pretrained(checkpoint)
    for text in TEXTS:
        assert from_gguf(text)["input_ids"] == ours(text)["input_ids"], text
        assert from_gguf.decode(ours(text)["input_ids"]) == text
    assert from_gguf.eos_token == ours.eos_token


# ---------------------------------------------------------------- the Ollama Modelfile


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs as Ollama reads a Modelfile: one per line, `#` comments, and an argument
    in triple quotes spanning lines."""
    pairs = []
    for match in re.finditer(r'^(?!#)(\w+) ("""(.*?)"""|[^\n]*)$', text, re.MULTILINE | re.DOTALL):
        pairs.append((match[1].upper(), match[3] if match[3] is not None else match[2]))
    return pairs


GO_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
ROLE_IS = re.compile(r'(?:else )?if eq \.Role "(\w+)"')


def go_tokens(template: str) -> list[tuple[str, str]]:
    """("text", s) and ("action", a) in order, with `{{-` / `-}}` trimming the whitespace beside them applied."""
    tokens, position, trim_next = [], 0, False
    for match in GO_ACTION.finditer(template):
        text = template[position : match.start()]
        text = text.lstrip() if trim_next else text
        tokens += [("text", text.rstrip() if match[1] else text), ("action", match[2])]
        position, trim_next = match.end(), bool(match[3])
    tail = template[position:]
    return [*tokens, ("text", tail.lstrip() if trim_next else tail)]


def go_parse(tokens: list, index: int = 0) -> tuple[list, int, str | None]:
    """Nodes up to the `end` / `else...` that closes this level: (nodes, its index, that action or None)."""
    nodes = []
    while index < len(tokens):
        kind, value = tokens[index]
        if kind == "text" or value == ".Content":
            nodes.append((kind, value))
        elif value == "range .Messages":
            body, index, closer = go_parse(tokens, index + 1)
            assert closer == "end", closer
            nodes.append(("range", body))
        elif value.startswith("if "):
            branches, condition = [], value
            while True:
                body, index, closer = go_parse(tokens, index + 1)
                branches.append((condition, body))
                if closer == "end":
                    break
                condition = closer
            nodes.append(("if", branches))
        elif value == "end" or value.startswith("else"):
            return nodes, index, value
        else:
            raise ValueError(f"action {value!r} is not in this renderer's subset")
        index += 1
    return nodes, index, None


def go_render(nodes: list, messages: list[dict], message: dict | None = None) -> str:
    out = []
    for kind, value in nodes:
        if kind == "text":
            out.append(value)
        elif kind == "action":  # .Content
            out.append(message["content"])
        elif kind == "range":
            out += [go_render(value, messages, each) for each in messages]
        else:  # the first branch whose condition holds: `if` / `else if eq .Role "x"`, or a bare `else`
            for condition, body in value:
                role = ROLE_IS.fullmatch(condition)
                if condition == "else" or message["role"] == role[1]:
                    out.append(go_render(body, messages, message))
                    break
    return "".join(out)


def render_go_template(template: str, messages: list[dict]) -> str:
    """Go text/template, the subset Ollama chat templates use: text, {{ .Content }}, {{ range .Messages }},
    {{ if eq .Role "x" }} / {{ else if eq .Role "y" }} / {{ else }} / {{ end }}, and `{{-` / `-}}` trimming."""
    nodes, _, closer = go_parse(go_tokens(template))
    assert closer is None, f"unbalanced {{{{ {closer} }}}}"
    return go_render(nodes, messages)


CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Name a colour."}],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke\nwith two lines."},
    ],
    [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Two"},
        {"role": "user", "content": "Three"},
        {"role": "assistant", "content": "Four"},
        {"role": "user", "content": ""},
    ],
]


def test_go_renderer_itself():
    """The test's renderer on hand-worked cases, so the comparison below rests on something checked."""
    template = '{{ range .Messages }}{{ if eq .Role "user" }}U:{{ .Content }}{{ else }}X{{ end }}|{{ end }}'
    messages = [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]
    assert render_go_template(template, messages) == "U:a|X|"
    assert render_go_template("a  {{- range .Messages }} b {{- end }}", messages) == "a b b"
    assert render_go_template("{{ range .Messages }}x{{ end }}!", []) == "!"


def test_modelfile_matches_the_export_and_our_chat_template(checkpoint):
    path = export(checkpoint, "q8_0")
    pairs = parse_modelfile((path.parent / "Modelfile").read_text())
    instructions = dict(pairs)
    assert (path.parent / instructions["FROM"]).resolve() == path.resolve()
    parameters = [argument.split(" ", 1) for name, argument in pairs if name == "PARAMETER"]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert ["stop", f'"{tokenizer.eos_token}"'] in parameters and ["stop", f'"{USER_MARKER}"'] in parameters
    assert ["num_ctx", str(N_POSITIONS)] in parameters  # no position embedding past the context
    assert ["temperature", "0"] in parameters
    tokenizer.chat_template = serving_chat_template(tokenizer.chat_template)
    for messages in CONVERSATIONS:
        expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert render_go_template(instructions["TEMPLATE"], messages) == expected


# ---------------------------------------------------------------- bad input and the output folder


def test_unsupported_outtype_lists_the_valid_ones(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--to_gguf", str(checkpoint), "--output_dir", str(tmp_path / "out"), "--outtype", "q4_0"])
    error = capsys.readouterr().err
    assert "invalid choice: 'q4_0'" in error and all(f"'{name}'" in error for name in FILE_TYPES)
    with pytest.raises(SystemExit):
        main(["--to_gpt2", str(checkpoint), "--output_dir", str(tmp_path / "out"), "--outtype", "f16"])
    assert "--outtype applies to --to_gguf only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def refused(source: Path, tmp_path: Path, match: str, error=ValueError, direction="--to_gguf") -> None:
    out = tmp_path / "refused"
    with pytest.raises(error, match=match):
        main([direction, str(source), "--output_dir", str(out)])
    assert not out.exists()  # refused before the output folder is touched


# Both exports other runtimes read start from the same checks (hf_scratch_gpt/export/source.py).
EXPORTS = pytest.mark.parametrize("direction", ["--to_gguf", "--to_gpt2"])


@EXPORTS
def test_lora_adapter_folder_says_merge_first(checkpoint, tmp_path, direction):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        ScratchGPTForCausalLM.from_pretrained(checkpoint), LoraConfig(r=2, target_modules=["c_attn"])
    )
    model.save_pretrained(tmp_path / "adapter")
    shutil.copy(checkpoint / "tokenizer.json", tmp_path / "adapter")
    shutil.copy(checkpoint / "tokenizer_config.json", tmp_path / "adapter")
    refused(tmp_path / "adapter", tmp_path, r"LoRA adapter .* --merge_adapter", direction=direction)


@EXPORTS
def test_classifier_is_refused_with_why(checkpoint, tmp_path, direction):
    source = save_variant(tmp_path / "clf", checkpoint, ScratchGPTForSequenceClassification, num_labels=2)
    refused(source, tmp_path, r"sequence classifier .* `score` head .* 2 labels", direction=direction)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"vocab_size": MAX_VOCAB + 1}, f"over llama.cpp's limit of {MAX_VOCAB:,} \\(token ids are int32\\)"),
        (
            {"n_positions": MAX_CONTEXT + 1},
            f"over GGUF's limit of {MAX_CONTEXT:,} \\(context_length is a uint32",
        ),
        ({"activation_function": "relu"}, "tanh approximation"),
    ],
)
def test_what_the_runtime_cannot_hold_is_refused_before_loading(checkpoint, tmp_path, config, match):
    """Only config.json (no weights: a 2**31-token embedding is never built): the check runs on the config."""
    folder = tmp_path / "big"
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    ScratchGPTConfig(
        n_embd=32, n_layer=1, n_head=2, eos_token_id=tokenizer.eos_token_id, **config
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    refused(folder, tmp_path, match)


def test_checkpoint_without_tokenizer_is_refused(checkpoint, tmp_path):
    ScratchGPTForCausalLM.from_pretrained(checkpoint).save_pretrained(tmp_path / "bare")
    refused(tmp_path / "bare", tmp_path, "carries its tokenizer, and this checkpoint has none")


def test_a_tokenizer_llama_cpp_would_split_differently_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()  # not GPT-2's regex, not byte-level
    bpe.train_from_iterator(["some words to learn merges from"] * 5, trainers.BpeTrainer(vocab_size=60))
    with pytest.raises(ValueError, match="not a byte-level BPE with GPT-2's pre-tokenizer"):
        check_gguf_tokenizer(PreTrainedTokenizerFast(tokenizer_object=bpe), vocab_size=100)


def test_a_vocabulary_larger_than_the_embedding_is_refused(checkpoint, tmp_path):
    source = save_variant(tmp_path / "small", checkpoint, vocab_size=200)  # the tokenizer has 300 tokens
    refused(source, tmp_path, "the tokenizer has 300 tokens but the model's embedding only 200 rows")


def test_output_folder_is_never_overwritten_unasked_nor_the_source(checkpoint, tmp_path):
    out = tmp_path / "out"
    args = ["--to_gguf", str(checkpoint), "--output_dir", str(out)]
    main(args)
    first = (out / "model-f32.gguf").read_bytes()
    with pytest.raises(FileExistsError, match="already holds another run"):
        main(args)
    main([*args, "--overwrite_output_dir"])
    assert (out / "model-f32.gguf").read_bytes() == first  # the same export again
    # A source that is itself a run folder: exporting into it would empty what the export reads.
    source = tmp_path / "run"
    shutil.copytree(checkpoint, source)
    (source / "run.json").write_text(json.dumps({"recipe": "pretrain", "command": []}))
    with pytest.raises(ValueError, match="this run starts from .* inside it"):
        main(["--to_gguf", str(source), "--output_dir", str(source), "--overwrite_output_dir"])
    assert (source / "model.safetensors").is_file()


def test_missing_gguf_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    monkeypatch.delitem(sys.modules, "hf_scratch_gpt.export.gguf_file", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'hf_scratch_gpt\[gguf\]'"):
        import hf_scratch_gpt.export.gguf_file  # noqa: F401
