"""The `convert` command: a ScratchGPT checkpoint to a transformers GPT-2 folder, or a GPT-2 to ScratchGPT.

The weight mapping itself is `hf_scratch_gpt.model.gpt2` (`from_gpt2`, `to_gpt2`); this command adds the folder
around it: the tokenizer that sits with the source, and the output-folder safety every run folder gets.

    python -m hf_scratch_gpt.convert --from_gpt2 openai-community/gpt2 --output_dir checkpoints/gpt2-scratch
    python -m hf_scratch_gpt.convert --to_gpt2 checkpoints/my-model --output_dir checkpoints/my-model-gpt2
"""

import argparse

from transformers import AutoTokenizer

from hf_scratch_gpt.model.gpt2 import from_gpt2, to_gpt2


def _save_tokenizer_if_any(source: str, output_dir: str) -> None:
    """Copy the tokenizer that sits with the source checkpoint, so the converted folder is usable on its own."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError):
        print(f"No tokenizer found in {source}; saved the model only.")
        return
    tokenizer.save_pretrained(output_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert between GPT-2 (transformers) and ScratchGPT checkpoints."
    )
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument(
        "--from_gpt2", metavar="SRC", help="GPT-2 folder or hub id to convert to ScratchGPT"
    )
    direction.add_argument("--to_gpt2", metavar="SRC", help="ScratchGPT folder to convert to GPT-2")
    parser.add_argument(
        "--output_dir", required=True, help="folder to save the converted model (safetensors)"
    )
    args = parser.parse_args(argv)

    source = args.from_gpt2 or args.to_gpt2
    converted = from_gpt2(source) if args.from_gpt2 else to_gpt2(source)
    converted.save_pretrained(args.output_dir)
    _save_tokenizer_if_any(source, args.output_dir)
    print(f"Saved {type(converted).__name__} to {args.output_dir}")


if __name__ == "__main__":
    main()
