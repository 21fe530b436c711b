"""A ScratchGPT checkpoint as one GGUF file for llama.cpp's `gpt2` architecture, which llama.cpp and Ollama run.

The weights go through `to_gpt2` (our model as transformers' GPT-2), and from there exactly as llama.cpp's own
converter (`convert_hf_to_gguf.py`, class GPT2Model) takes a GPT-2 folder: the tensor names come from the `gguf`
package's own GPT-2 name map, and the four Conv1D weights are transposed back to (out_features, in_features),
because ggml stores a matrix as rows of its input dimension (llama.cpp creates `ffn_up` as {n_embd, n_ff}):

    transformer.wte / wpe           token_embd / position_embd       (vocab, n_embd) / (n_positions, n_embd)
    h.N.ln_1, h.N.ln_2              blk.N.attn_norm, blk.N.ffn_norm  weight and bias, (n_embd,)
    h.N.attn.c_attn / c_proj        blk.N.attn_qkv / attn_output     (3 n_embd, n_embd) / (n_embd, n_embd)
    h.N.mlp.c_fc / c_proj           blk.N.ffn_up / ffn_down          (n_inner, n_embd) / (n_embd, n_inner)
    transformer.ln_f / lm_head      output_norm / output             `output` only when not tied: llama.cpp and
                                                                     transformers' loader tie a file without it

Types follow llama.cpp's converter: 1-D tensors (norms, biases) and `position_embd` stay f32 whatever the
`--outtype`; a matrix whose rows (its last dimension) are not a multiple of q8_0's 32-weight block falls back to
f16. The tokenizer is stored as llama.cpp's "gpt2" BPE (tokens, types, merges, special ids) with the pre-tokenizer
named "gpt-2" (our regex is GPT-2's), and the chat template without the training-only `{% generation %}` markers.

    >>> write_gguf(model, tokenizer, "out/model-q8_0.gguf", "q8_0", name="my-model")  # doctest: +SKIP
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

try:
    import gguf
except ImportError as err:  # the optional extra
    raise ImportError(
        "GGUF export needs the `gguf` package: pip install 'hf_scratch_gpt[gguf]' (or pip install 'gguf>=0.19')"
    ) from err

from hf_scratch_gpt.export.gguf_limits import check_gguf_config, check_gguf_tokenizer, merge_strings
from hf_scratch_gpt.export.ollama import write_modelfile
from hf_scratch_gpt.export.source import load_export_config, load_export_model
from hf_scratch_gpt.model.gpt2 import CONV1D_SUFFIXES, to_gpt2
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from scratch_tokenizer.hf_tokenizer import serving_chat_template

Q = gguf.GGMLQuantizationType
# --outtype: the type of the matrices, and the file type the header announces (llama.cpp's `general.file_type`).
OUTTYPE_TYPES = {
    "f32": (Q.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (Q.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (Q.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (Q.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
ARCH = gguf.MODEL_ARCH.GPT2
ALWAYS_F32 = ("position_embd.weight",)  # llama.cpp's converter keeps it f32 in every file type


def gguf_file_name(outtype: str) -> str:
    return f"model-{outtype}.gguf"


def load_for_gguf(source: str | Path, tokenizer) -> ScratchGPTForCausalLM:
    """Check the checkpoint and its tokenizer against what a GGUF can hold (before any weight is read), then load
    the model."""
    config = load_export_config(source)
    check_gguf_config(config)
    check_gguf_tokenizer(tokenizer, config.vocab_size)
    return load_export_model(source)


def tensor_type(
    name: str, shape: tuple[int, ...], wanted: gguf.GGMLQuantizationType
) -> gguf.GGMLQuantizationType:
    """The type a tensor is stored in for a file of `wanted` matrices."""
    if len(shape) == 1 or name in ALWAYS_F32:
        return Q.F32
    block_size, _ = gguf.GGML_QUANT_SIZES[wanted]
    if shape[-1] % block_size:  # a q8_0 block is 32 weights of one row
        return Q.F16
    return wanted


def gguf_tensors(model: ScratchGPTForCausalLM, outtype: str) -> Iterator[tuple[str, np.ndarray, Q]]:
    """(GGUF name, float32 array in ggml's layout, storage type) for every tensor the file holds."""
    wanted, _ = OUTTYPE_TYPES[outtype]
    names = gguf.get_tensor_name_map(ARCH, model.config.n_layer)
    for hf_name, tensor in to_gpt2(model).state_dict().items():
        if hf_name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue  # the same tensor as token_embd
        module, _, kind = hf_name.rpartition(".")
        name = names.get_name(module)
        if name is None:
            raise ValueError(f"{hf_name} has no GGUF name in gguf's {ARCH.name} tensor map")
        data = tensor.detach().float().numpy()
        if hf_name.endswith(CONV1D_SUFFIXES):
            data = data.T  # Conv1D (in, out) -> (out, in): a row per output, over the inputs
        data = np.ascontiguousarray(data)
        yield f"{name}.{kind}", data, tensor_type(f"{name}.{kind}", data.shape, wanted)


def add_tokenizer(writer: gguf.GGUFWriter, tokenizer, vocab_size: int) -> None:
    """The tokenizer as llama.cpp's "gpt2" BPE: one token per embedding row, with its type, the merges by rank."""
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder  # id -> AddedToken
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:  # an embedding row no token uses (a vocabulary padded to a round size)
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[index])
        if index in added:  # added tokens are matched whole in the text; special ones are control tokens
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merge_strings(tokenizer))
    for kind in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{kind}_token_id")
        if token_id is not None:
            getattr(writer, f"add_{kind}_token_id")(token_id)
    # Whether encoding adds bos / eos, as the tokenizer itself does it (ours and GPT-2's add neither).
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(len(full) > len(plain) and full[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(len(full) > len(plain) and full[-1] == tokenizer.eos_token_id)
    if isinstance(tokenizer.chat_template, str):
        writer.add_chat_template(serving_chat_template(tokenizer.chat_template))


def write_gguf(model: ScratchGPTForCausalLM, tokenizer, path: str | Path, outtype: str, name: str) -> Path:
    """Write `model` and `tokenizer` as one GGUF file at `path`, its matrices in `outtype`."""
    config = model.config
    _, file_type = OUTTYPE_TYPES[outtype]
    writer = gguf.GGUFWriter(Path(path), gguf.MODEL_ARCH_NAMES[ARCH])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config.n_positions)
    writer.add_embedding_length(config.n_embd)
    writer.add_block_count(config.n_layer)
    writer.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
    writer.add_head_count(config.n_head)
    writer.add_layer_norm_eps(config.layer_norm_epsilon)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(writer, tokenizer, config.vocab_size)
    for tensor_name, data, qtype in gguf_tensors(model, outtype):
        # f32 / f16 arrays carry their type; bf16 and q8_0 come back as bytes, with the type given beside them.
        writer.add_tensor(tensor_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def write_gguf_folder(
    model: ScratchGPTForCausalLM, tokenizer, folder: str | Path, outtype: str, name: str
) -> Path:
    """The .gguf file and an Ollama Modelfile beside it, in `folder`; returns the .gguf path."""
    path = write_gguf(model, tokenizer, Path(folder) / gguf_file_name(outtype), outtype, name)
    write_modelfile(Path(folder), path.name, tokenizer, model.config.n_positions)
    return path
