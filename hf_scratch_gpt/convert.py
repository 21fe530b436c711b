"""The `convert` command: a ScratchGPT checkpoint to a transformers GPT-2 folder or a GGUF file (llama.cpp,
Ollama), or a GPT-2 to ScratchGPT.

The weight mapping itself is `hf_scratch_gpt.model.gpt2` (`from_gpt2`, `to_gpt2`), the GGUF file
`hf_scratch_gpt.export`; this command adds the folder around them: the tokenizer that sits with the source, and
the output-folder safety every run folder gets.

    python -m hf_scratch_gpt.convert --from_gpt2 openai-community/gpt2 --output_dir checkpoints/gpt2-scratch
    python -m hf_scratch_gpt.convert --to_gpt2 checkpoints/my-model --output_dir checkpoints/my-model-gpt2
    python -m hf_scratch_gpt.convert --to_gguf checkpoints/my-model --output_dir gguf/my-model --outtype q8_0
"""

import argparse
import sys
from pathlib import Path

from transformers import AutoTokenizer

from hf_scratch_gpt.export.gguf_limits import DEFAULT_OUTTYPE, OUTTYPES
from hf_scratch_gpt.export.source import load_export_config
from hf_scratch_gpt.model.gpt2 import from_gpt2, to_gpt2
from hf_scratch_gpt.training.run import prepare_run_folder
from scratch_tokenizer.hf_tokenizer import check_tokenizer_files, serving_tokenizer

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
)


def load_tokenizer_if_any(source: str):
    """The tokenizer that sits with the source checkpoint, or None when there is none.

    A local folder with tokenizer files that cannot be read is an error naming the file: an export without its
    tokenizer (and chat template) would look complete and fail later, far from the cause.
    """
    folder = Path(source)
    if not folder.is_dir():  # a Hub id: a repo without tokenizer files says so with an OSError
        try:
            return AutoTokenizer.from_pretrained(source)
        except OSError:
            return None
    present = [name for name in TOKENIZER_FILES if (folder / name).is_file()]
    if not present:
        return None
    try:
        check_tokenizer_files(folder)
    except ValueError as err:
        raise ValueError(f"{err} Or delete the tokenizer files to convert the model alone.") from None
    try:
        return AutoTokenizer.from_pretrained(folder)
    except Exception as err:  # tokenizers raises plain Exception for bad merges and vocabularies
        raise ValueError(
            f"the tokenizer in {folder} ({', '.join(present)}) cannot be loaded: {err}"
        ) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert between GPT-2 (transformers) and ScratchGPT checkpoints, or export one as GGUF."
    )
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument(
        "--from_gpt2", metavar="SRC", help="GPT-2 folder or hub id to convert to ScratchGPT"
    )
    direction.add_argument("--to_gpt2", metavar="SRC", help="ScratchGPT folder to convert to GPT-2")
    direction.add_argument(
        "--to_gguf",
        metavar="SRC",
        help="ScratchGPT (or GPT-2) folder to export as a GGUF file for llama.cpp, with an Ollama Modelfile",
    )
    parser.add_argument(
        "--outtype",
        choices=OUTTYPES,
        help=f"--to_gguf: the type of the weight matrices (default {DEFAULT_OUTTYPE}: the checkpoint's weights "
        "exactly; f16/bf16 halve the file, q8_0 quarters it)",
    )
    parser.add_argument(
        "--output_dir", required=True, help="folder to save the converted model (safetensors)"
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace the run or export already in --output_dir (never one the source lies in)",
    )
    args = parser.parse_args(argv)
    if args.outtype and not args.to_gguf:
        parser.error("--outtype applies to --to_gguf only")

    source = args.from_gpt2 or args.to_gpt2 or args.to_gguf
    # Everything is read and checked before the output folder is touched.
    tokenizer = load_tokenizer_if_any(source)
    if args.to_gguf:
        from hf_scratch_gpt.export import gguf_file  # the optional `gguf` extra, needed by this export only

        model = gguf_file.load_for_gguf(source, tokenizer)
        run = _prepare_output_dir(args, source, argv)
        outtype = args.outtype or DEFAULT_OUTTYPE
        path = gguf_file.write_gguf_folder(model, tokenizer, run.output_dir, outtype, name=Path(source).name)
        print(f"Saved {path} ({outtype}) and {run.output_dir / 'Modelfile'}")
        return
    if args.to_gpt2:  # an unmerged LoRA adapter or a classifier would export the wrong model: refused here
        load_export_config(source)
    converted = from_gpt2(source) if args.from_gpt2 else to_gpt2(source)
    run = _prepare_output_dir(args, source, argv)
    converted.save_pretrained(run.output_dir)
    if tokenizer is None:
        print(f"No tokenizer found in {source}; saved the model only.")
    else:
        if args.to_gpt2:  # the GPT-2 export is read by other runtimes: no training markers, a named unk token
            tokenizer = serving_tokenizer(tokenizer)
        tokenizer.save_pretrained(run.output_dir)
    print(f"Saved {type(converted).__name__} to {run.output_dir}")


def _prepare_output_dir(args, source: str, argv: list[str] | None):
    """The run folder, checked: never one that holds another run (without --overwrite_output_dir), nor the source."""
    return prepare_run_folder(
        "convert", args.output_dir, args.overwrite_output_dir, inputs=[source],
        command=["python -m hf_scratch_gpt.convert", *(sys.argv[1:] if argv is None else argv)],
    )  # fmt: skip


if __name__ == "__main__":
    main()
