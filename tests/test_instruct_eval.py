"""Evaluation of instruction finetunes: metrics on hand-worked cases, batched generation, the LLM-as-judge plumbing."""

import logging

import pytest
import torch
from recipe_helpers import ascii_text, make_checkpoint
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.evaluation.instruction import (
    JudgeLoadError,
    Response,
    generate_responses,
    judge_metrics,
    judge_prompt,
    judge_responses,
    load_judge,
    parse_score,
    response_metrics,
)


def response(text: str, reference: str | None, ended: bool = True, tokens: int = 3) -> Response:
    return Response(prompt="p", text=text, reference=reference, ended_with_eos=ended, num_tokens=tokens)


def test_metrics_on_hand_worked_cases():
    responses = [
        response("a b c", "a b c", tokens=4),
        # ROUGE-L: longest common subsequence "a c" = 2 words; precision 2/2, recall 2/3, F1 = 2PR/(P+R) = 0.8
        response("a c", "a b c", tokens=3),
        response("x", "y", ended=False, tokens=8),
        response("a c", "a c d e", tokens=3),  # LCS 2: P 1, R 1/2, F1 2/3
    ]
    metrics = response_metrics(responses)
    assert metrics["exact_match"] == 0.25
    assert metrics["rouge_l"] == pytest.approx((1 + 0.8 + 0 + 2 / 3) / 4)
    assert metrics["eos_rate"] == 0.75
    assert metrics["mean_response_tokens"] == (4 + 3 + 8 + 3) / 4
    assert metrics["most_common_response_share"] == 0.5  # "a c" twice out of four
    assert metrics["num_responses"] == 4


def test_exact_match_ignores_surrounding_whitespace_only():
    metrics = response_metrics([response(" 17\n", "17"), response("17.", "17"), response("Blue", "blue")])
    assert metrics["exact_match"] == pytest.approx(1 / 3)


def test_missing_references_skip_those_metrics_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        metrics = response_metrics([response("a", None), response("b", None)])
    assert "exact_match" not in metrics and "rouge_l" not in metrics
    assert metrics["eos_rate"] == 1.0 and metrics["most_common_response_share"] == 0.5
    assert "2 of 2 responses have no reference: exact_match and rouge_l are skipped" in caplog.text
    partly = response_metrics([response("a", "a"), response("b", None)])
    assert partly["exact_match"] == 1.0  # scored on the responses that have a reference
    with pytest.raises(ValueError, match="no responses to score"):
        response_metrics([])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", ascii_text(20_000))
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder), folder


def conversation(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_batched_generation_equals_one_prompt_at_a_time(tiny):
    model, tokenizer, _ = tiny
    texts = ["Hi", "What is the sum of two and three, please?", "Name a colour.", "x"]
    batched = generate_responses(
        model,
        tokenizer,
        [conversation(t) for t in texts],
        ["a", "b", "c", None],
        max_new_tokens=6,
        batch_size=3,
    )
    assert [r.prompt for r in batched] == texts and [r.reference for r in batched] == ["a", "b", "c", None]
    for text, got in zip(texts, batched, strict=True):
        prompt = tokenizer.apply_chat_template(conversation(text), add_generation_prompt=True, tokenize=False)
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            new = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        new = new[0, ids.shape[1] :].tolist()
        eos = tokenizer.eos_token_id
        expected_tokens = new[: new.index(eos) + 1] if eos in new else new
        assert got.num_tokens == len(expected_tokens) and got.ended_with_eos == (eos in new)
        assert got.text == tokenizer.decode(expected_tokens, skip_special_tokens=True).strip()
    assert tokenizer.padding_side == "right"  # restored


def test_a_prompt_longer_than_the_context_is_cut_from_the_left(tiny, caplog):
    model, tokenizer, _ = tiny
    with caplog.at_level(logging.WARNING):
        (long,) = generate_responses(model, tokenizer, [conversation("word " * 200)], max_new_tokens=10)
    assert 1 <= long.num_tokens <= 10
    assert "1 of 1 prompts are longer than 54 tokens and are cut from the left" in caplog.text  # 64 - 10


def test_a_prompt_that_fits_is_answered_whole_even_with_a_large_token_limit(tiny, caplog):
    # A prompt of just over half the 64-token context with max_new_tokens as large as the context: it is longer
    # than context - max_new_tokens, yet it fits with room for an answer, so nothing may be cut from it.
    model, tokenizer, _ = tiny

    def prompt_of(n_words: int) -> tuple[list[dict], str, int]:
        chat = conversation(" ".join(["a"] * n_words))
        prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return chat, prompt, len(tokenizer(prompt, add_special_tokens=False)["input_ids"])

    chat, prompt, n_prompt = next(p for p in map(prompt_of, range(1, 64)) if p[2] > 64 // 2)
    assert n_prompt <= 64 - 64 // 4  # the range the old rule cut and the new one keeps
    with caplog.at_level(logging.WARNING):
        (whole,) = generate_responses(model, tokenizer, [chat], max_new_tokens=64)
    assert "cut from the left" not in caplog.text
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        new = model.generate(
            ids, max_new_tokens=64 - n_prompt, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    new = new[0, n_prompt:].tolist()
    eos = tokenizer.eos_token_id
    assert whole.num_tokens == (new.index(eos) + 1 if eos in new else len(new))


def test_parse_score_takes_the_first_number_from_0_to_100():
    assert parse_score("85") == 85.0
    assert parse_score(" Score: 100/100") == 100.0
    assert parse_score("I rate it 7 out of 10") == 7.0
    assert parse_score("3.5") is None  # not a whole number
    assert parse_score("1000 then 40") == 40.0
    assert parse_score("none") is None


def test_judge_plumbing_with_a_tiny_local_model(tiny):
    """The judge's generation is forced to write "85" then EOS: the score must come back as 85 for each response."""
    model, tokenizer, folder = tiny
    eight, five = tokenizer.convert_tokens_to_ids(["8", "5"])
    eos = tokenizer.eos_token_id

    def forced(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        last = input_ids[-1].item()
        return [five] if last == eight else [eos] if last == five else [eight]

    responses = [response("blue", "blue"), response("red", "green"), response("x", None)]
    scores = judge_responses(responses, str(folder), prefix_allowed_tokens_fn=forced)
    assert scores == [85.0, 85.0, None]  # no reference: not judged
    assert judge_metrics(scores) == {"judge_parsed_rate": 2 / 3, "judge_score": 85.0}
    # the book's prompt holds the instruction, the reference and the response
    prompt = judge_prompt(Response("Name a colour.", "red", "green", True, 2))
    assert "`Name a colour.`" in prompt and "`green`" in prompt and "`red`" in prompt and "0 to 100" in prompt
    unforced = judge_responses(
        responses[:1], (model, tokenizer), max_new_tokens=4
    )  # a random judge: any reply
    assert unforced[0] is None or 0 <= unforced[0] <= 100


def test_a_judge_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    with pytest.raises(
        JudgeLoadError, match=r"could not load the judge model '.*no-judge'.*--judge_model takes"
    ):
        load_judge(str(tmp_path / "no-judge"))
