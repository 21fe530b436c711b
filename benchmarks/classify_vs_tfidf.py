"""recipes/finetune_classifier.py with its defaults beside TF-IDF + logistic regression, on the same splits.

Two labelled datasets built from ../shared/data (real text, offline):

- `spam`: the book's balanced SMS spam split (1045 / 149 / 300 rows, "Build a Large Language Model (From
  Scratch)" ch. 6), `--book_spam_split`.
- `kjv`: King James Bible verses labelled by testament (`old` / `new`): 1,000 verses of each in training, 200 of
  each in validation and 500 of each in test, distinct verses drawn under seed 0 (verse numbers dropped). Which
  testament a single verse comes from is not obvious from a few words: TF-IDF reaches about 83%, not 100%.

The classifier starts from a base checkpoint (default: outputs/pretrain, the README's main job
`python recipes/pretrain.py`) and passes no tuning flag, so the recipe's defaults for that base decide learning
rate, epochs, warmup and schedule. The baseline is scikit-learn's TfidfVectorizer + LogisticRegression (both with
their defaults, `max_iter=1000`), trained on the same training rows and scored on the same test rows; a
character 2-5-gram variant is printed too, for scale.

    python benchmarks/classify_vs_tfidf.py                               # both datasets, base outputs/pretrain
    python benchmarks/classify_vs_tfidf.py --datasets kjv --base outputs/shakespeare
    python benchmarks/classify_vs_tfidf.py --seed 1 -- --num_train_epochs 3   # flags after -- go to the recipe

Needs the dev extra (scikit-learn): `pip install -e '.[dev]'`.
"""

import argparse
import importlib
import json
import os
import random
import re
import sys
import time
from pathlib import Path

from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUTPUTS = REPO / "outputs" / "bench" / "classify_vs_tfidf"
KJV_SIZES = {"train": 1000, "validation": 200, "test": 500}  # verses per testament


def kjv_testament_files(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write train / validation / test jsonl files of KJV verses labelled `old` / `new` testament (balanced)."""
    verses = {"old": [], "new": []}
    testament = "old"
    for line in (DATA / "kjv_bible.txt").read_text(encoding="utf-8").splitlines():
        if re.fullmatch(r"Matthew 1", line):  # the first chapter of the New Testament
            testament = "new"
        verse = re.fullmatch(r"\s+\d+ (.+)", line)  # "  12 And God said ..." (chapter headers do not match)
        if verse:
            verses[testament].append(verse.group(1))
    rng = random.Random(seed)
    rows = {split: [] for split in KJV_SIZES}
    for label, texts in verses.items():
        texts = sorted(set(texts))  # a few verses repeat word for word: keep each text in one split only
        rng.shuffle(texts)
        start = 0
        for split, size in KJV_SIZES.items():
            rows[split] += [{"text": text, "label": label} for text in texts[start : start + size]]
            start += size
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, split_rows in rows.items():
        rng.shuffle(split_rows)
        paths[split] = folder / f"kjv_{split}.jsonl"
        paths[split].write_text("".join(json.dumps(row) + "\n" for row in split_rows), encoding="utf-8")
    return paths


def dataset_flags(name: str) -> list[str]:
    if name == "spam":
        return ["--train_file", str(DATA / "SMSSpamCollection"), "--book_spam_split"]
    paths = kjv_testament_files(OUTPUTS / "data")
    return [flag for split, path in paths.items() for flag in (f"--{split}_file", str(path))]


def tfidf_accuracies(splits) -> dict[str, float]:
    """Test accuracy of TF-IDF + logistic regression: word unigrams (the defaults) and character 2-5-grams."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    variants = {
        "words": TfidfVectorizer(),
        "char 2-5-grams": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    }
    out = {}
    for name, vectorizer in variants.items():
        features = vectorizer.fit_transform(splits["train"]["text"])
        model = LogisticRegression(max_iter=1000).fit(features, splits["train"]["label"])
        predicted = model.predict(vectorizer.transform(splits["test"]["text"]))
        out[name] = sum(p == t for p, t in zip(predicted, splits["test"]["label"], strict=True)) / len(
            predicted
        )
    return out


def load_splits(flags: list[str]):
    """The same train / test rows the recipe reads."""
    from hf_scratch_gpt.data.classify import book_spam_split
    from hf_scratch_gpt.data.loading import load_local_file

    if "--book_spam_split" in flags:
        return book_spam_split(flags[flags.index("--train_file") + 1])
    return {
        split: load_local_file(flags[flags.index(f"--{split}_file") + 1], split)
        for split in ("train", "test")
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default=str(REPO / "outputs" / "pretrain"), help="checkpoint to finetune")
    parser.add_argument("--datasets", nargs="+", default=["spam", "kjv"], choices=["spam", "kjv"])
    parser.add_argument("--seed", type=int, default=42, help="finetuning seed")
    parser.add_argument("recipe_flags", nargs="*", help="extra flags for the recipe (after --)")
    options = parser.parse_args()
    sys.path.insert(0, str(REPO))  # the recipes sit beside the package, at the repository root
    recipe = importlib.import_module("recipes.finetune_classifier")

    results = {}
    for name in options.datasets:
        flags = dataset_flags(name)
        start = time.perf_counter()
        metrics = recipe.main(*recipe.parse_args(
            ["--model_name_or_path", options.base, *flags, "--output_dir", str(OUTPUTS / name),
             "--overwrite_output_dir", "true", "--seed", str(options.seed), "--disable_tqdm", "true",
             *options.recipe_flags]
        ))  # fmt: skip
        seconds = time.perf_counter() - start
        results[name] = (metrics, seconds, tfidf_accuracies(load_splits(flags)))

    print(f"\n===== classifier defaults vs TF-IDF + logistic regression (base {options.base}) =====")
    print(f"{machine_line()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for name, (metrics, seconds, tfidf) in results.items():
        gap = metrics["test_accuracy"] - tfidf["words"]
        print(
            f"{name}: ours {metrics['test_accuracy']:.2%} test (lr {metrics['learning_rate']:g}, "
            f"{metrics['num_train_epochs']:g} epochs, {seconds:.0f} s); TF-IDF + LR {tfidf['words']:.2%} "
            f"(gap {gap * 100:+.2f} points; char 2-5-grams: {tfidf['char 2-5-grams']:.2%})"
        )


if __name__ == "__main__":
    main()
