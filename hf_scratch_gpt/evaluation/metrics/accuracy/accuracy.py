"""Accuracy as a local `evaluate` metric module: the fraction of predictions equal to their reference.

`evaluate.load("accuracy")` downloads its script from the Hub and fails offline; this module is loaded by path
and needs no network:

    >>> import evaluate
    >>> from hf_scratch_gpt.evaluation.metrics import metric_path
    >>> accuracy = evaluate.load(metric_path("accuracy"))
    >>> accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    {'accuracy': 0.75}
"""

import datasets
import evaluate
import numpy as np


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Fraction of predictions equal to their reference label.",
            citation="",
            inputs_description="predictions, references: lists of integer class ids of the same length.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        predictions, references = np.asarray(predictions), np.asarray(references)
        if len(references) == 0:
            raise ValueError("accuracy of an empty set is undefined: no predictions were given")
        return {"accuracy": float((predictions == references).mean())}
