"""Metrics of the recipes: local evaluate modules against scikit-learn and hand-worked cases, LM metrics, LR schedule."""

import math
import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from hf_scratch_gpt.data.lm import TextUnits
from hf_scratch_gpt.evaluation.metrics import load_metric
from hf_scratch_gpt.training.lm_metrics import language_model_metrics
from hf_scratch_gpt.training.trainer import TimeBudget, TimeBudgetCallback, time_lr_factor


@pytest.fixture(scope="module")
def accuracy():
    return load_metric("accuracy")


@pytest.fixture(scope="module")
def f1():
    return load_metric("f1")


def test_known_tiny_case_by_hand(accuracy, f1):
    # 4 rows, one false positive: accuracy 3/4; class 1 has precision 1/2, recall 1 -> F1 2/3.
    predictions, references = [1, 1, 0, 0], [1, 0, 0, 0]
    assert accuracy.compute(predictions=predictions, references=references) == {"accuracy": 0.75}
    assert f1.compute(predictions=predictions, references=references)["f1"] == pytest.approx(2 / 3)
    # Class 0: precision 1, recall 2/3 -> F1 0.8; macro = (0.8 + 2/3) / 2.
    assert f1.compute(predictions=predictions, references=references, average="macro")["f1"] == pytest.approx(
        (0.8 + 2 / 3) / 2
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("average", ["binary", "macro", "micro", "weighted"])
def test_f1_and_accuracy_equal_scikit_learn(accuracy, f1, seed, average):
    rng = np.random.default_rng(seed)
    n_classes = 2 if average == "binary" else 4
    references, predictions = rng.integers(0, n_classes, 30), rng.integers(0, n_classes, 30)
    ours = f1.compute(predictions=predictions, references=references, average=average)["f1"]
    assert ours == pytest.approx(f1_score(references, predictions, average=average, zero_division=0))
    assert accuracy.compute(predictions=predictions, references=references)["accuracy"] == pytest.approx(
        accuracy_score(references, predictions)
    )


def test_f1_of_a_never_predicted_class_is_zero(f1):
    assert f1.compute(predictions=[0, 0], references=[1, 0])["f1"] == 0.0
    with pytest.raises(ValueError, match="average must be one of"):
        f1.compute(predictions=[0], references=[0], average="samples")


def test_language_model_metrics_by_hand():
    # 1,000 predicted tokens at 1.5 nats each cover 4,000 characters / 4,400 bytes.
    metrics = language_model_metrics(1.5, TextUnits(n_predicted_tokens=1000, n_chars=4000, n_bytes=4400))
    assert metrics["nats_per_char"] == pytest.approx(1500 / 4000)
    assert metrics["bits_per_byte"] == pytest.approx(1500 / math.log(2) / 4400)
    assert metrics["perplexity"] == pytest.approx(math.exp(1.5))
    assert math.isfinite(language_model_metrics(1e6, TextUnits(1, 1, 1))["perplexity"])


def test_time_based_schedule():
    # Warmup in steps, then cosine on the elapsed fraction of the budget, ending at min_lr_rate.
    assert time_lr_factor("cosine", step=0, progress=0.0, warmup=10) == 0.0
    assert time_lr_factor("cosine", step=10, progress=0.0, warmup=10) == 1.0
    assert time_lr_factor("cosine", step=99, progress=1.0, warmup=10) == pytest.approx(0.0)
    assert time_lr_factor(
        "cosine_with_min_lr", step=99, progress=1.0, warmup=10, min_lr_rate=0.1
    ) == pytest.approx(0.1)
    assert time_lr_factor("linear", step=99, progress=0.75, warmup=10) == pytest.approx(0.25)
    assert time_lr_factor("constant", step=99, progress=0.9, warmup=10) == 1.0
    # Warmup as a fraction of the budget: 10% of the time.
    assert time_lr_factor("linear", step=3, progress=0.05, warmup=0.1) == pytest.approx(0.5)
    assert time_lr_factor("linear", step=3, progress=0.55, warmup=0.1) == pytest.approx(0.5)


def test_time_budget_stops_training_and_projects_the_progress_bar(monkeypatch):
    """The bar's total becomes the steps the budget allows at the speed so far, so tqdm's ETA is the time left."""
    from types import SimpleNamespace

    from transformers import ProgressCallback, TrainerControl, TrainerState

    clock = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    progress = ProgressCallback()
    budget = TimeBudget(60)
    callback = TimeBudgetCallback(budget, [progress])
    args = SimpleNamespace(device="cpu", world_size=1)
    state = TrainerState(max_steps=10_000, is_world_process_zero=True)
    control = TrainerControl()
    progress.on_train_begin(args, state, control)
    callback.on_train_begin(args, state, control)
    for step in range(1, 11):  # one step every 2 s: a 60-s budget allows 30 steps
        clock[0] += 2.0
        state.global_step = step
        progress.on_step_end(args, state, control)
        callback.on_step_end(args, state, control)
    assert progress.training_bar.total == 30 and not control.should_training_stop
    clock[0] += 40.0  # a slow step spends the budget
    state.global_step = 11
    callback.on_step_end(args, state, control)
    assert control.should_training_stop and budget.stopped_at_step == 11
    assert progress.training_bar.total == 11  # never below the steps done
    progress.training_bar.close()

    # Resumed at step 1000: the budget's clock starts again, and so does the projection.
    callback = TimeBudgetCallback(TimeBudget(60), [progress])
    state = TrainerState(max_steps=10_000, is_world_process_zero=True, global_step=1000)
    control = TrainerControl()
    progress.on_train_begin(args, state, control)
    callback.on_train_begin(args, state, control)
    for step in range(1001, 1011):
        clock[0] += 2.0
        state.global_step = step
        progress.on_step_end(args, state, control)
        callback.on_step_end(args, state, control)
    assert progress.training_bar.total == 1030
    progress.training_bar.close()
