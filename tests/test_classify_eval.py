"""Classification evaluation: metrics, confusion matrix and predictions file against hand-computed tiny cases."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from hf_scratch_gpt.evaluation.classification import (
    classification_metrics,
    confusion_matrix,
    results_table,
    write_confusion_matrices,
    write_predictions,
)
from hf_scratch_gpt.training.reporting import save_confusion_plot


def test_confusion_matrix_by_hand():
    # true:      0 0 1 1 1 2
    # predicted: 0 1 1 1 2 0  -> row 0: one right, one as 1; row 1: two right, one as 2; row 2: one as 0
    labels, predicted = [0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 0]
    assert confusion_matrix(labels, predicted, 3) == [[1, 1, 0], [0, 2, 1], [1, 0, 0]]
    assert confusion_matrix([1], [1], 3) == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]  # unseen classes: zero rows


def test_three_class_metrics_by_hand():
    # Same rows as above, as logits whose argmax is the prediction.
    logits = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 2.0
    labels = np.array([0, 0, 1, 1, 1, 2])
    metrics = classification_metrics(3)((logits, labels))
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    # per class (precision, recall): 0: (1/2, 1/2) -> F1 1/2; 1: (2/3, 2/3) -> 2/3; 2: (0, 0) -> 0. Macro: mean.
    assert metrics["f1"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)


def test_binary_f1_is_that_of_the_second_class():
    # spam = class 1: 2 true positives, 1 false positive, 1 false negative -> precision 2/3, recall 2/3.
    logits = np.eye(2)[[1, 1, 1, 0, 0]]
    labels = np.array([1, 1, 0, 1, 0])
    metrics = classification_metrics(2)((logits, labels))
    assert metrics == pytest.approx({"accuracy": 3 / 5, "f1": 2 / 3})


def test_predictions_file_holds_text_label_prediction_and_probabilities(tmp_path):
    logits = np.array(
        [[0.0, math.log(3.0)], [2.0, 2.0], [1000.0, 0.0]]
    )  # probabilities 1/4-3/4, 1/2-1/2, 1-0
    path = write_predictions(
        tmp_path / "p.jsonl", ["win £100", "see you", "ok"], [1, 0, 1], logits, ["ham", "spam"]
    )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == {
        "text": "win £100",
        "label": "spam",
        "predicted": "spam",
        "probabilities": {"ham": 0.25, "spam": 0.75},
    }
    assert (
        rows[1]["probabilities"] == {"ham": 0.5, "spam": 0.5} and rows[1]["predicted"] == "ham"
    )  # tie: first
    assert rows[2]["probabilities"] == {"ham": 1.0, "spam": 0.0} and rows[2]["label"] == "spam"  # no overflow
    assert "£" in path.read_text(encoding="utf-8")  # written as UTF-8, not escaped


def test_confusion_matrices_json_and_plot(tmp_path):
    matrices = {"validation": [[3, 1], [0, 4]], "test": [[5, 2], [1, 6]]}
    path = write_confusion_matrices(tmp_path / "cm.json", ["ham", "spam"], matrices)
    saved = json.loads(path.read_text())
    assert saved["labels"] == ["ham", "spam"] and saved["test"] == [[5, 2], [1, 6]]
    assert (saved["rows"], saved["columns"]) == ("true label", "predicted label")
    png = save_confusion_plot(matrices["test"], ["ham", "spam"], tmp_path / "cm.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 200


def test_results_table_rows():
    table = results_table({"test": {"accuracy": 0.9567, "f1": 0.95555, "rows": 300}})
    assert table.splitlines()[-1] == "| test | 95.67% | 0.9556 | 300 |"
