"""Stages 5-6, pretraining and finetuning: what the recipes in recipes/ share.

arguments.py          the recipes' flags (model, LoRA, run, responses) and the one parse of them
run.py                the run lifecycle: output-folder safety, resume, seed and logging; save, metrics, card
trainer.py            transformers' Trainer plus a wall-clock budget and pretraining metrics
lm_metrics.py         perplexity, nats per character and bits per byte from the validation loss
defaults.py           learning rate, epochs, warmup, schedule and batch size chosen from the base model
lora.py               LoRA adapters through peft
preference_trainer.py TRL's DPOTrainer with the recipes' additions
reporting.py          the model card and the loss plot
"""


def __getattr__(name: str):
    """The flat layout's module `training` is `hf_scratch_gpt.training.trainer` now: old imports of its names still work."""
    from hf_scratch_gpt._moved import moved_attribute

    value = moved_attribute(__name__, "hf_scratch_gpt.training.trainer", name)
    globals()[name] = value  # warned once; later lookups find it here
    return value
