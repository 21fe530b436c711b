"""Instruction finetuning: response-only labels against hand-built examples, the collator, the recipe end to end."""

import json
import math

import pytest
import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from recipe_helpers import (
    FAST_ARGS,
    ascii_text,
    instruction_records,
    load_recipe,
    make_checkpoint,
    run_recipe,
)
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.data.instruct import (
    IGNORE_INDEX,
    InstructCollator,
    LabelledLogitsCollator,
    alpaca_to_messages,
    instruct_collator,
    to_messages,
    tokenize_function,
)

instruct = load_recipe("finetune_instruct")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = make_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", ascii_text(20_000))
    # Like a base from recipes/pretrain.py, which saves sampling settings for its sample generation.
    GenerationConfig(do_sample=True, temperature=0.8, top_k=50, max_new_tokens=100).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer(checkpoint):
    return AutoTokenizer.from_pretrained(checkpoint)


def test_labels_are_ignored_exactly_on_the_prompt(tokenizer):
    """Hand-built: the prompt text as the chat template documents it, then the response and EOS."""
    messages = alpaca_to_messages("Name a colour.", "", "Blue is a colour.")
    prompt = "### User:\nName a colour.\n\n### Assistant:\n"
    prompt_ids = tokenizer(prompt)["input_ids"]
    response_ids = tokenizer("Blue is a colour.")["input_ids"] + [tokenizer.eos_token_id]
    tail_ids = tokenizer("\n\n")["input_ids"]
    example = tokenize_function(tokenizer)({"messages": messages})
    assert example["input_ids"] == prompt_ids + response_ids + tail_ids
    assert example["labels"] == [IGNORE_INDEX] * len(prompt_ids) + response_ids + [IGNORE_INDEX] * len(
        tail_ids
    )


def test_alpaca_input_and_system_prompt_and_multi_turn_chat(tokenizer):
    messages = alpaca_to_messages("Add them.", "2 and 3", "5", system_prompt="Be brief.")
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add them.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."},
    ]
    example = tokenize_function(tokenizer)({"messages": chat})
    learned = [token for token in example["labels"] if token != IGNORE_INDEX]
    eos = [tokenizer.eos_token_id]
    assert learned == tokenizer("Hello.")["input_ids"] + eos + tokenizer("Goodbye.")["input_ids"] + eos


def test_every_answer_of_a_conversation_record_is_learned_and_nothing_else(tokenizer):
    """A built-in conversation (Alpaca record + history), rendered by hand as the chat template documents it."""
    history = [
        {"instruction": "Reverse the word order: red cat blue", "input": "", "output": "blue cat red"},
        {
            "instruction": "Sort these words alphabetically.",
            "input": "pear apple fig",
            "output": "apple fig pear",
        },
    ]
    record = {"instruction": "What is 4 + 5?", "input": "", "output": "9", "history": history}
    (messages,) = to_messages(Dataset.from_list([record]))["messages"]
    users = [
        "Reverse the word order: red cat blue",
        "Sort these words alphabetically.\n\npear apple fig",
        "What is 4 + 5?",
    ]
    answers = ["blue cat red", "apple fig pear", "9"]
    assert messages == [
        message
        for user, answer in zip(users, answers, strict=True)
        for message in ({"role": "user", "content": user}, {"role": "assistant", "content": answer})
    ]
    eos = tokenizer.eos_token_id
    expected_ids, expected_labels = [], []
    for turn, (user, answer) in enumerate(zip(users, answers, strict=True)):
        prompt = tokenizer(("\n\n" if turn else "") + f"### User:\n{user}\n\n### Assistant:\n")["input_ids"]
        response = tokenizer(answer)["input_ids"] + [eos]
        expected_ids += prompt + response
        expected_labels += [IGNORE_INDEX] * len(prompt) + response
    tail = tokenizer("\n\n")["input_ids"]
    example = tokenize_function(tokenizer)({"messages": messages})
    assert example["input_ids"] == expected_ids + tail
    assert example["labels"] == expected_labels + [IGNORE_INDEX] * len(tail)


def test_collator_pads_with_ignored_labels():
    collate = InstructCollator(pad_token_id=0)
    batch = collate([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["input_ids"].dtype == torch.long


def test_logits_only_where_labelled_give_the_loss_and_gradients_of_full_logits(checkpoint):
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    examples = [
        {"input_ids": [5, 6, 7, 8], "labels": [IGNORE_INDEX, IGNORE_INDEX, 7, 8]},
        {"input_ids": [9, 10, 11], "labels": [IGNORE_INDEX, 10, IGNORE_INDEX]},
    ]
    batch = LabelledLogitsCollator(pad_token_id=0)(examples)
    # position t is kept when token t + 1 is labelled; the labels it predicts, flattened
    assert batch["logits_to_keep"].tolist() == [[False, True, True, False], [True, False, False, False]]
    assert batch["shift_labels"].tolist() == [7, 8, 10]
    full = InstructCollator(pad_token_id=0)(examples)
    assert all(torch.equal(batch[name], full[name]) for name in full)
    weight = model.transformer.h[0].attn.c_attn.weight
    losses, grads = [], []
    for inputs in (full, batch):
        loss = model(**inputs).loss
        losses.append(loss.item())
        grads.append(torch.autograd.grad(loss, weight)[0])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and torch.allclose(grads[0], grads[1], atol=1e-7)
    assert isinstance(instruct_collator(model, 0), LabelledLogitsCollator)

    class NoMask(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, labels=None):
            return input_ids

    assert type(instruct_collator(NoMask(), 0)) is InstructCollator


def test_records_without_known_columns_are_an_error():
    with pytest.raises(
        ValueError, match=r"neither a 'messages' column.*columns found are \['question', 'answer'\]"
    ):
        to_messages(Dataset.from_list([{"question": "q", "answer": "a"}]))
    with pytest.raises(ValueError, match="must end with an assistant message"):
        to_messages(Dataset.from_list([{"messages": [{"role": "user", "content": "hi"}]}]))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "instructions.json"
    path.write_text(json.dumps(instruction_records(40)))
    return path


def run(checkpoint, data_file, output_dir, *extra):
    args = [
        "--model_name_or_path",
        str(checkpoint),
        "--train_file",
        str(data_file),
        "--output_dir",
        str(output_dir),
    ]
    return run_recipe(
        instruct,
        [*args, "--max_steps", "3", "--learning_rate", "1e-3", "--max_new_tokens", "8", *FAST_ARGS, *extra],
    )


def test_full_finetuning_end_to_end(checkpoint, data_file, tmp_path):
    output_dir = tmp_path / "full"
    metrics = run(checkpoint, data_file, output_dir)
    assert metrics["eval_loss"] > 0 and metrics["trainable_params"] == metrics["total_params"]
    responses = json.loads((output_dir / "generated_responses.json").read_text())
    assert len(responses) == metrics["test_num_responses"] == 4  # the 10% test split of 40 records
    assert responses[0]["reference"] == instruction_records(40)[34]["output"]  # 85% train: records 0..33
    for response in responses:
        assert set(response) == {"prompt", "reference", "text", "ended_with_eos", "num_tokens"}
        assert response["num_tokens"] <= 8
        assert response["ended_with_eos"] or response["num_tokens"] == 8
    # the scores in all_results.json are those of the saved responses
    right = sum(r["text"] == r["reference"] for r in responses) / 4
    saved = json.loads((output_dir / "all_results.json").read_text())
    assert saved["test_exact_match"] == right and saved["test_eos_rate"] == metrics["test_eos_rate"]
    assert 0 <= saved["test_rouge_l"] <= 1 and saved["test_most_common_response_share"] >= 0.25
    for name in ("model.safetensors", "config.json", "modeling_scratch_gpt.py", "tokenizer.json",
                 "generation_config.json", "README.md", "loss.png", "all_results.json"):  # fmt: skip
        assert (output_dir / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    assert (
        model.config.use_cache
        and model.generation_config.eos_token_id == AutoTokenizer.from_pretrained(output_dir).eos_token_id
    )
    # greedy answers, without the base's sampling settings (which would make the greedy config invalid)
    assert not model.generation_config.do_sample and model.generation_config.temperature in (None, 1.0)
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.pipeline_tag == "text-generation"
    assert "| test_exact_match |" in card.text and "| test_rouge_l |" in card.text
    assert model.config.chat_finetuned is True  # what the Space reads to open on Chat
    # single-turn records: no multi-turn figures; the Space's examples are the first test prompts
    assert not any("turn" in name for name in saved) and "last turn of a conversation" not in card.text
    test_records = instruction_records(40)[34:38]
    assert model.config.chat_multiturn is False
    assert model.config.chat_examples == [
        r["instruction"] + (f"\n\n{r['input']}" if r["input"] else "") for r in test_records
    ]


def test_lora_merge_and_adapter(checkpoint, data_file, tmp_path):
    from peft import AutoPeftModelForCausalLM

    merged = run(
        checkpoint, data_file, tmp_path / "merged", "--use_peft", "--lora_r", "4", "--merge_adapter",
        "--lora_modules_to_save", "ln_f",
    )  # fmt: skip
    assert merged["trainable_params"] < merged["total_params"] / 2
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert model.config.model_type == "scratch_gpt"
    # ln_f was trained in full and merged in; the embeddings were not trained at all
    assert not torch.equal(model.transformer.ln_f.weight, base.transformer.ln_f.weight)
    assert torch.equal(model.transformer.wte.weight, base.transformer.wte.weight)
    assert "+ ['ln_f'], merged" in (tmp_path / "merged" / "README.md").read_text()
    run(checkpoint, data_file, tmp_path / "adapter", "--use_peft", "--lora_r", "4", "--num_generate", "1")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert AutoPeftModelForCausalLM.from_pretrained(tmp_path / "adapter").peft_config["default"].r == 4


def test_chat_records_and_too_long_examples(checkpoint, tmp_path, caplog):
    chats = [
        {"messages": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": f"{i}"}]}
        for i in range(20)
    ]
    chats[3]["messages"][1]["content"] = "word " * 100  # longer than the 64-token context
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(chat) + "\n" for chat in chats))
    metrics = run(checkpoint, path, tmp_path / "o", "--num_generate", "1", "--max_new_tokens", "1000")
    assert metrics["test_num_responses"] == 1
    (response,) = json.loads((tmp_path / "o" / "generated_responses.json").read_text())
    assert 0 < response["num_tokens"] < 64  # capped by the context
    assert any(
        "dropped 1 of 17 train examples longer than max_seq_length=64" in r.getMessage()
        for r in caplog.records
    )


def test_repetition_settings_are_saved_and_used(checkpoint, data_file, tmp_path):
    output_dir = tmp_path / "norepeat"
    run(checkpoint, data_file, output_dir, "--no_repeat_ngram_size", "2", "--num_generate", "1")
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    assert model.generation_config.no_repeat_ngram_size == 2
    prompt = torch.tensor([[5, 6, 7, 8]])
    # Greedy, from the saved config alone; a 3-step model would repeat itself without the setting.
    new = model.generate(prompt, max_new_tokens=40, min_new_tokens=40)[0].tolist()
    bigrams = list(zip(new, new[1:], strict=False))
    assert len(bigrams) == len(set(bigrams))
    looping = model.generate(prompt, max_new_tokens=40, min_new_tokens=40, no_repeat_ngram_size=0)[0].tolist()
    looping_bigrams = list(zip(looping, looping[1:], strict=False))
    assert len(looping_bigrams) > len(set(looping_bigrams))  # the setting is what prevents the loop


def test_int8_answers_come_from_a_copy_and_the_saved_model_stays_float32(checkpoint, data_file, tmp_path):
    """--generation_quantize int8: the test answers are those of the int8 copy (the same answers as quantizing the
    saved model by hand), recorded as such; the saved weights are the trained float32 ones."""
    from safetensors.torch import load_file

    from hf_scratch_gpt.evaluation.instruction import generate_responses
    from hf_scratch_gpt.model.inference import prepare_for_inference

    output_dir = tmp_path / "int8"
    metrics = run(
        checkpoint, data_file, output_dir, "--generation_dtype", "float32", "--generation_quantize", "int8"
    )
    assert metrics["answer_precision"] == "float32, int8 weights and activations (PyTorch dynamic)"
    assert (
        json.loads((output_dir / "all_results.json").read_text())["answer_precision"]
        == metrics["answer_precision"]
    )
    assert (
        "test answers generated in: float32, int8 weights and activations (PyTorch dynamic)"
        in (output_dir / "README.md").read_text()
    )
    weights = load_file(output_dir / "model.safetensors")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}
    saved = AutoModelForCausalLM.from_pretrained(output_dir)
    int8, _ = prepare_for_inference(saved, "float32", "int8")
    responses = json.loads((output_dir / "generated_responses.json").read_text())
    conversations = [[{"role": "user", "content": r["prompt"]}] for r in responses]
    expected = generate_responses(
        int8,
        AutoTokenizer.from_pretrained(output_dir),
        conversations,
        max_new_tokens=8,
        repetition_penalty=1.1,
    )
    assert [r["text"] for r in responses] == [e.text for e in expected]


def test_overwriting_switches_cleanly_between_adapter_and_full_model(checkpoint, data_file, tmp_path):
    """An old run's adapter must not be applied to a new full model, nor an old config.json hide a new adapter."""
    from peft import AutoPeftModelForCausalLM

    folder = tmp_path / "run"
    run(checkpoint, data_file, folder, "--use_peft", "--lora_r", "4", "--num_generate", "1")
    assert (folder / "adapter_config.json").is_file()
    run(checkpoint, data_file, folder, "--num_generate", "1", "--overwrite_output_dir", "true")
    assert (
        not (folder / "adapter_config.json").exists() and not (folder / "adapter_model.safetensors").exists()
    )
    full = AutoModelForCausalLM.from_pretrained(folder)
    assert not hasattr(full, "peft_config")  # transformers would have attached the old adapter
    run(checkpoint, data_file, folder, "--use_peft", "--lora_r", "4", "--num_generate", "1",
        "--overwrite_output_dir", "true")  # fmt: skip
    assert not (folder / "model.safetensors").exists() and not (folder / "config.json").exists()
    assert AutoPeftModelForCausalLM.from_pretrained(folder).peft_config["default"].r == 4


def test_num_generate_0_trains_and_saves_without_answering(checkpoint, data_file, tmp_path):
    metrics = run(checkpoint, data_file, tmp_path / "o", "--num_generate", "0")
    assert (tmp_path / "o" / "model.safetensors").is_file() and (tmp_path / "o" / "README.md").is_file()
    assert not (tmp_path / "o" / "generated_responses.json").exists()
    assert "test_num_responses" not in metrics and math.isfinite(metrics["eval_loss"])


def test_invalid_repetition_settings_fail_before_training(checkpoint, data_file, tmp_path):
    with pytest.raises(ValueError, match="--repetition_penalty must be > 0"):
        run(checkpoint, data_file, tmp_path / "o", "--repetition_penalty", "0")
    assert not (tmp_path / "o").exists()


def builtin_run(checkpoint, output_dir, *extra):
    """The recipe with no data flags: the built-in task set, small."""
    args = ["--model_name_or_path", str(checkpoint), "--output_dir", str(output_dir), "--max_steps", "3"]
    small = ["--task_train_examples", "40", "--task_eval_examples", "6", "--max_new_tokens", "8"]
    return run_recipe(instruct, [*args, *small, *FAST_ARGS, *extra])


def test_builtin_task_set_and_defaults_from_the_base(checkpoint, tmp_path):
    from hf_scratch_gpt.data.instruct_tasks import DEFAULT_FAMILIES, instruct_task_splits

    metrics = builtin_run(checkpoint, tmp_path / "o", "--task_eval_examples", "12")
    # no --learning_rate / --num_train_epochs given: a small base without a pretraining record gets 1e-3, 10 epochs
    assert metrics["learning_rate"] == 1e-3 and metrics["num_train_epochs"] == 10
    responses = json.loads((tmp_path / "o" / "generated_responses.json").read_text())
    test = instruct_task_splits(n_train=40, n_validation=12, n_test=12, seed=0)["test"]  # FAST_ARGS: --seed 0
    assert [r["reference"] for r in responses] == test["output"]
    # the last turn of each conversation (6 of 12 at the default share 0.5) is scored on its own
    multiturn = [bool(history) for history in test["history"]]
    assert sum(multiturn) == 6
    right = [r["text"] == r["reference"] for r in responses]
    for kind, wanted in (("multiturn", True), ("singleturn", False)):
        hits = [hit for hit, conversation in zip(right, multiturn, strict=True) if conversation == wanted]
        assert metrics[f"test_exact_match_{kind}"] == sum(hits) / len(hits)
    for family, conversation in zip(test["family"], multiturn, strict=True):
        assert 0 <= metrics[f"test_exact_match_{'multiturn_' if conversation else ''}{family}"] <= 1
    saved = json.loads((tmp_path / "o" / "all_results.json").read_text())
    assert saved["test_exact_match_multiturn"] == metrics["test_exact_match_multiturn"]
    # what the Space shows: one held-out prompt per family (its last user turn), the families, multi-turn
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    first_of_family = {}
    for record in test:
        user = record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "")
        first_of_family.setdefault(record["family"], user)
    assert config["chat_examples"] == list(first_of_family.values())
    assert config["chat_multiturn"] is True and config["chat_task_families"] == list(DEFAULT_FAMILIES)
    card = (tmp_path / "o" / "README.md").read_text()
    assert (
        "name: test_exact_match_multiturn" in card and "| single-turn | last turn of a conversation |" in card
    )
    assert "built-in instruction task set" in card and "a small base, so a high learning rate" in card
    assert (
        "Exact match per task family" in card and "name: test_exact_match_add" not in card
    )  # a table, not metadata
    given = builtin_run(checkpoint, tmp_path / "given", "--learning_rate", "3e-4", "--num_train_epochs", "2")
    assert given["learning_rate"] == 3e-4 and given["num_train_epochs"] == 2  # what the user gives wins


def test_help_documents_the_defaults(capsys):
    with pytest.raises(SystemExit):
        run_recipe(instruct, ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a base under 50M parameters gets learning_rate 0.001, 10 epochs, cosine schedule" in text
    assert "a GPT-2-sized base keeps the book's learning_rate 5e-05, 2 epochs" in text


def test_unknown_task_family_is_an_error(checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"unknown task family \['poetry'\]"):
        builtin_run(checkpoint, tmp_path / "o", "--task_families", "add", "poetry")


def test_a_judge_that_cannot_be_loaded_fails_the_run_after_saving_the_rest(checkpoint, tmp_path):
    output_dir = tmp_path / "o"
    with pytest.raises(SystemExit, match="could not load the judge model .* The other results are saved in"):
        builtin_run(checkpoint, output_dir, "--judge_model", str(tmp_path / "missing-judge"))
    saved = json.loads((output_dir / "all_results.json").read_text())
    assert "test_exact_match" in saved and "could not load the judge model" in saved["judge_error"]
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "README.md").is_file()


def test_a_local_judge_scores_the_responses(checkpoint, tmp_path):
    metrics = builtin_run(checkpoint, tmp_path / "o", "--judge_model", str(checkpoint))
    assert 0 <= metrics["test_judge_parsed_rate"] <= 1  # a random tiny judge: any share of its replies parse
