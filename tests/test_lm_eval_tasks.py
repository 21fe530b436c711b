"""The shipped lm-evaluation-harness tasks, offline on a tiny checkpoint; bits per byte against recipes/pretrain.py."""

import math

import pytest
import torch
from recipe_helpers import FAST_ARGS, ascii_text, labelled_rows, load_recipe, preference_records, write_jsonl
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.lm_eval_tasks import TASK_NAMES, TASKS_DIR, local_files
from hf_scratch_gpt.preference_metrics import PairLogps, answers_logps, likelihood_accuracy

lm_eval = pytest.importorskip("lm_eval", reason="needs the lm-eval extra: pip install -e '.[lm-eval]'")

CONTEXT = 64  # the model's n_positions: recipes/pretrain.py's block size and lm-eval's window


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    lines = ascii_text(30_000).splitlines(keepends=True)
    cut = int(len(lines) * 0.9)
    (folder / "train.txt").write_text("".join(lines[:cut]), encoding="utf-8")
    (folder / "held_out.txt").write_text("".join(lines[cut:]), encoding="utf-8")
    write_jsonl(folder / "pairs.jsonl", preference_records(40))
    write_jsonl(folder / "labelled.jsonl", labelled_rows(12))
    return folder


@pytest.fixture(scope="module")
def pretrained(files, tmp_path_factory):
    """A tiny model pretrained by recipes/pretrain.py (so its predictions depend on context), with its metrics."""
    output_dir = tmp_path_factory.mktemp("run") / "pretrain"
    metrics = load_recipe("pretrain").main(
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
        # lm-eval encodes context + continuation together, takes the continuation's tokens from the end, and keeps
        # the last context + 1 tokens of the sequence (the last one is only predicted)
        context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        whole = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]
        continuation = whole[len(context) :]
        return context[-(CONTEXT + 1 - len(continuation)) :], continuation

    score = dict(model=model, pad_token_id=tokenizer.pad_token_id)
    chosen = answers_logps(sequences=[split(doc["prompt"], doc["choices"][0]) for doc in docs], **score)
    rejected = answers_logps(sequences=[split(doc["prompt"], doc["choices"][1]) for doc in docs], **score)
    ours = likelihood_accuracy(PairLogps(chosen, rejected))
    assert task["acc,none"] == pytest.approx(ours)
    assert 0.0 <= task["acc_norm,none"] <= 1.0


def test_labelled_task_scores_every_text(results):
    assert results["n-samples"]["scratch_gpt_labelled"]["effective"] == 12
    assert 0.0 <= results["results"]["scratch_gpt_labelled"]["acc,none"] <= 1.0


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
