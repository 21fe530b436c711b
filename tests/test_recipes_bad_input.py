"""Bad input shared by all three recipes: a training file that is not UTF-8, a model folder that does not exist."""

import pytest
from recipe_helpers import FAST_ARGS, ascii_text, labelled_rows, make_checkpoint, run_recipe

from hf_scratch_gpt.training.arguments import ModelArguments

RECIPES = ("pretrain", "finetune_classifier", "finetune_instruct")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", ascii_text(5_000))


@pytest.fixture(scope="module")
def latin1_file(tmp_path_factory):
    """A headerless label<TAB>text file saved as Latin-1: 'é' is the single byte 0xe9, invalid UTF-8."""
    path = tmp_path_factory.mktemp("data") / "latin1.tsv"
    lines = [f"{row['label']}\t{row['text']}\n" for row in labelled_rows(10)]
    text = "".join(lines[:3]) + "ham\tcaf\u00e9 tonight\n" + "".join(lines[3:])
    path.write_bytes(text.encode("latin-1"))
    offset = len("".join(lines[:3]).encode("latin-1")) + len("ham\tcaf")  # bytes before the 0xe9
    return path, offset


@pytest.mark.parametrize("recipe", RECIPES)
def test_non_utf8_train_file_names_the_file_and_the_byte_offset(recipe, checkpoint, latin1_file, tmp_path):
    path, offset = latin1_file
    args = ["--train_file", str(path), "--output_dir", str(tmp_path / "out"), *FAST_ARGS]
    if recipe != "pretrain":
        args += ["--model_name_or_path", str(checkpoint)]
    with pytest.raises(
        ValueError, match=rf"--train_file {path} is not UTF-8: byte 0xe9 at byte offset {offset}"
    ):
        run_recipe(recipe, args)


def test_non_utf8_spam_collection_with_the_book_split(checkpoint, latin1_file, tmp_path):
    path, offset = latin1_file
    args = ["--model_name_or_path", str(checkpoint), "--train_file", str(path), "--book_spam_split"]
    with pytest.raises(
        ValueError, match=rf"--train_file {path} is not UTF-8: byte 0xe9 at byte offset {offset}"
    ):
        run_recipe("finetune_classifier", [*args, "--output_dir", str(tmp_path / "out"), *FAST_ARGS])


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("kind", ["relative", "absolute", "under an existing folder"])
def test_missing_model_folder_says_no_folder_and_not_a_hub_id(recipe, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    name = {
        "relative": "./outputs/pretrain",  # transformers: "Repo id must be in the form ..."
        "absolute": str(tmp_path / "outputs" / "pretrain"),
        "under an existing folder": "outputs/pretrain",  # a valid Hub id shape, but outputs/ is a local folder
    }[kind]
    args = ["--model_name_or_path", name, "--output_dir", str(tmp_path / "out"), *FAST_ARGS]
    with pytest.raises(ValueError, match=r"no folder exists at that path .*and it is not a Hub id"):
        run_recipe(recipe, args)


def test_model_location_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"")
    for missing in ("./outputs/pretrain", str(tmp_path / "nope"), "outputs/pretrain", "a/b/c"):
        with pytest.raises(ValueError, match=r"--model_name_or_path .*: no folder exists at that path"):
            ModelArguments(model_name_or_path=missing)
    with pytest.raises(ValueError, match=r"--tokenizer_name \./tok: no folder exists"):
        ModelArguments(tokenizer_name="./tok")
    with pytest.raises(ValueError, match=r"weights.bin is a file: pass the checkpoint folder"):
        ModelArguments(model_name_or_path="weights.bin")
    # Hub ids and existing folders pass (nothing is fetched here)
    for fine in ("gpt2", "openai-community/gpt2", "outputs"):
        assert ModelArguments(model_name_or_path=fine).model_name_or_path == fine
