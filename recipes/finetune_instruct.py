"""Instruction-finetune a pretrained GPT (the book's chapter 7): chat template, loss on the responses only.

Reads Alpaca records (`instruction`, `input`, `output`) or chat records (`messages`), renders them with the
tokenizer's chat template, and trains with the prompt tokens labelled -100, so only the responses (each ending
with the EOS token, so generation stops) are learned. Full finetuning, or LoRA with `--use_peft`
(`--merge_adapter` saves a plain merged model). Reports the validation loss on response tokens and writes greedy
responses to the held-out test instructions to generated_responses.json (with whether each ended with EOS).

The book's data and split (85% train / 10% test / 5% validation, in file order):

    python recipes/finetune_instruct.py --model_name_or_path outputs/pretrain \\
        --train_file ../shared/data/instruction-data.json --output_dir outputs/instruct

    python recipes/finetune_instruct.py --model_name_or_path outputs/pretrain \\
        --train_file ../shared/data/instruction-data.json --use_peft --lora_r 16 --merge_adapter \\
        --output_dir outputs/instruct-lora

Chat data: `--train_file chats.jsonl` where each line is `{"messages": [{"role": "user", ...}, ...]}`.
Every TrainingArguments flag passes through; `accelerate launch` works as for recipes/pretrain.py.
"""

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    TrainingArguments,
    set_seed,
)

from hf_scratch_gpt.data import carve_splits, limit_samples, load_raw_datasets
from hf_scratch_gpt.instruct_data import (
    InstructCollator,
    drop_too_long,
    prompt_and_reference,
    to_messages,
    tokenize_function,
)
from hf_scratch_gpt.lora import apply_lora, count_parameters, describe_lora, finish_lora
from hf_scratch_gpt.recipe_args import (
    DataArguments,
    LoraArguments,
    ModelArguments,
    RunArguments,
    parse_recipe_args,
    setup_logging,
)
from hf_scratch_gpt.reporting import LOSS_PLOT, CardInfo, push_output_dir, save_loss_plot, write_model_card
from hf_scratch_gpt.run_folder import prepare_output_dir, save_final_model
from hf_scratch_gpt.training import RecipeTrainer

logger = logging.getLogger("finetune_instruct")

DEFAULTS = {
    "output_dir": "outputs/instruct",
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "learning_rate": 5e-5,
    "num_train_epochs": 2,
    "weight_decay": 0.1,
    "warmup_steps": 0.05,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 10,
    "report_to": "none",
    "validation_split_percentage": 5.0,
    "ddp_find_unused_parameters": False,
}


@dataclass
class InstructArguments:
    """Flags of this recipe only."""

    test_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Percentage of records held out for generation when no test split exists."},
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={"help": "Longer examples are dropped with a warning. Default: the model's context."},
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "System text put before every Alpaca record."}
    )
    max_new_tokens: int = field(
        default=256, metadata={"help": "Most tokens generated per held-out instruction."}
    )
    num_generate: int | None = field(
        default=None, metadata={"help": "Generate for the first N test records only (default: all)."}
    )
    generation_batch_size: int = field(
        default=16, metadata={"help": "Prompts generated together (left-padded)."}
    )
    no_repeat_ngram_size: int = field(
        default=0,
        metadata={
            "help": "Greedy decoding never repeats an n-gram of this many tokens (0: off), counting the prompt's. "
            "Small models otherwise fall into loops that never reach EOS. Saved in generation_config.json "
            "(full or merged models; an adapter-only folder keeps its base model's)."
        },
    )
    repetition_penalty: float = field(
        default=1.0,
        metadata={
            "help": "Penalty > 0 on tokens already in the text: positive scores are divided by it, negative ones "
            "multiplied (1.0: off). Saved like --no_repeat_ngram_size."
        },
    )


def main(args: list[str] | None = None) -> dict:
    model_args, data_args, instruct_args, lora_args, run_args, training_args = parse_recipe_args(
        (ModelArguments, DataArguments, InstructArguments, LoraArguments, RunArguments, TrainingArguments),
        DEFAULTS,
        args,
    )
    setup_logging(training_args)
    if instruct_args.repetition_penalty <= 0 or instruct_args.no_repeat_ngram_size < 0:
        raise ValueError(
            f"--repetition_penalty must be > 0 (1.0 is off) and --no_repeat_ngram_size >= 0 (0 is off), got "
            f"{instruct_args.repetition_penalty} and {instruct_args.no_repeat_ngram_size}"
        )
    if not model_args.model_name_or_path:
        raise ValueError(
            "--model_name_or_path is required: the pretrained checkpoint to finetune (e.g. outputs/pretrain)"
        )
    resume = prepare_output_dir(
        training_args.output_dir, run_args.overwrite_output_dir, training_args.resume_from_checkpoint
    )
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)

    # 1. Records -> chat messages, split 85/10/5 (train/test/validation) in file order unless files are given.
    raw = load_raw_datasets(data_args)
    raw = carve_splits(raw, data_args.validation_split_percentage, instruct_args.test_split_percentage, False)
    raw = limit_samples(raw, data_args)
    chats = {
        split: to_messages(dataset, split, instruct_args.system_prompt) for split, dataset in raw.items()
    }

    # 2. Tokenizer (our chat template unless it has one; EOS as padding) and model.
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path,
        trust_remote_code=model_args.trust_remote_code,
    )
    if tokenizer.chat_template is None:
        from hf_scratch_gpt.hf_tokenizer import CHAT_TEMPLATE

        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(model_args)
    context = model.config.n_positions
    max_length = instruct_args.max_seq_length or context
    if max_length > context:
        raise ValueError(
            f"--max_seq_length {max_length} is above the model's context (n_positions {context})"
        )
    if lora_args.use_peft:
        model = apply_lora(model, lora_args, task_type="CAUSAL_LM")
    parameters = count_parameters(model)
    logger.info(
        "trainable parameters: %s of %s",
        f"{parameters['trainable_params']:,}",
        f"{parameters['total_params']:,}",
    )

    # 3. Tokenize with the chat template: labels -100 except on the responses and their EOS.
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = {
            split: drop_too_long(
                chats[split].map(
                    tokenize_function(tokenizer),
                    remove_columns=["messages"],
                    num_proc=data_args.preprocessing_num_workers,
                    desc=f"tokenizing {split}",
                ),
                max_length,
                split,
            )
            for split in ("train", "validation")
        }

    # 4. Train; the validation loss is on response tokens only.
    trainer = RecipeTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=InstructCollator(pad_token_id=tokenizer.pad_token_id),
        max_train_seconds=run_args.max_train_seconds,
    )
    train_result = trainer.train(resume_from_checkpoint=resume)
    metrics = {**train_result.metrics, **trainer.evaluate()}

    # 5. Save (merged model, adapter or full model), generate for the held-out instructions, report.
    model = finish_lora(trainer.model, lora_args.merge_adapter) if lora_args.use_peft else trainer.model
    model.config.use_cache = True  # the Trainer turned the KV cache off for training
    # Greedy answers that stop at EOS. A fresh config: sampling settings inherited from the base (pretrain.py saves
    # temperature/top_k for its samples) would make a greedy config invalid, and save_pretrained refuses those.
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=instruct_args.max_new_tokens,
        do_sample=False,
        no_repeat_ngram_size=instruct_args.no_repeat_ngram_size,
        repetition_penalty=instruct_args.repetition_penalty,
    )
    metrics.update({**parameters, "world_size": training_args.world_size})
    if trainer.is_world_process_zero():
        save_final_model(model, tokenizer, output_dir)
        test = chats["test"]
        if instruct_args.num_generate is not None:
            test = test.select(range(min(instruct_args.num_generate, len(test))))
        responses = generate_responses(model, tokenizer, list(test["messages"]), instruct_args)
        (output_dir / "generated_responses.json").write_text(
            json.dumps(responses, indent=2, ensure_ascii=False)
        )
        metrics["generated"] = len(responses)
        metrics["generated_ended_with_eos"] = sum(r["ended_with_eos"] for r in responses) / max(
            len(responses), 1
        )
    trainer.save_metrics("all", metrics)
    trainer.save_state()
    if trainer.is_world_process_zero():
        how = describe_lora(lora_args) if lora_args.use_peft else "full finetuning"
        write_model_card(
            output_dir,
            CardInfo(
                model_name=output_dir.name,
                pipeline_tag="text-generation",
                summary=f"An instruction-following GPT finetuned from `{model_args.model_name_or_path}` with "
                f"hf_scratch_gpt ({how}; loss on the responses only). Prompt it with the tokenizer's chat template.",
                metrics={k: metrics[k] for k in ("eval_loss", "train_loss") if k in metrics},
                data=data_args.dataset_name or f"local files: {data_args.train_file}",
                dataset=data_args.dataset_name,
                base_model=model_args.model_name_or_path,
                hyperparameters={
                    "training": how,
                    "trainable parameters": f"{parameters['trainable_params']:,} of {parameters['total_params']:,}",
                    "learning_rate": training_args.learning_rate,
                    "epochs": training_args.num_train_epochs,
                    "batch size per device": training_args.per_device_train_batch_size,
                    "generated responses ending with EOS": f"{metrics.get('generated_ended_with_eos', 0):.1%}",
                },
                usage=USAGE.format(path=output_dir.as_posix()),
                command=["recipes/finetune_instruct.py", *(sys.argv[1:] if args is None else args)],
            ),
        )
        save_loss_plot(
            trainer.state.log_history,
            output_dir / LOSS_PLOT,
            title=f"instruction finetuning {output_dir.name}",
        )
        logger.info(
            "validation loss on responses %.4f; %d responses generated, %.1f%% ended with EOS",
            metrics["eval_loss"],
            metrics["generated"],
            100 * metrics["generated_ended_with_eos"],
        )
    if training_args.push_to_hub:
        push_output_dir(trainer, output_dir)
    trainer.end_run()
    return metrics


USAGE = """from transformers import pipeline

chat = pipeline("text-generation", model="{path}", trust_remote_code=True)
messages = [{{"role": "user", "content": "Rewrite the sentence in passive voice: The cat chased the mouse."}}]
print(chat(messages, max_new_tokens=64)[0]["generated_text"][-1]["content"])"""


def load_causal_lm(model_args: ModelArguments):
    """Our checkpoint as ScratchGPTForCausalLM, or a GPT-2 checkpoint converted to it."""
    path = model_args.model_name_or_path
    overrides = model_args.config_kwargs()
    config = AutoConfig.from_pretrained(path, trust_remote_code=model_args.trust_remote_code)
    if config.model_type == "gpt2":
        from hf_scratch_gpt.convert import from_gpt2

        return from_gpt2(path, **overrides)
    return AutoModelForCausalLM.from_pretrained(
        path, trust_remote_code=model_args.trust_remote_code, **overrides
    )


@torch.no_grad()
def generate_responses(
    model, tokenizer, conversations: list[list[dict]], instruct_args: InstructArguments
) -> list:
    """Greedy responses for each conversation's last user turn, with whether the EOS token ended them.

    Prompts are generated in batches of similar length (left-padded); a batch whose prompts leave less than
    `max_new_tokens` of the model's context gets the room that is left, recorded as `token_limit`.
    """
    model.eval()
    eos, context = tokenizer.eos_token_id, model.config.n_positions
    tokenizer.padding_side = "left"  # batched generation: every prompt ends at the same position
    prompts, references = zip(*(prompt_and_reference(messages) for messages in conversations), strict=True)
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[dict | None] = [None] * len(texts)
    size = instruct_args.generation_batch_size
    for start in tqdm(range(0, len(order), size), desc="generating responses"):
        indices = order[start : start + size]
        inputs = tokenizer(
            [texts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False
        )
        inputs = inputs.to(model.device)
        prompt_length = inputs["input_ids"].shape[1]
        limit = min(instruct_args.max_new_tokens, context - prompt_length)
        if limit < 1:
            raise ValueError(
                f"a prompt of {prompt_length} tokens leaves no room in the {context}-token context"
            )
        # The model's generation config (repetition settings), greedy, with this batch's token limit.
        output = model.generate(
            **inputs, max_new_tokens=limit, do_sample=False, eos_token_id=eos, pad_token_id=eos
        )
        for index, new in zip(indices, output[:, prompt_length:].tolist(), strict=True):
            ended = eos in new
            n_new = new.index(eos) + 1 if ended else len(new)
            results[index] = {
                "prompt": prompts[index][-1]["content"],
                "reference": references[index],
                "response": tokenizer.decode(new[:n_new], skip_special_tokens=True).strip(),
                "ended_with_eos": ended,
                "new_tokens": n_new,
                "token_limit": limit,
            }
    tokenizer.padding_side = "right"
    return results


if __name__ == "__main__":
    main()
