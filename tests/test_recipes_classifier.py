"""recipes/finetune_classifier.py end to end on tiny local data, its training modes, and its bad-input errors."""

import json
import logging

import pytest
from conftest import shared_file
from huggingface_hub import ModelCard
from recipe_helpers import (
    FAST_ARGS,
    ascii_text,
    labelled_rows,
    load_recipe,
    make_checkpoint,
    run_recipe,
    write_jsonl,
)
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, GPT2Config

from hf_scratch_gpt import ScratchGPTConfig  # also registers the Auto classes
from hf_scratch_gpt.data.classify import book_spam_split
from hf_scratch_gpt.training.defaults import CLASSIFY_DEFAULTS, PRETRAIN_LR_FRACTION, finetune_defaults

classifier = load_recipe("finetune_classifier")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", ascii_text(20_000))


@pytest.fixture(scope="module")
def sms_file(tmp_path_factory):
    """A headerless `label<TAB>text` file like the SMS Spam Collection."""
    path = tmp_path_factory.mktemp("data") / "SMSSpam"
    path.write_text(
        "".join(f"{row['label']}\t{row['text']}\n" for row in labelled_rows(60)), encoding="utf-8"
    )
    return path


def run(checkpoint, output_dir, *extra):
    args = [
        "--model_name_or_path",
        str(checkpoint),
        "--output_dir",
        str(output_dir),
        "--learning_rate",
        "2e-3",
    ]
    return run_recipe(
        classifier,
        [*args, "--num_train_epochs", "2", "--per_device_train_batch_size", "8", *FAST_ARGS, *extra],
    )


def test_headerless_tsv_end_to_end(checkpoint, sms_file, tmp_path):
    output_dir = tmp_path / "spam"
    metrics = run(checkpoint, output_dir, "--train_file", str(sms_file))
    for key in (
        "eval_accuracy",
        "eval_f1",
        "test_accuracy",
        "test_f1",
        "train_eval_accuracy",
        "train_eval_f1",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["labels"] == ["ham", "spam"] and metrics["world_size"] == 1
    for name in ("model.safetensors", "config.json", "modeling_scratch_gpt.py", "tokenizer.json", "README.md",
                 "loss.png", "all_results.json", "test_predictions.jsonl", "confusion_matrix.json",
                 "confusion_matrix.png"):  # fmt: skip
        assert (output_dir / name).is_file(), name
    predictions = [
        json.loads(line) for line in (output_dir / "test_predictions.jsonl").read_text().splitlines()
    ]
    assert len(predictions) == 12  # 20% of 60 rows
    texts = {row["text"]: row["label"] for row in labelled_rows(60)}
    for row in predictions:
        assert texts[row["text"]] == row["label"]  # each test text with its own label
        assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert row["predicted"] == max(row["probabilities"], key=row["probabilities"].get)
    accuracy = sum(p["label"] == p["predicted"] for p in predictions) / len(predictions)
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    # The test confusion matrix counts the same rows: [true][predicted] in label order.
    matrices = json.loads((output_dir / "confusion_matrix.json").read_text())
    assert matrices["labels"] == ["ham", "spam"] and set(matrices) >= {"train", "validation", "test"}
    counts = [[0, 0], [0, 0]]
    for row in predictions:
        counts[["ham", "spam"].index(row["label"])][["ham", "spam"].index(row["predicted"])] += 1
    assert matrices["test"] == counts
    assert sum(map(sum, matrices["train"])) == 60 - 12 - 6 and sum(map(sum, matrices["validation"])) == 6
    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert type(model).__name__ == "ScratchGPTForSequenceClassification"
    assert model.config.id2label == {0: "ham", 1: "spam"} and model.config.pad_token_id is not None
    assert AutoTokenizer.from_pretrained(output_dir).pad_token is not None
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.pipeline_tag == "text-classification" and "accuracy" in card.data.metrics
    assert str(checkpoint) in card.text  # a local base model is named in the text, not in the metadata
    assert f"| test | {metrics['test_accuracy']:.2%} | {metrics['test_f1']:.4f} | 12 |" in card.text
    assert "(confusion_matrix.png)" in card.text


def test_small_base_gets_the_small_base_defaults_unless_flags_are_given(checkpoint, sms_file, tmp_path):
    small = CLASSIFY_DEFAULTS["small"]
    metrics = run_recipe(classifier,
        ["--model_name_or_path", str(checkpoint), "--train_file", str(sms_file), "--output_dir",
         str(tmp_path / "a"), "--max_steps", "1", "--max_train_samples", "16", "--max_eval_samples", "4",
         *FAST_ARGS]
    )  # fmt: skip
    # the tiny checkpoint has no pretraining record (all_results.json): the table's small-base values apply
    for name in ("learning_rate", "num_train_epochs", "warmup_steps", "per_device_train_batch_size"):
        assert metrics[name] == small[name], name
    matrices = json.loads((tmp_path / "a" / "confusion_matrix.json").read_text())
    rows = {split: sum(map(sum, matrices[split])) for split in ("train", "validation", "test")}
    assert rows == {"train": 16, "validation": 4, "test": 4}  # --max_train_samples / --max_eval_samples
    assert metrics["lr_scheduler_type"] == small["lr_scheduler_type"]
    assert "small base" in metrics["finetune_defaults"]
    given = run_recipe(classifier,
        ["--model_name_or_path", str(checkpoint), "--train_file", str(sms_file), "--output_dir",
         str(tmp_path / "b"), "--max_steps", "1", "--learning_rate", "3e-5", "--lr_scheduler_type", "constant",
         *FAST_ARGS]
    )  # fmt: skip
    assert given["learning_rate"] == 3e-5 and given["lr_scheduler_type"] == "constant"
    assert given["num_train_epochs"] == small["num_train_epochs"]  # not given: still the default


@pytest.mark.parametrize(
    ("config", "size"),
    [
        (GPT2Config(), "large"),  # GPT-2 small's shape (124M), no download
        (GPT2Config(n_embd=1024, n_layer=24, n_head=16), "large"),  # GPT-2 medium
        (
            ScratchGPTConfig(vocab_size=4096, n_positions=256, n_embd=128, n_layer=3, n_head=4),
            "small",
        ),  # 1.2M
        (ScratchGPTConfig(vocab_size=8192, n_positions=256, n_embd=384, n_layer=6, n_head=6), "small"),  # 14M
    ],
)
def test_classify_defaults_per_base_size(config, size):
    chosen = finetune_defaults("classify", config, None)
    for name, value in CLASSIFY_DEFAULTS[size].items():
        assert getattr(chosen, name) == value, name
    if size == "large":  # the book's chapter 6 settings for GPT-2
        assert (chosen.learning_rate, chosen.num_train_epochs) == (5e-5, 5)


def test_small_base_learning_rate_follows_its_pretraining_record(tmp_path):
    (tmp_path / "all_results.json").write_text(
        json.dumps({"learning_rate": 4e-3, "train_tokens_seen": 10**6})
    )
    config = ScratchGPTConfig(vocab_size=4096, n_positions=256, n_embd=128, n_layer=3, n_head=4)
    chosen = finetune_defaults("classify", config, tmp_path)
    assert chosen.learning_rate == pytest.approx(4e-3 * PRETRAIN_LR_FRACTION["classify"])


def test_last_block_mode_trains_only_the_last_block_norm_and_head(checkpoint, sms_file, tmp_path):
    output_dir = tmp_path / "last"
    metrics = run(checkpoint, output_dir, "--train_file", str(sms_file), "--trainable_layers", "last_block")
    before, after = load_file(checkpoint / "model.safetensors"), load_file(output_dir / "model.safetensors")
    for name, tensor in after.items():
        if name.startswith("score."):
            continue
        changed = not before[name].equal(tensor)
        assert changed == name.startswith(("transformer.h.1.", "transformer.ln_f.")), name
    assert metrics["trainable_params"] < metrics["total_params"]


def test_lora_merged_saves_a_plain_model(checkpoint, sms_file, tmp_path):
    output_dir = tmp_path / "lora"
    metrics = run(
        checkpoint,
        output_dir,
        "--train_file",
        str(sms_file),
        "--use_peft",
        "--lora_r",
        "4",
        "--merge_adapter",
    )
    assert metrics["trainable_params"] < metrics["total_params"] / 2
    assert not (output_dir / "adapter_config.json").exists()
    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    before = load_file(checkpoint / "model.safetensors")
    assert not model.transformer.h[0].attn.c_attn.weight.equal(before["transformer.h.0.attn.c_attn.weight"])


def test_lora_adapter_only(checkpoint, sms_file, tmp_path):
    from peft import AutoPeftModelForSequenceClassification

    output_dir = tmp_path / "adapter"
    run(checkpoint, output_dir, "--train_file", str(sms_file), "--use_peft", "--lora_r", "4")
    assert (output_dir / "adapter_config.json").is_file() and not (output_dir / "model.safetensors").exists()
    model = AutoPeftModelForSequenceClassification.from_pretrained(output_dir)
    assert model.base_model.model.config.num_labels == 2


def test_separate_files_and_balancing(checkpoint, tmp_path):
    rows = labelled_rows(80)
    train = [
        row for index, row in enumerate(rows[:60]) if row["label"] == "ham" or index % 4 == 1
    ]  # 30 ham, 15 spam
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "val.jsonl", rows[60:70])
    write_jsonl(tmp_path / "test.jsonl", rows[70:])
    metrics = run(
        checkpoint, tmp_path / "o", "--train_file", str(tmp_path / "train.jsonl"),
        "--validation_file", str(tmp_path / "val.jsonl"), "--test_file", str(tmp_path / "test.jsonl"),
        "--balance_classes", "--num_train_epochs", "1",
    )  # fmt: skip
    assert metrics["train_samples_per_second"] > 0
    state = json.loads((tmp_path / "o" / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # 15 + 15 balanced rows, batch 8


def test_unseen_test_labels_are_an_error(checkpoint, tmp_path):
    rows = labelled_rows(40)
    write_jsonl(tmp_path / "train.jsonl", rows[:30])
    write_jsonl(tmp_path / "test.jsonl", [*rows[30:], {"text": "hello there", "label": "phishing"}])
    with pytest.raises(
        ValueError, match=r"test split has labels \['phishing'\] that the training split never had"
    ):
        run(
            checkpoint,
            tmp_path / "o",
            "--train_file",
            str(tmp_path / "train.jsonl"),
            "--test_file",
            str(tmp_path / "test.jsonl"),
        )


def test_missing_label_column_lists_the_columns_found(checkpoint, tmp_path):
    write_jsonl(
        tmp_path / "train.jsonl",
        [{"text": row["text"], "category": row["label"]} for row in labelled_rows(20)],
    )
    with pytest.raises(
        ValueError,
        match=r"\['label'\] not found in the train split.*\['text', 'category'\].*--label_column_name",
    ):
        run(checkpoint, tmp_path / "o", "--train_file", str(tmp_path / "train.jsonl"))


def test_long_texts_are_truncated_with_a_warning(checkpoint, sms_file, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        run(
            checkpoint,
            tmp_path / "o",
            "--train_file",
            str(sms_file),
            "--max_seq_length",
            "4",
            "--max_steps",
            "1",
        )
    assert any(
        "longer than max_seq_length=4 tokens and were truncated" in r.getMessage() for r in caplog.records
    )


def test_max_seq_length_above_the_context_is_an_error(checkpoint, sms_file, tmp_path):
    with pytest.raises(
        ValueError, match=r"--max_seq_length 65 is above the model's context \(n_positions 64\)"
    ):
        run(checkpoint, tmp_path / "o", "--train_file", str(sms_file), "--max_seq_length", "65")


def test_book_spam_split_reproduces_the_books_sizes_and_balance():
    splits = book_spam_split(shared_file("SMSSpamCollection"))
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 1045,
        "validation": 149,
        "test": 300,
    }
    labels = [label for split in splits.values() for label in split["label"]]
    assert labels.count("spam") == labels.count("ham") == 747
    # The book's train.csv begins with this message (pandas sample/shuffle with random_state=123).
    assert splits["train"][0] == {"label": "ham", "text": "Dude how do you like the buff wind."}
