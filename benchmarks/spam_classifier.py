"""Quality target of recipes/finetune_classifier.py: pretrain on non-SMS English, finetune on the book's spam split.

Stage 1 pretrains a small ScratchGPT (and its BPE tokenizer) on the shared Shakespeare and King James Bible
texts, which contain no SMS messages, for a fixed 275 steps. Stage 2 finetunes it on the book's balanced SMS spam
split (1045 / 149 / 300 rows, "Build a Large Language Model (From Scratch)" ch. 6). Target: test accuracy >= 97%
(the book's GPT-2 124M reaches 95.67%), everything within 15 minutes on this 2-core CPU. Prints train / validation
/ test accuracy, wall-clock and CPU time of both stages.

    python benchmarks/spam_classifier.py                 # both stages
    python benchmarks/spam_classifier.py --skip_pretrain  # reuse outputs/bench/english_base
    python benchmarks/spam_classifier.py --pretrain_steps 1  # ablation: a base that never learned (see below)

With `--pretrain_steps 1` the base keeps its random initial weights (the warmup gives that one step a learning
rate of 0) and only its tokenizer is trained on Shakespeare + KJV: the control that measures what pretraining
adds to the classifier.

The pretrained base in outputs/bench/english_base is also the starting point of benchmarks/instruct_full_vs_lora.py.
"""

import argparse
import importlib.util
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BASE = REPO / "outputs" / "bench" / "english_base"
CLASSIFIER = REPO / "outputs" / "bench" / "spam_classifier"

PRETRAIN = [
    "--model_size", "mini", "--vocab_size", "8192", "--block_size", "256", "--attn_implementation", "eager",
    "--per_device_train_batch_size", "16", "--bf16", "false", "--learning_rate", "3e-3",
    "--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1}',
    "--warmup_steps", "20", "--weight_decay", "0.1", "--adam_beta2", "0.99",
    "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "50", "--max_eval_samples", "2000",
    "--output_dir", str(BASE), "--overwrite_output_dir", "true",
]  # fmt: skip
# Why a fixed 275 steps (3-4 min here) and not a time budget: a step count gives the same base on any machine. On
# 2026-11-28, bases pretrained ~450-490 steps averaged 95.3-95.4% test against 96.3-96.9% for ~210-300 steps
# (finetuning seeds 42 / 1 / 2), but the --pretrain_steps 1 control (random weights) later classified as well as
# the 275-step base (mean over five seeds, 2026-11-30: 96.07% against 96.00%). So those differences are within the
# seed-to-seed spread: this corpus teaches the classifier nothing; see the README.
FINETUNE = [
    "--model_name_or_path", str(BASE), "--train_file", str(DATA / "SMSSpamCollection"), "--book_spam_split",
    "--trainable_layers", "all", "--learning_rate", "2e-4", "--num_train_epochs", "5", "--warmup_steps", "0.1",
    "--per_device_train_batch_size", "16", "--max_seq_length", "128", "--attn_implementation", "eager",
    "--eval_strategy", "epoch", "--save_strategy", "no", "--report_train_accuracy", "true",
    "--config_overrides", "resid_pdrop=0.1,embd_pdrop=0.1,attn_pdrop=0.1",
    "--output_dir", str(CLASSIFIER), "--overwrite_output_dir", "true",
]  # fmt: skip


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip_pretrain", action="store_true", help="reuse the base model in " + str(BASE))
    parser.add_argument("--pretrain_steps", type=int, help="optimizer steps of stage 1 (default 275)")
    options, extra = parser.parse_known_args()
    if options.skip_pretrain and options.pretrain_steps is not None:
        parser.error("--pretrain_steps sets stage 1, which --skip_pretrain skips; pass one or the other")
    if options.pretrain_steps is not None and options.pretrain_steps < 1:
        # pretrain.py reads --max_steps below 1 as "train for the epochs instead", not as "no steps".
        parser.error(
            f"--pretrain_steps must be at least 1 (1 keeps the random weights), got {options.pretrain_steps}"
        )
    timings = {}
    if not options.skip_pretrain:
        corpus = REPO / "outputs" / "bench" / "english_corpus.txt"
        corpus.parent.mkdir(parents=True, exist_ok=True)
        names = ("shakespeare_gutenberg_42works.txt", "kjv_bible.txt")
        texts = [(DATA / name).read_text(encoding="utf-8") for name in names]
        corpus.write_text("\n".join(texts), encoding="utf-8")
        wall, cpu = time.perf_counter(), cpu_seconds()
        load("pretrain").main(
            ["--train_file", str(corpus), *PRETRAIN, "--max_steps", str(options.pretrain_steps or 275)]
        )
        timings["pretrain"] = (time.perf_counter() - wall, cpu_seconds() - cpu)
    wall, cpu = time.perf_counter(), cpu_seconds()
    metrics = load("finetune_classifier").main([*FINETUNE, *extra])
    timings["finetune"] = (time.perf_counter() - wall, cpu_seconds() - cpu)

    print("\n===== SMS spam, the book's balanced split (1045 / 149 / 300) =====")
    print(
        f"accuracy: train {metrics['train_eval_accuracy']:.2%}, validation {metrics['eval_accuracy']:.2%}, "
        f"test {metrics['test_accuracy']:.2%} (target >= 97%; the book's GPT-2 124M: 95.67%)"
    )
    print(f"F1 (spam): validation {metrics['eval_f1']:.4f}, test {metrics['test_f1']:.4f}")
    for stage, (seconds, cpu) in timings.items():
        print(f"{stage}: {seconds / 60:.1f} min wall clock, {cpu / 60:.1f} min CPU time (all threads)")
    total = sum(seconds for seconds, _ in timings.values())
    print(f"total: {total / 60:.1f} min wall clock (target: within 15 min)")


if __name__ == "__main__":
    main()
