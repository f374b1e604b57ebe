"""The README's examples run as written.

Every Python block is executed, except those marked ``<!-- readme-test: needs ... -->`` on the
line before (they need an official checkpoint or the network, and must say so). Every
``atst-hear`` command in a shell block must parse with the real command-line parser, and every
``make`` target must exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from atst_hear.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- readme-test: needs (?P<reason>[^>]+) -->")
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.S | re.M)


def blocks() -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, skip reason) of each fenced block of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(before.strip())
        line = text.count("\n", 0, match.start()) + 1
        found.append((line, match["lang"], match["body"], marker["reason"] if marker else None))
    return found


PYTHON = [(line, code, reason) for line, lang, code, reason in blocks() if lang == "python"]
SHELL = [(line, code) for line, lang, code, _ in blocks() if lang in ("", "sh", "bash")]


def test_readme_has_runnable_python():
    assert [line for line, _, reason in PYTHON if reason is None]


@pytest.mark.parametrize(("line", "code", "reason"), PYTHON, ids=[f"L{b[0]}" for b in PYTHON])
def test_python_block_runs(line, code, reason, tmp_path, monkeypatch):
    if reason is not None:
        # a skipped block must be one that needs a checkpoint, and say so
        assert "checkpoint" in reason
        assert re.search(r"atst-[a-z]+-[a-z]+|\.ckpt|hub\.load", code), f"README.md:{line}"
        return
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme"})


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments and env dropped."""
    commands = []
    for logical in code.replace("\\\n", " ").splitlines():
        words = shlex.split(logical, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]  # VAR=value prefixes
        if words:
            commands.append(words)
    return commands


MAKE_TARGETS = set(
    re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(encoding="utf-8"), re.M)
)


@pytest.mark.parametrize(("line", "code"), SHELL, ids=[f"L{b[0]}" for b in SHELL])
def test_shell_commands_parse(line, code):
    parser = build_parser()
    for words in shell_commands(code):
        if words[0] == "atst-hear":
            try:
                parser.parse_args(words[1:])
            except SystemExit:
                pytest.fail(f"README.md:{line}: `{' '.join(words)}` does not parse")
        elif words[0] == "make":
            unknown = [w for w in words[1:] if "=" not in w and w not in MAKE_TARGETS]
            assert not unknown, f"README.md:{line}: no make target {unknown}"
