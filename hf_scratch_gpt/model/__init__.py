"""Stages 2-3, attention and the GPT: ScratchGPT as a transformers model.

    configuration_scratch_gpt.py  ScratchGPTConfig, GPT-2's field names
    modeling_scratch_gpt.py       attention, MLP, block, the model and its LM / classification heads (the textbook)
    presets.py                    named sizes and `--config_overrides` for models built from scratch
    gpt2.py                       GPT-2 weights in and out (`from_gpt2`, `to_gpt2`, `load_causal_lm`)
    checkpoint_files.py           a saved folder's weights and tokenizer files checked before a run starts from it
    inference.py                  a trained model made ready to answer: `--dtype`, `--quantize` (bf16, int8)
    int8.py                       int8 Linear weights through torchao (the optional `quantize` extra)

The configuration and modeling files are self-contained (they import only each other), because `save_pretrained`
copies them into every checkpoint for `trust_remote_code` loading.
"""
