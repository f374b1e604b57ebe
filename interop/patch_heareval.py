"""Apply the fix of hear-eval-kit issue #432 to an installed heareval (idempotent).

heareval's ``task_predictions.test`` picks the event post-processing chosen at the selected
epoch after setting ``trainer.fit_loop.current_epoch``; since pytorch-lightning 1.6 that
assignment does nothing, so the lookup uses the last epoch and event tasks die with
``KeyError: <last epoch + 1>`` in ``epoch_best_postprocessing_or_default``. The fix from the
issue sets the epoch through ``fit_loop.epoch_progress.current.completed`` instead.

Usage: ``python interop/patch_heareval.py [FILE]`` (default: the ``task_predictions.py`` of the
heareval that this interpreter imports). Running it again leaves a patched file unchanged.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from atst_hear.fileio import write_text_atomic

BROKEN_LINE = "trainer.fit_loop.current_epoch = grid_point.epoch"
FIXED_LINE = "trainer.fit_loop.epoch_progress.current.completed = grid_point.epoch"


class PatchError(RuntimeError):
    """The file is neither heareval's broken version nor the fixed one."""


def patch_file(path: Path) -> bool:
    """Fix ``path`` in place; True if it changed, False if it was already fixed."""
    text = path.read_text(encoding="utf-8")
    broken, fixed = text.count(BROKEN_LINE), text.count(FIXED_LINE)
    if broken == 0 and fixed == 1:
        return False
    if broken != 1 or fixed != 0:
        raise PatchError(
            f"{path}: expected the line {BROKEN_LINE!r} exactly once (heareval 2021.1.3), found "
            f"it {broken} times and the fixed line {fixed} times; is this another heareval?"
        )
    write_text_atomic(path, text.replace(BROKEN_LINE, FIXED_LINE))
    return True


def installed_task_predictions() -> Path:
    spec = importlib.util.find_spec("heareval.predictions.task_predictions")
    if spec is None or spec.origin is None:
        raise PatchError(f"heareval is not installed for {sys.executable}")
    return Path(spec.origin)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, help="task_predictions.py to patch")
    args = parser.parse_args(argv)
    path = args.file or installed_task_predictions()
    try:
        changed = patch_file(path)
    except (PatchError, OSError) as err:
        print(f"patch_heareval: {err}", file=sys.stderr)
        return 1
    print(f"{path}: {'patched (issue #432)' if changed else 'already patched'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
