"""Quality target of recipes/pretrain.py: tinyshakespeare, 110 s of wall-clock training, <= 1.75 nats per character.

The split is nanoGPT's: the first 90% of the characters train, the last 10% validate. Training (the Trainer's
loop, including any periodic evaluation) stops after --max_train_seconds of wall-clock time; the learning-rate
schedule runs on that clock, so it ends decayed. The BPE tokenizer is trained first (its time is reported
separately), and the final validation pass after training is not counted. For scale, nanoGPT's CPU "baby GPT"
character model reached 1.886 nats per character in the same 110 s on a 2-core CPU (benchmarks/RESULTS.md).

    python benchmarks/pretrain_tinyshakespeare.py
    python benchmarks/pretrain_tinyshakespeare.py --max_train_seconds 300 --output_dir outputs/bench/ts300

Extra flags go to recipes/pretrain.py and replace the tuned ones below.
"""

import importlib
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGET, NANOGPT_BABY = 1.75, 1.886

TUNED = {
    "--model_size": "mini",  # 3 layers, 4 heads, n_embd 128, no dropout
    "--vocab_size": "8192",
    "--block_size": "128",
    "--attn_implementation": "eager",  # faster than PyTorch's CPU flash kernel for 128-token bf16 blocks
    "--per_device_train_batch_size": "32",
    "--learning_rate": "3e-3",
    "--lr_scheduler_type": "cosine_with_min_lr",
    "--lr_scheduler_kwargs": '{"min_lr_rate": 0.1}',
    "--warmup_steps": "20",
    "--weight_decay": "0.1",
    "--adam_beta2": "0.99",
    "--bf16": "true",
    "--max_train_seconds": "110",
    "--num_train_epochs": "1000",
    "--eval_strategy": "no",
    "--save_strategy": "no",
    "--logging_steps": "25",
    "--output_dir": "outputs/bench/tinyshakespeare",
    "--overwrite_output_dir": "true",
}


def write_split(folder: Path) -> tuple[Path, Path]:
    text = DATA.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text(text[:cut], encoding="utf-8")
    (folder / "validation.txt").write_text(text[cut:], encoding="utf-8")
    return folder / "train.txt", folder / "validation.txt"


def main() -> None:
    if not DATA.is_file():
        sys.exit(f"{DATA} is absent: this benchmark needs the project's shared data")
    train, validation = write_split(REPO / "outputs" / "bench" / "tinyshakespeare_split")
    flags = dict(TUNED)
    extra = sys.argv[1:]
    for arg in extra:
        flags.pop(arg, None)  # a flag given on the command line replaces the tuned value
    args = ["--train_file", str(train), "--validation_file", str(validation)]
    args += [item for pair in flags.items() for item in pair] + extra
    sys.path.insert(0, str(REPO))  # the recipes sit beside the package, at the repository root
    pretrain = importlib.import_module("recipes.pretrain")
    started = time.perf_counter()
    metrics = pretrain.main(*pretrain.parse_args(args))
    total = time.perf_counter() - started
    batch = int(args[len(args) - 1 - args[::-1].index("--per_device_train_batch_size") + 1])
    tokens = metrics["global_step"] * metrics["block_size"] * batch * metrics["world_size"]
    print("\n===== tinyshakespeare, first 90% train / last 10% validation =====")
    print(f"command: python benchmarks/pretrain_tinyshakespeare.py {' '.join(extra)}".rstrip())
    print(
        f"model: {metrics['total_params'] / 1e6:.2f}M parameters, vocab {metrics['vocab_size']}, block {metrics['block_size']}"
    )
    print(f"tokenizer training: {metrics['tokenizer_seconds']:.1f} s; whole run: {total:.0f} s")
    print(
        f"training: {metrics['train_runtime']:.1f} s wall clock, {metrics['global_step']} steps, "
        f"{tokens / metrics['train_runtime']:,.0f} tokens/s"
    )
    print(
        f"validation: loss {metrics['eval_loss']:.4f} per token, {metrics['eval_tokens_per_char']:.3f} tokens/char"
    )
    verdict = "meets" if metrics["eval_nats_per_char"] <= TARGET else "MISSES"
    print(
        f"validation nats per character: {metrics['eval_nats_per_char']:.4f} ({verdict} the target {TARGET}; "
        f"nanoGPT baby GPT: {NANOGPT_BABY}); bits per byte {metrics['eval_bits_per_byte']:.4f}"
    )


if __name__ == "__main__":
    main()
