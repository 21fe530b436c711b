"""The documentation works as written: README.md and docs/*.md, and the results page they point to.

- Every command in a ```bash block (backslash continuations joined, `&&` / `|` / `;` chains split, `VAR="$(cmd)"`
  looked into) is one of the kinds below, and what it names exists:
  - `.venv/bin/python recipes/X.py ...` (also after `accelerate launch --config_file F`, whose F must exist): every
    `--flag` is listed by that recipe's `--help`;
  - `.venv/bin/python -m MODULE ...`: the module resolves (`importlib.util.find_spec`) and its flags are in its
    `--help`;
  - `.venv/bin/python other/script.py ...` (benchmarks, the Space, test tools): the script exists and defines
    each flag it is given;
  - other `.venv/bin/` programs exist in the virtualenv, and only a few system tools (curl, apt-get) are used.
- The cheap commands (the tokenizer CLI) run as written, with their output folders moved into tmp_path.
- Every relative link (and `#anchor`) points to an existing file (and heading).
- README.md stays short (<= 250 lines, rows <= 120 characters besides the two verbatim commands), the pages hold
  no history, and every benchmarks/RESULTS.md entry names its date, command and machine, newest first.

Each recipe's `--help` imports torch and transformers (about 10 s of CPU apiece when run alone), so one
subprocess runs every `--help` the docs need, and resolves their modules, once per session, while the cheap
commands run beside it.
"""

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOC_PAGES = sorted((REPO / "docs").glob("*.md"))
DOCS = [README, *DOC_PAGES]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
VENV_BIN = Path(sys.executable).parent

# The README's two commands, which must stay exactly these.
TWO_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e . && .venv/bin/python recipes/pretrain.py",
    "python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 -e '.[dev]' && "
    ".venv/bin/python tests/transformers_suite.py && .venv/bin/python -m pytest",
)
MAX_README_LINES = 250
MAX_README_WIDTH = 120
SYSTEM_TOOLS = {"curl", "apt-get"}
TOKENIZER_CLI = {"scratch_tokenizer", "scratch_tokenizer.train", "hf-scratch-gpt-train-tokenizer"}
PROBE_TIMEOUT_S = 600

FENCED_BASH = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
FENCED_ANY = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
HELP_FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DATE = re.compile(r"\b(20\d\d-\d\d-\d\d)\b")
HISTORY = re.compile(
    r"\bissues? ?#?\d+|(?<![\w/&])#\d+\b|\bsession\b|\bearlier we\b|\bwe measured\b", re.IGNORECASE
)
OPERATORS = {"&&", "||", ";", "|", "&"}


@dataclass(frozen=True)
class Command:
    """One simple command of a bash block, resolved to what it runs."""

    where: str  # file:line
    argv: tuple[str, ...]
    kind: str  # "recipe", "module", "script", "program", "system"
    target: str  # recipes/X.py, the module, the script path, or the program
    args: tuple[str, ...]  # the arguments the target gets
    config_file: str | None = None  # accelerate launch --config_file

    @property
    def flags(self) -> list[str]:
        """The `--flag` names among the arguments (up to a bare `--`, after which flags belong to someone else)."""
        found = []
        for arg in self.args:
            if arg == "--":
                break
            if arg.startswith("--"):
                found.append(arg.split("=", 1)[0])
        return found

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"


def split_words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def simple_commands(words: list[str]) -> list[list[str]]:
    """Split a command line at `&&`, `||`, `;`, `|`; drop leading VAR=value words, keeping `$(...)` inside them."""
    commands, current = [], []
    for word in [*words, ";"]:
        if word not in OPERATORS:
            current.append(word)
            continue
        while current and re.match(r"^[A-Za-z_]\w*=", current[0]):
            value = current.pop(0).split("=", 1)[1]
            for inner in re.findall(r"\$\((.*?)\)", value):
                commands.extend(simple_commands(split_words(inner)))
        if current:
            commands.append(current)
        current = []
    return commands


def bash_commands(path: Path) -> list[tuple[str, list[str]]]:
    """(file:line, argv) of every simple command in the ```bash blocks of `path`."""
    text = path.read_text(encoding="utf-8")
    found = []
    for block in FENCED_BASH.finditer(text):
        first_line = text.count("\n", 0, block.start()) + 2
        buffer, start = "", None
        for offset, line in enumerate(block.group(1).splitlines()):
            start = first_line + offset if start is None else start
            if line.endswith("\\"):
                buffer += line[:-1]
                continue
            buffer += line
            try:
                words = split_words(buffer)
            except ValueError:  # an open quote: the command goes on on the next line
                buffer += "\n"
                continue
            where = f"{path.relative_to(REPO)}:{start}"
            found.extend((where, argv) for argv in simple_commands(words))
            buffer, start = "", None
        assert not buffer.strip(), f"{path.name}: unterminated command in a bash block: {buffer!r}"
    return found


def resolve(where: str, argv: list[str]) -> Command:
    """What a command runs; an AssertionError for a command of no known kind."""
    program, rest = argv[0], argv[1:]
    if program == "python3" and rest[:2] == ["-m", "venv"]:
        return Command(where, tuple(argv), "module", "venv", tuple(rest[2:]))
    if program == ".venv/bin/python":
        if rest[:1] == ["-m"] and len(rest) > 1:
            return Command(where, tuple(argv), "module", rest[1], tuple(rest[2:]))
        if rest and rest[0].endswith(".py"):
            kind = "recipe" if rest[0].startswith("recipes/") else "script"
            return Command(where, tuple(argv), kind, rest[0], tuple(rest[1:]))
        raise AssertionError(f"{where}: unknown python invocation {shlex.join(argv)}")
    if program == ".venv/bin/accelerate" and rest[:1] == ["launch"]:
        launch = rest[1:]
        config_file = None
        if "--config_file" in launch:
            config_file = launch[launch.index("--config_file") + 1]
        scripts = [i for i, word in enumerate(launch) if word.endswith(".py")]
        assert scripts, f"{where}: accelerate launch without a script: {shlex.join(argv)}"
        script = launch[scripts[0]]
        kind = "recipe" if script.startswith("recipes/") else "script"
        return Command(where, tuple(argv), kind, script, tuple(launch[scripts[0] + 1 :]), config_file)
    if program.startswith(".venv/bin/"):
        return Command(where, tuple(argv), "program", program.removeprefix(".venv/bin/"), tuple(rest))
    if program in SYSTEM_TOOLS:
        return Command(where, tuple(argv), "system", program, tuple(rest))
    raise AssertionError(
        f"{where}: `{program}` is not a known command; the docs run Python as .venv/bin/python and the "
        f"project's tools from .venv/bin/ ({shlex.join(argv)})"
    )


COMMANDS = [resolve(where, argv) for path in DOCS for where, argv in bash_commands(path)]


def help_target(command: Command) -> tuple[str, str] | None:
    """("script", path) or ("module", name) whose `--help` lists the command's flags, when it needs one."""
    if not command.flags:
        return None
    if command.kind == "recipe":
        return ("script", command.target)
    if command.kind == "module":
        return ("module", command.target)
    if command.kind == "program" and command.target == "hf-scratch-gpt-train-tokenizer":
        return ("module", "scratch_tokenizer")
    return None


# Run in one subprocess: `importlib.util.find_spec` of each module, then each target's `--help`, run as
# `python SCRIPT --help` / `python -m MODULE --help` would (as __main__, argparse exits), into a JSON file.
PROBE = """
import contextlib, importlib.util, io, json, runpy, sys, traceback

output, request = sys.argv[1], json.loads(sys.argv[2])
specs = {}
for name in request["modules"]:
    try:
        specs[name] = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        specs[name] = False
helps = {}
for kind, name in request["helps"]:
    sys.argv = [name, "--help"]
    buffer, code = io.StringIO(), 0
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            if kind == "script":
                runpy.run_path(name, run_name="__main__")
            else:
                runpy.run_module(name, run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = exit.code or 0
        except BaseException:
            code = traceback.format_exc()
    helps[f"{kind}:{name}"] = {"code": code, "text": buffer.getvalue()}
with open(output, "w", encoding="utf-8") as file:
    json.dump({"specs": specs, "helps": helps}, file)
"""


class Probe:
    """The PROBE subprocess for the docs' modules and `--help` targets, started at once and read when needed."""

    def __init__(self, folder: Path):
        modules = sorted({command.target for command in COMMANDS if command.kind == "module"})
        helps = sorted({target for command in COMMANDS if (target := help_target(command))})
        self.output, self.log = folder / "probe.json", folder / "probe.log"
        with self.log.open("w") as log:  # a file, not a pipe: a full pipe would stall the probe
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    PROBE,
                    str(self.output),
                    json.dumps({"modules": modules, "helps": helps}),
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.result: dict | None = None

    def read(self) -> dict:
        if self.result is None:
            self.process.wait(timeout=PROBE_TIMEOUT_S)
            log = self.log.read_text(encoding="utf-8", errors="replace")
            assert self.process.returncode == 0, f"the --help probe failed:\n{log[-3000:]}"
            self.result = json.loads(self.output.read_text(encoding="utf-8"))
        return self.result

    def resolves(self, module: str) -> bool:
        return self.read()["specs"][module]

    def flags(self, target: tuple[str, str]) -> set[str]:
        kind, name = target
        result = self.read()["helps"][f"{kind}:{name}"]
        command = f"python {name} --help" if kind == "script" else f"python -m {name} --help"
        assert result["code"] == 0, f"{command} failed:\n{result['code']}\n{result['text'][-3000:]}"
        return set(HELP_FLAG.findall(result["text"]))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module", autouse=True)
def probe(tmp_path_factory):
    """Started before the first test of this file, so the cheap commands run while it works."""
    started = Probe(tmp_path_factory.mktemp("docs_probe"))
    yield started
    started.close()


def test_the_docs_have_commands():
    kinds = {command.kind for command in COMMANDS}
    assert {"recipe", "module", "script", "program"} <= kinds, kinds
    assert any(command.config_file for command in COMMANDS), (
        "no accelerate launch --config_file command found"
    )


def test_readme_keeps_the_two_commands():
    commands = [block.group(1).strip() for block in FENCED_BASH.finditer(README.read_text(encoding="utf-8"))]
    for command in TWO_COMMANDS:
        assert command in commands, f"README.md lost the command, verbatim:\n{command}"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move depth into docs/"
    wide = [
        f"{number}: {len(line)} characters"
        for number, line in enumerate(lines, 1)
        if len(line) > MAX_README_WIDTH and line not in TWO_COMMANDS
    ]
    assert not wide, f"README.md lines wider than {MAX_README_WIDTH}: {wide}"


RUNNABLE = [
    command
    for command in COMMANDS
    if command.target in TOKENIZER_CLI and command.kind in ("module", "program")
]


@pytest.mark.parametrize("command", RUNNABLE, ids=str)
def test_cheap_command_runs_as_written(command: Command, tmp_path):
    args = list(command.args)
    output_dir = None
    for index, arg in enumerate(args):
        if arg == "--output_dir":
            output_dir = tmp_path / Path(args[index + 1]).name
            args[index + 1] = str(output_dir)
    for arg in args:
        if "../shared/data/" in arg and not (REPO / arg).exists():
            pytest.skip(f"{arg} is absent (the project's shared data sits beside the checkout)")
    if command.kind == "module":
        argv = [sys.executable, "-m", command.target, *args]
    else:
        argv = [str(VENV_BIN / command.target), *args]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    if output_dir is not None:
        assert (output_dir / "tokenizer.json").is_file() and (output_dir / "bpe_merges.txt").is_file()


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_command_names_what_exists(command: Command, probe: Probe):
    if command.config_file is not None:
        assert (REPO / command.config_file).is_file(), f"{command}: no config file {command.config_file}"
    if command.kind == "module":
        assert probe.resolves(command.target), f"{command}: module {command.target} does not resolve"
    elif command.kind in ("recipe", "script"):
        assert (REPO / command.target).is_file(), f"{command}: no file {command.target}"
    elif command.kind == "program":
        assert (VENV_BIN / command.target).exists(), f"{command}: {command.target} is not in {VENV_BIN}"
    if not command.flags:
        return
    target = help_target(command)
    if target is not None:
        known = probe.flags(target)
        where = f"{target[1]} --help"
    elif command.kind == "script":  # argparse scripts: the flag is spelled out where it is defined
        source = (REPO / command.target).read_text(encoding="utf-8")
        known = {flag for flag in command.flags if f'"{flag}"' in source or f"'{flag}'" in source}
        where = command.target
    else:
        return  # third-party programs (pip, accelerate, lm_eval, transformers, curl) check their own flags
    unknown = [flag for flag in command.flags if flag not in known]
    assert not unknown, f"{command}: {unknown} not accepted by {where}"


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    text = FENCED_ANY.sub("", path.read_text(encoding="utf-8"))
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("path", [*DOCS, RESULTS], ids=lambda path: str(path.relative_to(REPO)))
def test_relative_links_resolve(path: Path):
    text = FENCED_ANY.sub("", path.read_text(encoding="utf-8"))
    broken = []
    for link in LINK.findall(text):
        if re.match(r"^[a-z]+:", link):  # http:, https:, mailto:
            continue
        file_part, _, anchor = link.partition("#")
        target = (path.parent / file_part).resolve() if file_part else path
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in heading_anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"{path.name}: broken links {broken}"


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_docs_hold_no_history(path: Path):
    """Dated figures live in benchmarks/RESULTS.md; the guides say what the code does, not how it got there."""
    text = path.read_text(encoding="utf-8")
    assert not DATE.findall(text), f"{path.name} holds dates {DATE.findall(text)}: figures go in RESULTS.md"
    assert not HISTORY.findall(text), f"{path.name} tells history: {HISTORY.findall(text)}"


def test_results_entries_name_date_command_and_machine():
    text = RESULTS.read_text(encoding="utf-8")
    entries = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    assert entries, "benchmarks/RESULTS.md has no entries (### headings)"
    dates = []
    for entry in entries:
        heading, _, body = entry.partition("\n")
        date = DATE.search(heading)
        assert date, f"RESULTS.md entry without a date in its heading: {heading!r}"
        dates.append(date.group(1))
        for field in ("Command", "Machine"):
            assert re.search(rf"^- {field}s?:", body, re.MULTILINE), (
                f"RESULTS.md {heading!r} names no {field}"
            )
    assert dates == sorted(dates, reverse=True), f"RESULTS.md entries are not newest first: {dates}"
