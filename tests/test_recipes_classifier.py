"""recipes/finetune_classifier.py end to end on tiny local data, its training modes, and its bad-input errors."""

import json
import logging

import pytest
from conftest import shared_file
from huggingface_hub import ModelCard
from recipe_helpers import FAST_ARGS, ascii_text, labelled_rows, load_recipe, make_checkpoint, write_jsonl
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.classify_data import book_spam_split

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
    return classifier.main(
        [*args, "--num_train_epochs", "2", "--per_device_train_batch_size", "8", *FAST_ARGS, *extra]
    )


def test_headerless_tsv_end_to_end(checkpoint, sms_file, tmp_path):
    output_dir = tmp_path / "spam"
    metrics = run(checkpoint, output_dir, "--train_file", str(sms_file), "--report_train_accuracy")
    for key in ("eval_accuracy", "eval_f1", "test_accuracy", "test_f1", "train_eval_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["labels"] == ["ham", "spam"] and metrics["world_size"] == 1
    for name in ("model.safetensors", "config.json", "modeling_scratch_gpt.py", "tokenizer.json", "README.md",
                 "loss.png", "all_results.json", "test_predictions.jsonl"):  # fmt: skip
        assert (output_dir / name).is_file(), name
    predictions = [
        json.loads(line) for line in (output_dir / "test_predictions.jsonl").read_text().splitlines()
    ]
    assert len(predictions) == 12  # 20% of 60 rows
    accuracy = sum(p["label"] == p["predicted"] for p in predictions) / len(predictions)
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert type(model).__name__ == "ScratchGPTForSequenceClassification"
    assert model.config.id2label == {0: "ham", 1: "spam"} and model.config.pad_token_id is not None
    assert AutoTokenizer.from_pretrained(output_dir).pad_token is not None
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.pipeline_tag == "text-classification" and "accuracy" in card.data.metrics
    assert str(checkpoint) in card.text  # a local base model is named in the text, not in the metadata


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
