"""Pretrain a GPT from scratch (the project's main job): tokenizer -> packed blocks -> next-token prediction.

With no data flags it trains our byte-level BPE tokenizer and a small ScratchGPT on the built-in default corpus
(Python's own help texts, present on every machine; 6 epochs, a minute or two on a 2-core CPU),
reports validation loss, perplexity, nats per character and bits per byte, and prints a sample generation:

    python recipes/pretrain.py

Your own text (first 90% of the rows train, last 10% validate, unless --validation_file is given):

    python recipes/pretrain.py --train_file ../shared/data/tinyshakespeare.txt --vocab_size 2048 \\
        --model_size small --block_size 256 --max_train_seconds 300 --bf16 --output_dir outputs/shakespeare

A Hub dataset (online): `--dataset_name wikitext --dataset_config_name wikitext-2-raw-v1`. A bigger model:
`--model_size gpt2` or `--config_overrides "n_layer=8,n_embd=512"`. Continue pretraining a checkpoint:
`--model_name_or_path DIR`. Resume a killed run: add `--resume_from_checkpoint last`. Every TrainingArguments
flag passes through (`--learning_rate`, `--max_steps`, `--bf16`, `--push_to_hub` ...), or give one .json/.yaml
file with all arguments. Two processes (DDP on CPU) or GPUs:

    accelerate launch --config_file recipes/configs/cpu_ddp_2proc.yaml recipes/pretrain.py
    accelerate launch --config_file recipes/configs/multi_gpu_ddp.yaml recipes/pretrain.py --model_size gpt2

The output folder holds the model (safetensors + config with the trust_remote_code files), tokenizer,
generation config, train/eval/all_results.json, README.md (model card) and loss.png.
"""

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    TrainingArguments,
    default_data_collator,
)

from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM
from hf_scratch_gpt.data.arguments import DataArguments, check_range
from hf_scratch_gpt.data.lm import text_units, tokenize_and_pack
from hf_scratch_gpt.data.loading import (
    limit_samples,
    load_raw_datasets,
    require_columns,
    split_off,
    text_to_dataset,
)
from hf_scratch_gpt.model.presets import parse_config_overrides, preset_config_kwargs
from hf_scratch_gpt.training.arguments import (
    ModelArguments,
    RunArguments,
    length_within_context,
    parse_recipe_args,
)
from hf_scratch_gpt.training.lora import count_parameters
from hf_scratch_gpt.training.reporting import CardInfo
from hf_scratch_gpt.training.run import start_run
from hf_scratch_gpt.training.trainer import RecipeTrainer
from scratch_tokenizer.default_corpus import default_corpus_text
from scratch_tokenizer.train import train_tokenizer

logger = logging.getLogger("pretrain")

DEFAULT_CORPUS = "the built-in default corpus (Python's pydoc help texts, scratch_tokenizer.default_corpus)"

# CPU-friendly defaults for a few-M-parameter model; any flag or config-file value replaces them.
DEFAULTS = {
    "output_dir": "outputs/pretrain",
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "learning_rate": 2e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 30,
    "weight_decay": 0.1,
    "adam_beta2": 0.99,
    "num_train_epochs": 6,  # suits the small built-in corpus; on big text set --max_steps or --max_train_seconds
    "eval_strategy": "steps",
    "eval_steps": 100,
    "logging_steps": 10,
    "save_steps": 200,
    "save_total_limit": 2,
    "report_to": "none",
    "ddp_find_unused_parameters": False,
}


@dataclass
class PretrainArguments:
    """Flags of this recipe only."""

    block_size: int | None = field(
        default=None,
        metadata={"help": "Tokens per training block (default: the model's context, n_positions)."},
    )
    vocab_size: int = field(
        default=4096,
        metadata={"help": "Vocabulary size of the BPE tokenizer trained when no tokenizer is given."},
    )
    eos_between_rows: bool | None = field(
        default=None,
        metadata={
            "help": "Append EOS after each row. Default: no for .txt files and the default corpus (rows are lines "
            "of one text), yes otherwise (rows are documents)."
        },
    )
    sample_prompt: str | None = field(
        default=None,
        metadata={"help": "Prompt of the sample printed at the end (default: a validation line)."},
    )
    sample_max_new_tokens: int = field(default=100, metadata={"help": "Length of that sample, in tokens."})

    def __post_init__(self):
        check_range(
            "--block_size", self.block_size, at_least=2, optional=True,
            why="each token is predicted from the ones before it in its block; unset: the model's context",
        )  # fmt: skip
        check_range(
            "--vocab_size", self.vocab_size, at_least=256 + 1 + 1,
            why="the tokenizer trained here holds 256 bytes, <|endoftext|> and at least one merge",
        )  # fmt: skip
        check_range("--sample_max_new_tokens", self.sample_max_new_tokens, at_least=1)


def parse_args(args: list[str] | None = None) -> tuple:
    """The command line (or `--config FILE` plus flags) as this recipe's argument dataclasses."""
    return parse_recipe_args(
        (ModelArguments, DataArguments, PretrainArguments, RunArguments, TrainingArguments),
        DEFAULTS,
        args,
        __doc__,
        script="recipes/pretrain.py",
    )


def main(model_args, data_args, pretrain_args, run_args, training_args) -> dict:
    run = start_run(
        "pretrain",
        training_args,
        run_args,
        inputs=[model_args.model_name_or_path, model_args.tokenizer_name, data_args.train_file,
                data_args.validation_file],
    )  # fmt: skip
    resume, output_dir = run.resume, run.output_dir
    resumed_from_step = resume_step(
        resume
    )  # read now: checkpoint rotation may delete that folder while training

    # 1. Raw text: a Hub dataset, local files, or the built-in default corpus, with a validation split.
    raw, eos_between_rows = load_text(data_args, pretrain_args)
    text_column = data_args.text_column_name

    # 2. Model shape, checked before any work: a checkpoint's config, or a named size plus overrides.
    config = model_config(model_args)
    context = config.n_positions
    block_size = length_within_context(
        "--block_size", pretrain_args.block_size, context,
        fix=f", or for a new model raise the context with --config_overrides n_positions={pretrain_args.block_size}",
    )  # fmt: skip

    # 3. Tokenizer: the checkpoint's when resuming, a given one, or our BPE trained on the training split.
    started = time.perf_counter()
    given_tokenizer = model_args.tokenizer_name or model_args.model_name_or_path
    tokenizer = load_or_train_tokenizer(
        resume or given_tokenizer,
        raw["train"][text_column],
        pretrain_args.vocab_size,
        training_args,
        model_args,
    )
    tokenizer.model_max_length = context
    tokenizer_seconds = time.perf_counter() - started

    # 4. Model: the checkpoint to continue, or a new ScratchGPT sized for the tokenizer.
    model = load_or_build_model(model_args, config, tokenizer)

    # 5. Tokenize and pack into blocks (on the main process first; the others reuse the cache). The validation
    #    blocks count the characters and bytes they cover, for nats per character and bits per byte.
    with training_args.main_process_first(desc="tokenizing and packing"):
        blocks = {
            split: tokenize_and_pack(
                raw[split],
                tokenizer,
                text_column,
                block_size,
                eos_between_rows,
                count_chars=split == "validation",
                num_proc=data_args.preprocessing_num_workers,
                name=split,
            )  # fmt: skip
            for split in ("train", "validation")
        }
    units = text_units(blocks["validation"])
    blocks["validation"] = blocks["validation"].remove_columns(["n_chars", "n_bytes"])
    logger.info(
        "%d training and %d validation blocks of %d tokens; validation covers %d characters",
        len(blocks["train"]),
        len(blocks["validation"]),
        block_size,
        units.n_chars,
    )

    # 6. Train; the samples printed at the end are drawn with these settings.
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=0.8,
        top_k=50,
        max_new_tokens=pretrain_args.sample_max_new_tokens,
    )
    trainer = RecipeTrainer(
        model=model,
        args=training_args,
        train_dataset=blocks["train"],
        eval_dataset=blocks["validation"],
        processing_class=tokenizer,
        data_collator=default_data_collator,
        max_train_seconds=run_args.max_train_seconds,
        eval_text_units=units,
        callbacks=[run.callback()],
    )
    train_result = trainer.train(resume_from_checkpoint=resume)
    run.save_model(
        trainer.model, tokenizer, trainer
    )  # model, config + code files, generation config, tokenizer

    # 7. Evaluate and report: the metrics include what finetuning defaults read back (learning rate, tokens seen).
    metrics = {
        **train_result.metrics,
        **trainer.evaluate(),
        **count_parameters(model),
        **training_record(trainer, block_size, len(blocks["train"]), resumed_from_step),
        "vocab_size": len(tokenizer),
        "validation_chars": units.n_chars,
        "validation_bytes": units.n_bytes,
        "tokenizer_seconds": round(tokenizer_seconds, 2),
    }
    if trainer.is_world_process_zero():
        print_sample(
            trainer.model,
            tokenizer,
            pretrain_args.sample_prompt or first_line(raw["validation"], text_column),
        )
        logger.info(
            "validation: loss %.4f, perplexity %.2f, %.4f nats per character, %.4f bits per byte",
            metrics["eval_loss"],
            metrics["eval_perplexity"],
            metrics["eval_nats_per_char"],
            metrics["eval_bits_per_byte"],
        )
    card = model_card(
        run, model, training_args, model_args, data_args, metrics, given_tokenizer, len(tokenizer)
    )
    run.finish(trainer, metrics, card, plot_title=f"pretraining {output_dir.name}")
    return metrics


def load_text(data_args, pretrain_args) -> tuple[DatasetDict, bool]:
    """The train / validation text, and whether an EOS goes between rows.

    A validation split is carved from the end of the training rows when none is given. Rows of a .txt file (and
    of the default corpus) are lines of one text, so no EOS goes between them; rows of anything else are documents.
    """
    if data_args.dataset_name or data_args.train_file:
        raw = load_raw_datasets(data_args)
    else:
        raw = DatasetDict({"train": text_to_dataset(default_corpus_text(), data_args.text_column_name)})
    if "validation" not in raw:
        held_out = split_off(raw["train"], data_args.validation_split_percentage, shuffle=False)
        raw = DatasetDict({**raw, **held_out})
    raw = limit_samples(raw, data_args)
    text_column = data_args.text_column_name
    for split in ("train", "validation"):
        require_columns(raw[split], [text_column], split, {text_column: "--text_column_name"})
    rows_are_lines = not data_args.dataset_name and str(data_args.train_file or ".txt").endswith(".txt")
    eos = (not rows_are_lines) if pretrain_args.eos_between_rows is None else pretrain_args.eos_between_rows
    return raw, eos


def model_config(model_args):
    """The config of the checkpoint to continue (with overrides), or of a new model of --model_size."""
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path,
            trust_remote_code=model_args.trust_remote_code,
            **parse_config_overrides(model_args.config_overrides),
        )
    else:
        config = ScratchGPTConfig(**preset_config_kwargs(model_args.model_size, model_args.config_overrides))
    if model_args.attn_implementation:
        config._attn_implementation = model_args.attn_implementation
    return config


def load_or_build_model(model_args, config, tokenizer):
    """The checkpoint to continue pretraining, or a new ScratchGPT whose vocabulary is the tokenizer's."""
    if model_args.model_name_or_path:
        model = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path, config=config, trust_remote_code=model_args.trust_remote_code
        )
    else:
        config.vocab_size = len(tokenizer)
        config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        model = ScratchGPTForCausalLM(config)
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size} embeddings; "
            f"use the model's own tokenizer or a model with a larger vocab_size"
        )
    return model


def load_or_train_tokenizer(name_or_path, texts, vocab_size: int, training_args, model_args):
    """A saved tokenizer, or our byte-level BPE trained on `texts`: by the main process only (the others receive
    it), so nothing is written twice and every process tokenizes with the same merges."""
    if name_or_path:
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=model_args.trust_remote_code)
    tokenizer = None
    if PartialState().is_main_process:
        logger.info("training a byte-level BPE tokenizer (vocab %d) on the training split", vocab_size)
        tokenizer = train_tokenizer(texts=list(texts), vocab_size=vocab_size)
    if training_args.world_size > 1:
        shared = [tokenizer]
        broadcast_object_list(shared, from_process=0)
        tokenizer = shared[0]
    return tokenizer


HEADLINE_METRICS = ("eval_loss", "eval_perplexity", "eval_nats_per_char", "eval_bits_per_byte", "train_loss")
USAGE = """from transformers import pipeline

generator = pipeline("text-generation", model="{path}", trust_remote_code=True)
print(generator("To be, or not to be", max_new_tokens=50)[0]["generated_text"])"""


def model_card(
    run, model, training_args, model_args, data_args, metrics, given_tokenizer, vocab_size
) -> CardInfo:
    """What the model card says about this pretraining run."""
    local_files = ", ".join(Path(p).name for p in (data_args.train_file, data_args.validation_file) if p)
    tokenizer_note = (
        f"the tokenizer of {given_tokenizer}"
        if given_tokenizer
        else f"its own byte-level BPE tokenizer ({vocab_size} tokens) trained on the same text"
    )
    return CardInfo(
        model_name=run.output_dir.name,
        pipeline_tag="text-generation",
        summary=f"A {metrics['total_params'] / 1e6:.1f}M-parameter GPT (ScratchGPT: GPT-2's architecture, "
        f"written from scratch in hf_scratch_gpt) pretrained with next-token prediction, with {tokenizer_note}.",
        metrics={name: metrics[name] for name in HEADLINE_METRICS if name in metrics},
        data=data_args.dataset_name or (f"local files: {local_files}" if local_files else DEFAULT_CORPUS),
        dataset=data_args.dataset_name,
        base_model=model_args.model_name_or_path,
        hyperparameters=hyperparameters(model.config, training_args, metrics["block_size"], metrics),
        usage=USAGE.format(path=run.output_dir.as_posix()),
        command=run.command,
    )


def training_record(trainer, block_size: int, train_blocks: int, resumed_from_step: int) -> dict:
    """How long and how this base trained; hf_scratch_gpt.training.defaults reads it back when finetuning."""
    args = trainer.args
    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return {
        "world_size": args.world_size,
        "block_size": block_size,
        "train_tokens_per_epoch": train_blocks * block_size,
        "global_step": trainer.state.global_step,
        "learning_rate": args.learning_rate,
        "train_tokens_seen": trainer.state.global_step * batch * block_size,
        "resumed_from_step": resumed_from_step,
        "stopped_by_time_budget": bool(
            trainer.time_budget and trainer.time_budget.stopped_at_step is not None
        ),
    }


def resume_step(checkpoint: str | None) -> int:
    """The optimizer step the run resumed from (0 for a new run), from the checkpoint's trainer state."""
    if not checkpoint:
        return 0
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"]


def hyperparameters(config, training_args: TrainingArguments, block_size: int, metrics: dict) -> dict:
    return {
        "model": f"{config.n_layer} layers, {config.n_head} heads, n_embd {config.n_embd}, vocab {config.vocab_size}",
        "parameters": f"{metrics['total_params']:,}",
        "block_size": block_size,
        "batch size per device": training_args.per_device_train_batch_size,
        "processes": training_args.world_size,
        "learning_rate": training_args.learning_rate,
        "schedule": training_args.lr_scheduler_type.value,
        "optimizer steps": metrics["global_step"],
        "bf16": training_args.bf16,
    }


def first_line(dataset, text_column: str) -> str:
    """The first non-blank validation line, cut to a few words: the default sample prompt."""
    line = next((text.strip() for text in dataset[text_column][:200] if text.strip()), "The")
    return " ".join(line.split()[:6])


@torch.no_grad()
def print_sample(model, tokenizer, prompt: str) -> None:
    model.eval()
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    # The sample stops at the end of the model's context (a longer generate() is an error).
    room = model.config.n_positions - inputs["input_ids"].shape[1]
    torch.manual_seed(0)
    output = model.generate(**inputs, max_new_tokens=min(model.generation_config.max_new_tokens, room))
    text = tokenizer.decode(output[0], skip_special_tokens=True)
    n_new = output.shape[1] - inputs["input_ids"].shape[1]
    print(f"\n===== sample (prompt {prompt!r}, {n_new} new tokens) =====")
    print(text)
    print("=" * 40)


if __name__ == "__main__":
    main(*parse_args())
