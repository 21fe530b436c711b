"""Spam classifier on the book's split: what pretraining adds, over finetuning seeds, and what the defaults give.

Bases (stage 1):

- `english_base`: a small ScratchGPT (and its BPE tokenizer) pretrained for a fixed 275 steps on the shared
  Shakespeare and King James Bible texts (no SMS messages);
- `random_base`: the same recipe stopped after 1 step, whose learning rate is 0 (warmup): random weights with the
  same tokenizer, the control that measures what pretraining adds;
- `main_base`: the README's main job, `recipes/pretrain.py` with its defaults (built-in corpus, 1.2M parameters).

Finetuning (stage 2) on the book's balanced SMS spam split (1045 / 149 / 300 rows, "Build a Large Language Model
(From Scratch)" ch. 6), once per seed (default 42 / 1 / 2 / 3 / 4):

1. `english_base` and `random_base` with this benchmark's fixed settings (`FINETUNE`: learning rate 2e-4,
   5 epochs, batch 16, dropout 0.1), the comparison of the two bases;
2. `main_base` with no tuning flag at all: the recipe's defaults for that base (hf_scratch_gpt.training.defaults),
   the figure a user following the README gets.

It prints mean, standard deviation and range of test accuracy per row, and the time taken. It sets no accuracy
target: the random-weight control does as well as the pretrained base, so pretraining on the shared corpora adds
nothing to this classifier (the figures: benchmarks/RESULTS.md).

    python benchmarks/spam_classifier.py                      # all of it (estimate: 20-25 min on a quiet 2-core CPU)
    python benchmarks/spam_classifier.py --seeds 42           # one seed per row (estimate: 8-10 min)
    python benchmarks/spam_classifier.py --skip_pretrain      # reuse the bases in outputs/bench/

The pretrained base in outputs/bench/english_base is also the starting point of benchmarks/instruct_full_vs_lora.py.
"""

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BENCH = REPO / "outputs" / "bench"
BASES = {"english_base": 275, "random_base": 1}  # pretraining steps on Shakespeare + KJV
MAIN_BASE = BENCH / "main_base"

PRETRAIN = [
    "--model_size", "mini", "--vocab_size", "8192", "--block_size", "256", "--attn_implementation", "eager",
    "--per_device_train_batch_size", "16", "--bf16", "false", "--learning_rate", "3e-3",
    "--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1}',
    "--warmup_steps", "20", "--weight_decay", "0.1", "--adam_beta2", "0.99",
    "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "50", "--max_eval_samples", "2000",
    "--overwrite_output_dir", "true",
]  # fmt: skip
# Why a fixed 275 steps (3-4 min here) and not a time budget: a step count gives the same base on any machine.
SPAM = ["--train_file", str(DATA / "SMSSpamCollection"), "--book_spam_split"]
RUN = ["--save_strategy", "no", "--disable_tqdm", "true", "--overwrite_output_dir", "true"]
FINETUNE = [
    "--trainable_layers", "all", "--learning_rate", "2e-4", "--num_train_epochs", "5", "--warmup_steps", "0.1",
    "--lr_scheduler_type", "linear", "--per_device_train_batch_size", "16", "--max_seq_length", "128",
    "--attn_implementation", "eager", "--eval_strategy", "epoch",
    "--config_overrides", "resid_pdrop=0.1,embd_pdrop=0.1,attn_pdrop=0.1",
]  # fmt: skip


def run_recipe(name: str, args: list[str]) -> dict:
    """Run recipes/<name>.py on `args`, as its command line would."""
    recipe = load(name)
    return recipe.main(*recipe.parse_args(args))


def load(name: str):
    """The recipe module recipes.<name> (the recipes sit beside the package, at the repository root)."""
    sys.path.insert(0, str(REPO))
    return importlib.import_module(f"recipes.{name}")


def pretrain_bases() -> None:
    corpus = BENCH / "english_corpus.txt"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    names = ("shakespeare_gutenberg_42works.txt", "kjv_bible.txt")
    corpus.write_text(
        "\n".join((DATA / name).read_text(encoding="utf-8") for name in names), encoding="utf-8"
    )
    for name, steps in BASES.items():
        run_recipe(
            "pretrain",
            [
                "--train_file",
                str(corpus),
                *PRETRAIN,
                "--output_dir",
                str(BENCH / name),
                "--max_steps",
                str(steps),
            ],
        )
    run_recipe(
        "pretrain",
        ["--output_dir", str(MAIN_BASE), "--overwrite_output_dir", "true", "--disable_tqdm", "true"],
    )


def summary(accuracies: list[float]) -> str:
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    return (
        f"mean {statistics.mean(accuracies):.2%}, std {spread:.2%}, range {min(accuracies):.2%}-{max(accuracies):.2%}"
        f" ({' / '.join(f'{a:.2%}' for a in accuracies)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip_pretrain", action="store_true", help=f"reuse the bases in {BENCH}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4], help="finetuning seeds")
    options = parser.parse_args()
    start = time.perf_counter()
    if not options.skip_pretrain:
        pretrain_bases()
    pretrain_seconds = time.perf_counter() - start

    rows = {
        "english_base (275 steps), benchmark settings": [
            "--model_name_or_path", str(BENCH / "english_base"), *FINETUNE],
        "random_base (control), benchmark settings": ["--model_name_or_path", str(BENCH / "random_base"), *FINETUNE],
        "main_base (README's pretrain), recipe defaults": ["--model_name_or_path", str(MAIN_BASE)],
    }  # fmt: skip
    results, defaults = {}, ""
    for row, flags in rows.items():
        results[row] = []
        for seed in options.seeds:
            output_dir = BENCH / "spam_classifier" / f"{row.split()[0]}_seed{seed}"
            metrics = run_recipe(
                "finetune_classifier",
                [*flags, *SPAM, *RUN, "--seed", str(seed), "--output_dir", str(output_dir)],
            )
            results[row].append(metrics["test_accuracy"])
            if "defaults" in row:
                defaults = (
                    f"lr {metrics['learning_rate']:g}, {metrics['num_train_epochs']:g} epochs, warmup "
                    f"{metrics['warmup_steps']:g}, {metrics['lr_scheduler_type']} ({metrics['finetune_defaults']})"
                )
    total = time.perf_counter() - start

    print(
        "\n===== SMS spam, the book's balanced split (1045 / 149 / 300), test accuracy over finetuning seeds ====="
    )
    print(f"{machine_line()}; seeds {options.seeds}")
    for row, accuracies in results.items():
        print(f"{row}: {summary(accuracies)}")
    print(f"recipe defaults for main_base: {defaults}")
    print(f"time: {total / 60:.1f} min wall clock ({pretrain_seconds / 60:.1f} min pretraining the bases)")


if __name__ == "__main__":
    main()
