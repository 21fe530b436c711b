"""Shared test set-up: offline hub, paths to ../shared/data, small helpers."""

import os

# Set before transformers/datasets are imported anywhere: no test may touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(
    0, str(REPO_ROOT)
)  # `from recipes import pretrain`: the recipes are scripts beside the package
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder ../shared/data; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared data folder {SHARED_DATA} is absent (it sits beside the checkout on dev/CI machines)"
        )
    return SHARED_DATA


def shared_file(name: str) -> Path:
    """Path of one file in ../shared/data, or skip the calling test with the reason."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: this test needs the project's shared data")
    return path


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    """`--doctest-modules` (pyproject.toml) is for the packages' doctests: the test files themselves hold none, so a
    test file is collected once, and one that fails to import reports one error, not two."""
    collected = yield
    return [node for node in collected if type(node).__name__ != "DoctestModule"]
