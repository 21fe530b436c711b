"""The package itself: plain Auto registration, a torch-free tokenizer, old import paths, and the stage layering.

Import checks run in a fresh interpreter, where imports start from zero."""

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import hf_scratch_gpt
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16, "vocab_size": 40, "bos_token_id": 0,
        "eos_token_id": 0}  # fmt: skip


def run_python(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


HEAVY = "print(json.dumps({name: name in sys.modules for name in ('torch', 'transformers')}))"


@pytest.mark.parametrize(
    "module, transformers_expected",
    [
        ("scratch_tokenizer", False),
        ("scratch_tokenizer.bpe", False),
        ("scratch_tokenizer.default_corpus", False),
        ("scratch_tokenizer.text_files", False),
        # the HF export builds a PreTrainedTokenizerFast: transformers, without torch
        ("scratch_tokenizer.hf_tokenizer", True),
        ("scratch_tokenizer.train", True),
    ],
)
def test_tokenizer_package_does_not_import_torch(module, transformers_expected):
    loaded = json.loads(run_python("-c", f"import json, sys, {module}\n{HEAVY}").stdout)
    assert loaded == {"torch": False, "transformers": transformers_expected}


@pytest.mark.parametrize("module", ["scratch_tokenizer", "hf_scratch_gpt.train_tokenizer"])
def test_tokenizer_cli_trains(tmp_path, module):
    """`python -m scratch_tokenizer` without torch; the old `python -m hf_scratch_gpt.train_tokenizer` still runs it."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("low lower lowest newer newest wider\n" * 50, encoding="utf-8")
    code = (
        "import json, runpy, sys\n"  # runpy runs the CLI as `python -m` does; then report what got imported
        f"sys.argv = ['cli', sys.argv[1], '--vocab_size', '270', '--output_dir', sys.argv[2]]\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
        f"{HEAVY}"
    )
    out = run_python("-c", code, str(corpus), str(tmp_path / "tok")).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded["torch"] is (module == "hf_scratch_gpt.train_tokenizer")  # the old path imports the package
    model = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())["model"]
    assert len(model["vocab"]) == 270 and len(model["merges"]) == 270 - 256 - 1  # bytes, merges, <|endoftext|>


def test_import_registers_without_an_import_hook():
    code = (
        "import sys, transformers\n"
        "before = list(sys.meta_path)\n"
        "import hf_scratch_gpt\n"
        "from transformers.models.auto.configuration_auto import CONFIG_MAPPING\n"
        "from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING\n"
        "from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM\n"
        "assert sys.meta_path == before, (before, sys.meta_path)\n"
        "assert CONFIG_MAPPING['scratch_gpt'] is ScratchGPTConfig\n"
        "assert MODEL_FOR_CAUSAL_LM_MAPPING[ScratchGPTConfig] is ScratchGPTForCausalLM\n"
    )
    run_python("-c", code)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = ScratchGPTForCausalLM(ScratchGPTConfig(**TINY)).eval()
    path = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(path)
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        return path, ids, model(ids).logits


AUTO_ROUND_TRIP = r"""
import json, sys
{before}
import hf_scratch_gpt
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

path, ids = sys.argv[1], torch.tensor(json.loads(sys.argv[2]))
lm = AutoModelForCausalLM.from_pretrained(path).eval()
print(json.dumps({
    "config": type(AutoConfig.from_pretrained(path)).__name__,
    "base": type(AutoModel.from_pretrained(path)).__name__,
    "clf": type(AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)).__name__,
    "module": type(lm).__module__,
    "logits": lm(ids).logits.tolist(),
}))
"""


# Registration must not depend on what transformers imported before: nothing, its Auto modules, or GPT-2 (whose
# import pulls the Auto modules in half-way through transformers' own modules).
@pytest.mark.parametrize(
    "before",
    ["", "import transformers.models.auto.modeling_auto", "from transformers import GPT2LMHeadModel"],
)
def test_auto_classes_load_a_checkpoint_after_import(checkpoint, before):
    path, ids, logits = checkpoint
    code = AUTO_ROUND_TRIP.replace("{before}", before)
    out = json.loads(
        run_python("-c", code, str(path), json.dumps(ids.tolist())).stdout.strip().splitlines()[-1]
    )
    assert [out["config"], out["base"], out["clf"]] == [
        "ScratchGPTConfig",
        "ScratchGPTModel",
        "ScratchGPTForSequenceClassification",
    ]
    assert (
        out["module"] == "hf_scratch_gpt.model.modeling_scratch_gpt"
    )  # the installed code, not a remote copy
    torch.testing.assert_close(torch.tensor(out["logits"]), logits, rtol=0, atol=1e-6)


def test_saved_checkpoint_carries_auto_map_and_code(checkpoint):
    path, _, _ = checkpoint
    auto_map = json.loads((path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoConfig"] == "configuration_scratch_gpt.ScratchGPTConfig"
    assert auto_map["AutoModelForCausalLM"] == "modeling_scratch_gpt.ScratchGPTForCausalLM"
    assert (path / "modeling_scratch_gpt.py").is_file() and (path / "configuration_scratch_gpt.py").is_file()


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("hf_scratch_gpt.bpe", "train_bpe", "scratch_tokenizer.bpe"),
        (
            "hf_scratch_gpt.modeling_scratch_gpt",
            "ScratchGPTForCausalLM",
            "hf_scratch_gpt.model.modeling_scratch_gpt",
        ),
        ("hf_scratch_gpt.recipe_args", "ModelArguments", "hf_scratch_gpt.training.arguments"),
        ("hf_scratch_gpt.data", "load_raw_datasets", "hf_scratch_gpt.data.loading"),
        ("hf_scratch_gpt.training", "RecipeTrainer", "hf_scratch_gpt.training.trainer"),
        ("hf_scratch_gpt.lm_eval_tasks", "TASKS_DIR", "hf_scratch_gpt.evaluation.lm_eval_tasks"),
    ],
)
def test_old_import_paths_work_and_name_the_new_place(old, name, new):
    import importlib

    with pytest.warns(FutureWarning, match=f"moved to {new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_old_module_path_runs_as_a_command():
    out = run_python("-m", "hf_scratch_gpt.lm_eval_tasks").stdout.strip()
    assert Path(out) == ROOT / "hf_scratch_gpt" / "evaluation" / "lm_eval_tasks"


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        hf_scratch_gpt.NoSuchThing  # noqa: B018
    with warnings.catch_warnings(), pytest.raises(ImportError, match="NoSuchThing"):
        from hf_scratch_gpt.bpe import NoSuchThing  # noqa: F401


# The stages in pipeline order: a module may import its own stage and the ones before it, never a later one.
STAGES = ["scratch_tokenizer", "hf_scratch_gpt.model", "hf_scratch_gpt.data", "hf_scratch_gpt.training",
          "hf_scratch_gpt.evaluation", "hf_scratch_gpt.convert"]  # fmt: skip


def stage_of(module: str) -> int | None:
    matches = [i for i, stage in enumerate(STAGES) if module == stage or module.startswith(stage + ".")]
    return matches[0] if matches else None


def package_modules():
    for package in ("scratch_tokenizer", "hf_scratch_gpt"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported_modules(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
    return found


def test_lower_stages_never_import_higher_ones():
    wrong = []
    for module, path in package_modules():
        own = stage_of(module)
        if own is None:
            continue
        for imported in imported_modules(path, module):
            other = stage_of(imported)
            if other is not None and other > own:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong
    assert stage_of("hf_scratch_gpt.data.loading") == 2  # the check itself sees the folders


def test_every_module_has_a_docstring():
    missing = [
        module for module, path in package_modules() if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not missing, missing
