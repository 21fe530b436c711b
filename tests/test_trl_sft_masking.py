"""TRL's assistant-only SFT labels on our checkpoint equal our instruct collator's labels on the same records."""

import pytest
from datasets import Dataset
from recipe_helpers import ascii_text, instruction_records, make_checkpoint
from transformers import AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.data.instruct import IGNORE_INDEX, InstructCollator, to_messages, tokenize_function

trl = pytest.importorskip("trl", reason="needs the trl extra: pip install -e '.[trl]'")


def test_trl_assistant_only_labels_equal_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # trust_remote_code caches the model code there
    checkpoint = make_checkpoint(tmp_path / "ckpt", ascii_text(20_000), n_positions=128)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    chats = to_messages(Dataset.from_list(instruction_records(6)))  # with and without an input
    chats = chats.add_item(  # a multi-turn chat: both assistant turns are learned, the user turns are not
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"},
                {"role": "assistant", "content": "Goodbye."},
            ]
        }
    )

    trainer = trl.SFTTrainer(
        model=str(checkpoint),  # the usage: a checkpoint folder with our code files
        args=trl.SFTConfig(
            output_dir=str(tmp_path / "sft"),
            assistant_only_loss=True,
            model_init_kwargs={"trust_remote_code": True},
            use_cpu=True,
            activation_checkpointing=False,  # TRL turns it on; no training happens here
            report_to="none",
            max_length=128,
            per_device_train_batch_size=len(chats),
        ),
        train_dataset=chats,
        processing_class=tokenizer,
    )
    theirs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(chats))])
    ours = InstructCollator(pad_token_id=tokenizer.pad_token_id)(
        [tokenize_function(tokenizer)(chat) for chat in chats]
    )
    assert theirs["input_ids"].tolist() == ours["input_ids"].tolist()
    assert theirs["labels"].tolist() == ours["labels"].tolist()
    # not vacuous: prompts are masked, responses and their EOS are learned
    labels = ours["labels"][-1].tolist()
    learned = [token for token in labels if token != IGNORE_INDEX]
    eos = [tokenizer.eos_token_id]
    assert learned == tokenizer("Hello.")["input_ids"] + eos + tokenizer("Goodbye.")["input_ids"] + eos
