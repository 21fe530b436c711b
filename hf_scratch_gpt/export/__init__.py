"""Stage 8, export: a trained checkpoint as the files other runtimes read, outside Python training code.

    source.py       the checkpoint checked to be a whole causal LM (not a LoRA adapter, not a classifier), loaded
    gguf_limits.py  what a GGUF for llama.cpp's `gpt2` architecture can hold: `--outtype` names, limits, checks
    gguf_file.py    the .gguf file itself (tensors, hyperparameters, tokenizer), with the `gguf` extra
    ollama.py       the Ollama `Modelfile` beside it: our chat template in Go's template language, stop words

The command is `python -m hf_scratch_gpt.convert --to_gguf CKPT --output_dir DIR [--outtype f32|f16|bf16|q8_0]`.
"""
