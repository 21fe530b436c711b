"""The package itself: plain Auto registration, a torch-free tokenizer, old import paths, the stage layering,
doctests collected from every module, and every import declared in pyproject.toml.

Import checks run in a fresh interpreter, where imports start from zero."""

import ast
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
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


# One fresh interpreter imports the light modules first (neither torch nor transformers may load), then the
# HF export and the job (they build a PreTrainedTokenizerFast: transformers, still without torch).
TORCH_FREE = """
import json, sys
import scratch_tokenizer, scratch_tokenizer.bpe, scratch_tokenizer.default_corpus, scratch_tokenizer.text_files
light = {name: name in sys.modules for name in ('torch', 'transformers')}
import scratch_tokenizer.hf_tokenizer, scratch_tokenizer.train
print(json.dumps([light, {name: name in sys.modules for name in ('torch', 'transformers')}]))
"""


def test_tokenizer_package_does_not_import_torch():
    light, export = json.loads(run_python("-c", TORCH_FREE).stdout)
    assert light == {"torch": False, "transformers": False}
    assert export == {"torch": False, "transformers": True}


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
    assert (
        len(model["vocab"]) == 270 and len(model["merges"]) == 270 - 256 - 1
    )  # bytes, merges, <|endoftext|>


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
    result = run_python("-m", "hf_scratch_gpt.lm_eval_tasks")
    assert Path(result.stdout.strip()) == ROOT / "hf_scratch_gpt" / "evaluation" / "lm_eval_tasks"
    assert "run python -m hf_scratch_gpt.evaluation.lm_eval_tasks" in result.stderr  # the new command, named


def test_an_old_module_imported_by_path_is_usable_as_an_attribute():
    import hf_scratch_gpt.bpe  # noqa: F401  (the old path, as older code wrote it)

    import scratch_tokenizer.bpe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert hf_scratch_gpt.bpe.train_bpe is scratch_tokenizer.bpe.train_bpe
    assert "moved to 'scratch_tokenizer.bpe'" in repr(hf_scratch_gpt.bpe)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        hf_scratch_gpt.NoSuchThing  # noqa: B018
    with warnings.catch_warnings(), pytest.raises(ImportError, match="NoSuchThing"):
        from hf_scratch_gpt.bpe import NoSuchThing  # noqa: F401


# The stages in pipeline order: a module may import its own stage and the ones before it, never a later one.
STAGES = ["scratch_tokenizer", "hf_scratch_gpt.model", "hf_scratch_gpt.data", "hf_scratch_gpt.training",
          "hf_scratch_gpt.evaluation", "hf_scratch_gpt.export", "hf_scratch_gpt.convert"]  # fmt: skip


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


# ---------------------------------------------------------------- doctests: pytest collects every module


PACKAGES = ("scratch_tokenizer", "hf_scratch_gpt")


def test_every_module_is_importable_and_collected_for_doctests(request, capsys):
    """pyproject's pytest config collects the doctests of both packages, and each of their modules imports."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    options = pyproject["tool"]["pytest"]["ini_options"]
    addopts = shlex.split(options["addopts"])
    assert "--doctest-modules" in addopts
    assert not [opt for opt in addopts if opt.startswith(("--ignore", "--deselect"))], addopts
    testpaths = [ROOT / path for path in options["testpaths"]]
    norecurse = request.config.getini("norecursedirs")
    uncovered, unimportable = [], []
    for module, path in package_modules():
        folders = path.relative_to(ROOT).parent.parts
        if not any(path.is_relative_to(folder) for folder in testpaths) or any(
            Path(folder).match(pattern) for folder in folders for pattern in norecurse
        ):
            uncovered.append(str(path.relative_to(ROOT)))
        try:
            importlib.import_module(module)  # what collecting its doctests does
        except Exception as err:  # report them all
            unimportable.append(f"{module}: {err!r}")
    assert not uncovered, uncovered
    assert not unimportable, unimportable
    # A package's conftest.py could drop modules (collect_ignore); collection must run no command.
    assert not [path for package in PACKAGES for path in (ROOT / package).rglob("conftest.py")]
    assert capsys.readouterr().out == "", "importing a module (its __main__.py too) printed something"


# ---------------------------------------------------------------- every third-party import declared

FIRST_PARTY = {*PACKAGES, "recipes", "space"}
# Modules only for an extra (and everything under them): their imports may come from that extra too.
EXTRA_ONLY = {
    "hf_scratch_gpt.training.preference_trainer": "trl",
    "hf_scratch_gpt.evaluation.lm_eval_tasks": "lm-eval",
    "hf_scratch_gpt.model.int8": "quantize",
    "hf_scratch_gpt.export.gguf_file": "gguf",
    "recipes.finetune_preference": "trl",
    "space": "space",
}
# What each folder may import: the core dependencies and its extra; tests and benchmarks everything of `dev`.
FOLDERS = {"scratch_tokenizer": "core", "hf_scratch_gpt": "core", "recipes": "core", "space": "core",
           "tests": "dev", "benchmarks": "dev"}  # fmt: skip


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): `PyYAML`, `pyyaml` and `py_yaml` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(pyproject: Path) -> dict[str, set[str]]:
    """The canonical distribution names of `core` and of each extra, with `project[extra,...]` self-references
    resolved (the dev extra is composed from the others)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    raw = {"core": project.get("dependencies", []), **project.get("optional-dependencies", {})}

    def names(group: str, seen: frozenset = frozenset()) -> set[str]:
        found = set()
        for requirement in raw.get(group, []):
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", requirement)
            assert match, f"cannot read the requirement {requirement!r} of {group}"
            if canonical(match[1]) == canonical(project["name"]):
                for extra in (match[2] or "").split(","):
                    extra = extra.strip()
                    assert extra in raw, f"{group} names the extra {extra!r}, which pyproject.toml lacks"
                    if extra not in seen:
                        found |= names(extra, seen | {group})
            else:
                found.add(canonical(match[1]))
        return found

    return {group: names(group) for group in raw}


def dotted_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def third_party_imports(path: Path, local: set[str]) -> set[str]:
    """Top-level names of the absolute imports in a file (at any depth: in functions and `try` blocks too) that
    are neither the standard library nor ours."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names | local | {"__future__"}}


def module_extra(module: str) -> str | None:
    """The extra a module is only for, or None for a module of the core install."""
    return next((extra for m, extra in EXTRA_ONLY.items() if module == m or module.startswith(m + ".")), None)


def undeclared_imports(root: Path) -> list[str]:
    """`file: import name (distributions) is not declared in ...` for each import that pyproject.toml under
    `root` does not declare where that file may take it from."""
    declared = declared_distributions(root / "pyproject.toml")
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for folder, group in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            extra = module_extra(dotted_name(root, path))
            groups = ["core", *(g for g in (group, extra) if g not in (None, "core"))]
            allowed = set().union(*(declared.get(g, set()) for g in groups))
            local = FIRST_PARTY | {sibling.stem for sibling in path.parent.glob("*.py")}
            for name in sorted(third_party_imports(path, local)):
                provided_by = {canonical(d) for d in distributions.get(name, [])}
                if not provided_by & allowed:
                    where = " or ".join(["dependencies", *(f"the {g!r} extra" for g in groups[1:])])
                    found = ", ".join(sorted(provided_by)) or "no installed distribution"
                    problems.append(
                        f"{path.relative_to(root)}: import {name} ({found}) is not declared in {where}"
                    )
    return problems


def test_every_third_party_import_is_declared():
    problems = undeclared_imports(ROOT)
    assert not problems, "\n".join(problems)


def test_undeclared_imports_are_found(tmp_path):
    """The check itself: an import in a function, an extra-only module, a composed dev extra, a test helper."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "hf_scratch_gpt"\ndependencies = ["NumPy>=1.25"]\n'
        '[project.optional-dependencies]\ntrl = ["trl"]\nspace = ["gradio"]\n'
        'dev = ["hf_scratch_gpt[trl]", "pytest"]\n',
        encoding="utf-8",
    )
    files = {
        "hf_scratch_gpt/__init__.py": "import os\nimport numpy\nfrom . import data\n",
        "hf_scratch_gpt/data/classify.py": "def read():\n    import pandas as pd\n",
        "hf_scratch_gpt/training/preference_trainer.py": "from trl import DPOTrainer\n",
        "hf_scratch_gpt/training/trainer.py": "import trl\n",  # not an extra-only module
        "space/app.py": "import gradio as gr\nimport hf_scratch_gpt\n",  # space: no extra for it here
        "tests/helpers.py": "import pytest\n",
        "tests/test_x.py": "import helpers\nimport trl\nimport yaml\n",  # trl through dev's self-reference
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert undeclared_imports(tmp_path) == [
        "hf_scratch_gpt/data/classify.py: import pandas (pandas) is not declared in dependencies",
        "hf_scratch_gpt/training/trainer.py: import trl (trl) is not declared in dependencies",
        "tests/test_x.py: import yaml (pyyaml) is not declared in dependencies or the 'dev' extra",
    ]


# ---------------------------------------------------------------- a core install imports every module


@pytest.mark.slow
def test_core_install_imports_every_module(tmp_path):
    """`pip install torch==2.13.0 -e .` into a fresh venv (no system site packages, no extras), then import every
    module of both packages except those only for an extra: the core dependencies are enough for them.

    The checkout is copied first, so the editable install writes its egg-info into the copy."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "torch==2.13.0", "-e", str(source)],
        capture_output=True, text=True, timeout=3600, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    modules = [module for module, _ in package_modules() if module_extra(module) is None]
    code = (
        "import importlib, json, sys\n"
        "failed = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:\n"
        "        failed[name] = repr(err)\n"
        "print(json.dumps({'failed': failed, 'where': importlib.import_module('hf_scratch_gpt').__file__}))\n"
    )
    result = subprocess.run(
        [python, "-c", code, *modules], capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
        env={**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["failed"] == {}, out["failed"]
    assert Path(out["where"]).is_relative_to(source)  # the fresh install, not this checkout
    check = subprocess.run(
        [python, "-m", "pip", "check"], capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert check.returncode == 0, check.stdout[-3000:]
