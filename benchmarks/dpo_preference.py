"""Benchmark of recipes/finetune_preference.py: DPO on the book's preference data, full and LoRA side by side.

Stages (recipe runs; stages 1-2 with explicit flags, so later changes of those recipes' defaults do not move the
figures; stage 3 with the preference recipe's defaults for a small base, hf_scratch_gpt.training.defaults'
PREFERENCE_DEFAULTS: beta 0.3, learning rate 1e-4 full / 1e-3 LoRA, 2 epochs, batch 8, 5% warmup, the values
this benchmark measured):

1. pretrain a small base on tinyshakespeare (recipes/pretrain.py, a fixed 200 steps; skipped with --base DIR);
2. instruction-finetune it on ../shared/data/instruction-data.json (recipes/finetune_instruct.py, the book's split
   935 / 55 / 110 in file order; skipped with --instruct DIR);
3. DPO on ../shared/data/instruction-data-with-preference.json (the same 1,100 records with chosen / rejected
   answers, the same split, so the 110 test pairs were never trained on), full and LoRA.

Target: held-out preference accuracy (the share of the 110 test pairs whose DPO implicit reward ranks the chosen
answer first) >= 0.75 after DPO, within 15 minutes on a 2-core CPU. "Before" is the instruction-finetuned
model's own ranking, log p(chosen) > log p(rejected), since its DPO rewards are all 0 by definition.

    python benchmarks/dpo_preference.py                                   # all stages
    python benchmarks/dpo_preference.py --instruct outputs/bench/dpo_instruct  # DPO only, on an earlier stage 2
"""

import argparse
import importlib
import sys
import time
from pathlib import Path

from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "outputs" / "bench"

PRETRAIN = [
    "--train_file", str(DATA / "tinyshakespeare.txt"), "--model_size", "mini", "--vocab_size", "4096",
    "--block_size", "256", "--attn_implementation", "eager", "--per_device_train_batch_size", "16",
    "--bf16", "false", "--learning_rate", "3e-3", "--lr_scheduler_type", "cosine_with_min_lr",
    "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1}', "--warmup_steps", "20", "--weight_decay", "0.1",
    "--adam_beta2", "0.99", "--max_steps", "200", "--eval_strategy", "no", "--save_strategy", "no",
    "--logging_steps", "50", "--max_eval_samples", "500", "--overwrite_output_dir", "true",
]  # fmt: skip
INSTRUCT = [
    "--train_file", str(DATA / "instruction-data.json"), "--num_train_epochs", "10", "--learning_rate", "5e-4",
    "--warmup_steps", "0.05", "--lr_scheduler_type", "linear", "--weight_decay", "0.1",
    "--per_device_train_batch_size", "8", "--max_new_tokens", "128", "--no_repeat_ngram_size", "3",
    "--num_generate", "20", "--eval_strategy", "epoch", "--save_strategy", "no", "--logging_steps", "20",
    "--overwrite_output_dir", "true",
]  # fmt: skip
DPO = [
    "--train_file", str(DATA / "instruction-data-with-preference.json"), "--max_new_tokens", "128",
    "--no_repeat_ngram_size", "3", "--eval_strategy", "epoch", "--save_strategy", "no",
    "--logging_steps", "20", "--overwrite_output_dir", "true",
]  # fmt: skip
RUNS = {
    "full": [],
    "lora": ["--use_peft", "--lora_r", "16", "--lora_alpha", "32", "--merge_adapter"],
}


def run_recipe(name: str, args: list[str]) -> dict:
    """Run recipes/<name>.py on `args`, as its command line would."""
    recipe = load(name)
    return recipe.main(*recipe.parse_args(args))


def load(name: str):
    """The recipe module recipes.<name> (the recipes sit beside the package, at the repository root)."""
    sys.path.insert(0, str(REPO))
    return importlib.import_module(f"recipes.{name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", help="pretrained checkpoint for stage 2 (skips stage 1)")
    parser.add_argument("--instruct", help="instruction-finetuned checkpoint to tune (skips stages 1-2)")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="DPO runs to do")
    options, extra = parser.parse_known_args()
    seconds = {}
    instruct = options.instruct
    if instruct is None:
        base = options.base
        if base is None:
            base, started = str(OUT / "dpo_base"), time.perf_counter()
            run_recipe("pretrain", [*PRETRAIN, "--output_dir", base])
            seconds["pretrain"] = time.perf_counter() - started
        instruct, started = str(OUT / "dpo_instruct"), time.perf_counter()
        run_recipe("finetune_instruct", ["--model_name_or_path", base, *INSTRUCT, "--output_dir", instruct])
        seconds["instruct"] = time.perf_counter() - started
    rows = {}
    for name in options.runs:
        started = time.perf_counter()
        metrics = run_recipe(
            "finetune_preference",
            [
                "--model_name_or_path",
                instruct,
                *DPO,
                *RUNS[name],
                "--output_dir",
                str(OUT / f"dpo_{name}"),
                *extra,
            ],
        )
        seconds[f"dpo {name}"] = time.perf_counter() - started
        rows[name] = {
            "before: log p(chosen) > log p(rejected)": f"{metrics['before_likelihood_accuracy']:.3f}",
            "after: DPO reward accuracy": f"{metrics['test_reward_accuracy']:.3f}",
            "after: mean reward margin": f"{metrics['test_reward_margin']:.3f}",
            "after: log p(chosen) > log p(rejected)": f"{metrics['test_likelihood_accuracy']:.3f}",
            "ROUGE-L vs chosen, before -> after": f"{metrics.get('before_rouge_l', float('nan')):.3f} -> "
            f"{metrics.get('test_rouge_l', float('nan')):.3f}",
            "EOS rate, before -> after": f"{metrics.get('before_eos_rate', float('nan')):.2f} -> "
            f"{metrics.get('test_eos_rate', float('nan')):.2f}",
            "trainable params": f"{metrics['trainable_params']:,} of {metrics['total_params']:,}",
            "train time": f"{metrics['train_runtime']:.0f} s (whole run {seconds[f'dpo {name}']:.0f} s)",
        }
    print(f"\n===== DPO on the book's preference data, {metrics['test_pairs']} held-out test pairs =====")
    print(f"{machine_line()}\ntarget: after-DPO reward accuracy >= 0.75 within 15 minutes")
    print(f"{'':42}" + "".join(f"{name:>28}" for name in rows))
    for key in next(iter(rows.values())):
        print(f"{key:42}" + "".join(f"{row[key]:>28}" for row in rows.values()))
    print("wall clock: " + ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items()))
    print(f"total {sum(seconds.values()) / 60:.1f} min")


if __name__ == "__main__":
    main()
