"""Classification evaluation: accuracy and F1, the confusion matrix, and the predictions file.

Accuracy and F1 come from the local `evaluate` modules in `metrics/` (F1 of the second class for two labels, as
for spam; macro-averaged over classes otherwise). The confusion matrix counts rows by true label (row) and
predicted label (column).

Usage:

    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])   # (rows, classes)
    >>> labels = np.array([0, 0, 1])
    >>> confusion_matrix(labels, logits.argmax(-1), num_labels=2)
    [[1, 1], [0, 1]]
    >>> {name: round(value, 4) for name, value in classification_metrics(2)((logits, labels)).items()}
    {'accuracy': 0.6667, 'f1': 0.6667}
"""

import json
from pathlib import Path

import numpy as np

from hf_scratch_gpt.evaluation.metrics import load_metric

PREDICTIONS_FILE = "test_predictions.jsonl"


def f1_average(num_labels: int) -> str:
    """'binary' (F1 of class 1, e.g. spam) for two classes, else 'macro' (every class counts the same)."""
    return "binary" if num_labels == 2 else "macro"


def classification_metrics(num_labels: int):
    """`compute_metrics` for the Trainer: (logits (rows, classes), class ids (rows,)) -> accuracy and F1."""
    accuracy, f1 = load_metric("accuracy"), load_metric("f1")

    def compute(eval_prediction) -> dict[str, float]:
        logits, labels = eval_prediction
        predictions = np.asarray(logits).argmax(-1)
        return {
            **accuracy.compute(predictions=predictions, references=labels),
            **f1.compute(predictions=predictions, references=labels, average=f1_average(num_labels)),
        }

    return compute


def confusion_matrix(labels, predictions, num_labels: int) -> list[list[int]]:
    """counts[true][predicted]: row i holds the rows of class i, by the class they were predicted as."""
    counts = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return counts.tolist()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (rows, classes), stable for large logits."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def write_predictions(
    path: str | Path, texts: list[str], labels, logits: np.ndarray, label_list: list[str]
) -> Path:
    """One JSON line per row: text, true label, predicted label, and the probability of every class.

    `{"text": "WIN a prize", "label": "spam", "predicted": "spam", "probabilities": {"ham": 0.02, "spam": 0.98}}`
    """
    probabilities = softmax(np.asarray(logits, dtype=np.float64))
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for text, label_id, probs in zip(texts, labels, probabilities, strict=True):
            record = {
                "text": text,
                "label": label_list[int(label_id)],
                "predicted": label_list[int(probs.argmax())],
                "probabilities": {
                    name: round(float(p), 6) for name, p in zip(label_list, probs, strict=True)
                },
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_confusion_matrices(
    path: str | Path, label_list: list[str], matrices: dict[str, list[list[int]]]
) -> Path:
    """confusion_matrix.json: the labels (row / column order) and one matrix per split, rows = true labels."""
    path = Path(path)
    content = {"labels": label_list, "rows": "true label", "columns": "predicted label", **matrices}
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return path


def results_table(split_metrics: dict[str, dict[str, float]]) -> str:
    """Markdown table of accuracy and F1 per split, for the model card."""
    rows = [
        f"| {split} | {values['accuracy']:.2%} | {values['f1']:.4f} | {values['rows']} |"
        for split, values in split_metrics.items()
    ]
    return "| split | accuracy | F1 | rows |\n|---|---|---|---|\n" + "\n".join(rows)
