"""F1 score as a local `evaluate` metric module (loaded by path, so it works offline).

F1 of a class is the harmonic mean of its precision (of the rows predicted as the class, the share that are)
and its recall (of the rows that are the class, the share predicted as it): 2 * P * R / (P + R), taken as 0
when the class is never predicted or never present. `average`:

- "binary": the F1 of class `pos_label` (default 1);
- "macro": the unweighted mean over the classes present in predictions or references;
- "micro": F1 of the pooled counts (equal to accuracy for single-label classification);
- "weighted": the mean weighted by each class's number of references.

    >>> import evaluate
    >>> from hf_scratch_gpt.evaluation.metrics import metric_path
    >>> f1 = evaluate.load(metric_path("f1"))
    >>> f1.compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 0])   # P = 1/2, R = 1 for class 1
    {'f1': 0.6666666666666666}
"""

import datasets
import evaluate
import numpy as np

AVERAGES = ("binary", "macro", "micro", "weighted")


class F1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="F1 score (harmonic mean of precision and recall), binary or averaged over classes.",
            citation="",
            inputs_description="predictions, references: integer class ids; average: " + " | ".join(AVERAGES),
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self, predictions, references, average: str = "binary", pos_label: int = 1
    ) -> dict[str, float]:
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
        predictions, references = np.asarray(predictions), np.asarray(references)
        if average == "micro":
            return {"f1": float((predictions == references).mean())}
        if average == "binary":
            return {"f1": _class_f1(predictions, references, pos_label)}
        classes = np.union1d(predictions, references)
        scores = np.array([_class_f1(predictions, references, c) for c in classes])
        if average == "macro":
            return {"f1": float(scores.mean())}
        support = np.array([(references == c).sum() for c in classes])
        return {"f1": float((scores * support).sum() / support.sum())}


def _class_f1(predictions: np.ndarray, references: np.ndarray, label: int) -> float:
    true_positive = int(((predictions == label) & (references == label)).sum())
    predicted, actual = int((predictions == label).sum()), int((references == label).sum())
    # F1 = 2TP / (predicted + actual); 0 when the class is neither predicted nor present.
    return 2 * true_positive / (predicted + actual) if predicted + actual else 0.0
