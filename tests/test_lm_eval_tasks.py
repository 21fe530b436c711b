"""The shipped lm-evaluation-harness tasks, offline on a tiny checkpoint; bits per byte against recipes/pretrain.py."""

import json
import math

import pytest
import torch
from recipe_helpers import (
    FAST_ARGS,
    ascii_text,
    labelled_rows,
    preference_records,
    run_recipe,
    write_jsonl,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.evaluation.lm_eval_tasks import TASK_NAMES, TASKS_DIR, local_files
from hf_scratch_gpt.evaluation.preference import PairLogps, answers_logps, likelihood_accuracy

lm_eval = pytest.importorskip("lm_eval", reason="needs the lm-eval extra: pip install -e '.[lm-eval]'")

CONTEXT = 64  # the model's n_positions: recipes/pretrain.py's block size and lm-eval's window


def harness_tokens(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) of one loglikelihood request, as lm-eval 0.4.13's causal HF model builds them.

    Trailing whitespace of the context moves to the continuation; context + continuation is encoded together and
    the continuation's tokens are taken from the end; the last CONTEXT + 1 tokens of the sequence are kept (the
    last one is only predicted). Our tokenizer adds no special tokens, so encoding with or without them is alike.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    continuation_ids = whole[len(context_ids) :]
    return context_ids[-(CONTEXT + 1 - len(continuation_ids)) :], continuation_ids


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    lines = ascii_text(30_000).splitlines(keepends=True)
    cut = int(len(lines) * 0.9)
    (folder / "train.txt").write_text("".join(lines[:cut]), encoding="utf-8")
    (folder / "held_out.txt").write_text("".join(lines[cut:]), encoding="utf-8")
    write_jsonl(folder / "pairs.jsonl", preference_records(40))
    # 10 ham, 6 spam: unbalanced, so a model that always picks one label does not score 0.5 on both metrics
    extra_ham = [row for row in labelled_rows(8, seed=1) if row["label"] == "ham"]
    write_jsonl(folder / "labelled.jsonl", labelled_rows(12) + extra_ham)
    return folder


@pytest.fixture(scope="module")
def pretrained(files, tmp_path_factory):
    """A tiny model pretrained by recipes/pretrain.py (so its predictions depend on context), with its metrics."""
    output_dir = tmp_path_factory.mktemp("run") / "pretrain"
    metrics = run_recipe("pretrain",
        ["--train_file", str(files / "train.txt"), "--validation_file", str(files / "held_out.txt"),
         "--model_size", "tiny", "--config_overrides", f"n_positions={CONTEXT}", "--vocab_size", "300",
         "--block_size", str(CONTEXT), "--max_steps", "40", "--learning_rate", "3e-3",
         "--per_device_train_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
         "--sample_max_new_tokens", "8", "--bf16", "false", "--output_dir", str(output_dir), *FAST_ARGS]
    )  # fmt: skip
    return output_dir, metrics


@pytest.fixture(scope="module")
def results(files, pretrained):
    """One offline lm-eval run of the three shipped tasks, as `lm_eval --include_path ... --metadata ...` does."""
    from lm_eval.tasks import TaskManager

    output_dir, _ = pretrained
    metadata = {
        "text_file": str(files / "held_out.txt"),
        "preference_file": str(files / "pairs.jsonl"),
        "labelled_file": str(files / "labelled.jsonl"),
        # the CLI merges --model_args into the metadata; with our own TaskManager we pass them here
        "pretrained": str(output_dir),
        "trust_remote_code": True,
    }
    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={output_dir},trust_remote_code=True,dtype=float32",
        tasks=list(TASK_NAMES),
        task_manager=TaskManager(include_path=str(TASKS_DIR), metadata=metadata),
        batch_size=8,
        device="cpu",
    )


def test_bits_per_byte_matches_pretrain_recipe_within_2_percent(results, pretrained):
    """Same model, same held-out text, two independent implementations.

    recipes/pretrain.py cuts the text into blocks of 64 tokens and predicts tokens 1..63 of each from the block
    alone (the first token of a block is never predicted and its bytes are not counted; the tail shorter than a
    block is dropped). lm-eval scores every token: windows of 64 predicted tokens, the first from the EOS prefix
    token, each later window's first token from just the token before it, and it divides by all the file's bytes.
    Tokenization also differs slightly: pretrain.py encodes line by line, lm-eval the whole file at once.
    """
    _, metrics = pretrained
    ours = metrics["eval_bits_per_byte"]
    harness = results["results"]["scratch_gpt_text"]["bits_per_byte,none"]
    assert (
        ours < 0.9 * math.log2(300) * metrics["eval_tokens_per_char"]
    )  # trained: well below uniform guessing
    assert harness == pytest.approx(ours, rel=0.02)
    assert results["results"]["scratch_gpt_text"]["byte_perplexity,none"] == pytest.approx(2**harness)


def test_preference_task_is_the_likelihood_ranking_of_the_pairs(results, files, pretrained):
    """lm-eval's `acc` on the two-choice task equals our likelihood accuracy on the same token sequences."""
    output_dir, _ = pretrained
    task = results["results"]["scratch_gpt_preference"]
    assert (
        results["n-samples"]["scratch_gpt_preference"]["effective"] == 4
    )  # the 10% test pairs of 40 records
    docs = local_files.preference_pairs(
        preference_file=str(files / "pairs.jsonl"), pretrained=str(output_dir)
    )["test"]
    assert docs[0]["prompt"].startswith("### User:\n") and docs[0]["prompt"].endswith("### Assistant:\n")
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    model = AutoModelForCausalLM.from_pretrained(output_dir, dtype=torch.float32)

    def split(prompt: str, answer: str) -> tuple[list[int], list[int]]:
        return harness_tokens(tokenizer, prompt, answer)  # the YAML's target_delimiter is ""

    score = dict(model=model, pad_token_id=tokenizer.pad_token_id)
    chosen = answers_logps(sequences=[split(doc["prompt"], doc["choices"][0]) for doc in docs], **score)
    rejected = answers_logps(sequences=[split(doc["prompt"], doc["choices"][1]) for doc in docs], **score)
    ours = likelihood_accuracy(PairLogps(chosen, rejected))
    assert task["acc,none"] == pytest.approx(ours)
    assert 0.0 <= task["acc_norm,none"] <= 1.0


def test_labelled_task_is_our_own_scoring_of_the_labels(results, files, pretrained):
    """lm-eval's per-label log-likelihoods, `acc` and `acc_norm` on the labelled task, recomputed with our code.

    Read from the raw file, not from the task's loader: the choices are the sorted labels ("ham", "spam"), the
    context is the YAML's doc_to_text "Message: {text}\nLabel:", each continuation target_delimiter " " + label;
    the prediction is the label with the highest summed log-prob of its tokens (`acc`), or of that sum divided by
    the label's length in characters (`acc_norm`, lm-eval 0.4.13's normalisation; bytes for these ASCII labels).
    """
    output_dir, _ = pretrained
    assert results["n-samples"]["scratch_gpt_labelled"]["effective"] == 16
    rows = [json.loads(line) for line in (files / "labelled.jsonl").read_text(encoding="utf-8").splitlines()]
    labels = sorted({row["label"] for row in rows})
    gold = torch.tensor([labels.index(row["label"]) for row in rows])
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    model = AutoModelForCausalLM.from_pretrained(output_dir, dtype=torch.float32)
    contexts = [f"Message: {row['text']}\nLabel:" for row in rows]
    logps = torch.stack(
        [
            answers_logps(
                model=model,
                sequences=[harness_tokens(tokenizer, context, " " + label) for context in contexts],
                pad_token_id=tokenizer.pad_token_id,
            )
            for label in labels
        ],
        dim=1,
    )  # [texts, labels]
    # lm-eval's own log-likelihoods, document by document (its samples are in file order by doc_id)
    samples = sorted(results["samples"]["scratch_gpt_labelled"], key=lambda sample: sample["doc_id"])
    harness = torch.tensor([[float(ll) for ll, _ in sample["filtered_resps"]] for sample in samples])
    torch.testing.assert_close(harness, logps, atol=1e-3, rtol=1e-4)
    lengths = torch.tensor([float(len(label)) for label in labels])
    predicted, predicted_norm = logps.argmax(dim=1), (logps / lengths).argmax(dim=1)
    # This barely trained model prefers the shorter label by its sum and the other one per character: the two
    # metrics then differ, so each checks its own rule (were they equal, a swapped rule would go unnoticed).
    assert not torch.equal(predicted, predicted_norm)
    task = results["results"]["scratch_gpt_labelled"]
    assert task["acc,none"] == pytest.approx((predicted == gold).float().mean().item())
    assert task["acc_norm,none"] == pytest.approx((predicted_norm == gold).float().mean().item())


def test_tasks_without_their_file_say_how_to_pass_it(tmp_path):
    with pytest.raises(ValueError, match=r"""--metadata '\{"text_file": "PATH"\}'"""):
        local_files.text_documents(pretrained="x")
    with pytest.raises(FileNotFoundError, match="labelled_file .*missing.tsv does not exist"):
        local_files.labelled_texts(labelled_file=str(tmp_path / "missing.tsv"))
    with pytest.raises(ValueError, match="preference_split must be 'test'"):
        local_files.preference_pairs(
            preference_file=str(write_jsonl(tmp_path / "p.jsonl", preference_records(20))),
            preference_split="train",
            pretrained="x",
        )


def test_labelled_task_reads_the_sms_spam_collection_format(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham\tSee you at dinner\nspam\tWIN cash now\nham\tok thanks\n", encoding="utf-8")
    docs = local_files.labelled_texts(labelled_file=str(path))["test"]
    assert docs["label"] == ["ham", "spam", "ham"] and docs["target"] == [0, 1, 0]
    assert docs[0]["choices"] == ["ham", "spam"]
