"""Library code logs; only the command layer prints, and the CLI sets the log level."""

import ast
import logging
from pathlib import Path

import pytest

import atst_hear
from atst_hear import cli

PACKAGE = Path(atst_hear.__file__).parent


def is_cli_module(path: Path) -> bool:
    return path == PACKAGE / "cli.py" or path.name == "commands.py"


def print_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def test_no_print_outside_the_command_modules():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not is_cli_module(path)
        for line in print_calls(path)
    ]
    assert offenders == [], f"library code prints instead of logging: {offenders}"


def test_the_print_finder_sees_a_print(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def f():\n    x = 1\n    print(x)\n", encoding="utf-8")
    assert print_calls(module) == [3]


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["validate-task", "x"], logging.INFO),
        (["-v", "validate-task", "x"], logging.DEBUG),
        (["--quiet", "validate-task", "x"], logging.WARNING),
        # a sub-command's own --quiet keeps its meaning and also quiets the messages
        (["bench", "--suite", "demo", "--out", "o", "--quiet"], logging.WARNING),
    ],
)
def test_cli_flags_set_the_package_log_level(argv, level):
    args = cli.build_parser().parse_args(argv)
    package_logger = logging.getLogger("atst_hear")
    before = (package_logger.level, list(package_logger.handlers))
    with cli.command_logging(args):
        assert package_logger.level == level
        assert len(package_logger.handlers) == len(before[1]) + 1
    assert (package_logger.level, package_logger.handlers) == before
    if argv[0] == "bench":
        assert args.quiet is True  # still turns the progress bars off


def test_a_command_logs_status_to_stderr_not_stdout(capsys):
    runner_log = logging.getLogger("atst_hear.bench.runner")
    with cli.command_logging(cli.build_parser().parse_args(["validate-task", "x"])):
        runner_log.info("a status message")
        runner_log.debug("a debug message")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("a status message") == 1
    assert "a debug message" not in captured.err


def test_verbose_and_quiet_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["-v", "-q", "validate-task", "x"])
    assert "not allowed with" in capsys.readouterr().err
