"""Evaluation metrics as local `evaluate` modules, loaded by path so they work offline.

(`evaluate.load("accuracy")` fetches the script from the Hub and fails without network.)

Usage:

    >>> from hf_scratch_gpt.evaluation.metrics import load_metric
    >>> load_metric("accuracy").compute(predictions=[1, 0], references=[1, 1])
    {'accuracy': 0.5}
"""

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("accuracy", "f1")


def metric_path(name: str) -> str:
    """The folder of the metric module `name`, for `evaluate.load(path)`."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; the local metrics are {METRIC_NAMES}")
    return str(METRICS_DIR / name)


def load_metric(name: str):
    """`evaluate.load` of the local metric module `name`."""
    import evaluate

    return evaluate.load(metric_path(name))
