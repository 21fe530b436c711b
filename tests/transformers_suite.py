"""Install step for tests/test_transformers_common.py: transformers' own common model tests (`ModelTesterMixin`).

They ship in transformers' source distribution, not in its wheel, so this fetches the sdist of the installed
transformers version with pip (an install step, like `pip install`; the tests themselves stay offline) and unpacks
its `tests/` folder as the package `transformers_tests` under `.venv/transformers-tests-<version>/` (ignored by
git, next to the transformers it belongs to). Run by the README's test command and `.ci/run`:

    .venv/bin/python tests/transformers_suite.py

Idempotent (nothing is fetched when the folder exists). Without network it prints a warning and exits 0: the
common tests then skip with a message naming this command.
"""

import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "transformers_tests"  # not "tests": that name is this repository's own test folder


def suite_dir(transformers_version: str | None = None) -> Path:
    """The folder that holds the package `transformers_tests` for this (or the installed) transformers version."""
    return REPO_ROOT / ".venv" / f"transformers-tests-{transformers_version or version('transformers')}"


def install(transformers_version: str) -> Path:
    target = suite_dir(transformers_version)
    if (target / PACKAGE / "test_modeling_common.py").is_file():
        print(f"transformers {transformers_version} common tests already in {target}")
        return target
    with tempfile.TemporaryDirectory() as tmp:
        # --no-binary :all: makes pip fetch the sdist (the wheel has no tests); --no-deps: nothing else.
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
            + [f"transformers=={transformers_version}", "-d", tmp],
            check=True,
        )
        (sdist,) = Path(tmp).glob("transformers-*.tar.gz")
        prefix = f"{sdist.name.removesuffix('.tar.gz')}/tests/"
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".transformers-tests-"))
        try:
            with tarfile.open(sdist) as archive:
                members = []
                for member in archive.getmembers():
                    if member.name.startswith(prefix) and (member.isfile() or member.isdir()):
                        member.name = f"{PACKAGE}/{member.name.removeprefix(prefix)}"
                        members.append(member)
                archive.extractall(staging, members=members, filter="data")
            staging.rename(target)  # all or nothing: a half-unpacked folder never looks installed
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; left over after a failure
    print(f"transformers {transformers_version} common tests unpacked into {target}")
    return target


def main() -> None:
    transformers_version = version("transformers")
    try:
        install(transformers_version)
    except (subprocess.CalledProcessError, OSError, ValueError) as err:
        print(
            f"warning: could not fetch transformers {transformers_version}'s sdist for its common model tests "
            f"({err}); tests/test_transformers_common.py will skip. Retry with: "
            f"{sys.executable} tests/transformers_suite.py",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
