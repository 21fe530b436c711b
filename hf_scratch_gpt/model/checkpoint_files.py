"""A checkpoint folder's files checked before a run starts from them.

A copy cut short or a file overwritten by mistake otherwise fails deep inside the libraries with a message that
names no file (safetensors: "incomplete metadata, file not fully covered"; json: "line 624 column 2"; tokenizers:
"Token 'zzzq' out of vocabulary"). Here it is an error saying which file is damaged, how, and what to do:

    >>> check_checkpoint_files("outputs/pretrain")  # doctest: +SKIP
    ValueError: outputs/pretrain/model.safetensors is damaged (truncated): expected 151,080 bytes, found
    75,540; copy it again from where it was saved, or save the model again; with no whole copy, train it again

The weights check lives in the modeling file (it runs from `from_pretrained` there too, where this package is
not installed); the tokenizer check in scratch_tokenizer (`load_chat_tokenizer` runs it).
"""

from pathlib import Path

from hf_scratch_gpt.model.modeling_scratch_gpt import check_safetensors_file
from scratch_tokenizer.hf_tokenizer import check_tokenizer_files


def check_checkpoint_files(name_or_path: str | Path, weights: bool = True, tokenizer: bool = True) -> None:
    """Raise ValueError naming the first damaged file of a local checkpoint folder: a weights file
    (*.safetensors: its size against its header) or a tokenizer file. A Hub id or a file is left alone."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return
    if weights:
        for path in sorted(folder.glob("*.safetensors")):
            check_safetensors_file(path)
    if tokenizer:
        check_tokenizer_files(folder)
