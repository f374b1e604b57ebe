from __future__ import annotations

import pytest

# the lines around the bug in heareval 2021.1.3's task_predictions.py
BROKEN = """    trainer = grid_point.trainer
    # This hack is necessary because we use the best validation epoch to
    # choose the event postprocessing
    trainer.fit_loop.current_epoch = grid_point.epoch

    # Run tests
"""


def test_patch_replaces_the_line_once_and_is_idempotent(patcher, tmp_path):
    target = tmp_path / "task_predictions.py"
    target.write_text(BROKEN)

    assert patcher.patch_file(target) is True
    patched = target.read_text()
    assert patched == BROKEN.replace(
        "trainer.fit_loop.current_epoch = grid_point.epoch",
        "trainer.fit_loop.epoch_progress.current.completed = grid_point.epoch",
    )
    assert patcher.patch_file(target) is False
    assert target.read_text() == patched


def test_patch_refuses_a_file_it_does_not_know(patcher, tmp_path):
    target = tmp_path / "task_predictions.py"
    target.write_text("def test():\n    pass\n")
    with pytest.raises(patcher.PatchError, match="task_predictions.py"):
        patcher.patch_file(target)
    twice = tmp_path / "twice.py"
    twice.write_text(BROKEN + BROKEN)
    with pytest.raises(patcher.PatchError, match="2 times"):
        patcher.patch_file(twice)
    assert twice.read_text() == BROKEN + BROKEN


def test_main_reports_and_exits_non_zero_on_an_unknown_file(patcher, tmp_path, capsys):
    target = tmp_path / "task_predictions.py"
    target.write_text(BROKEN)
    assert patcher.main([str(target)]) == 0
    assert patcher.main([str(target)]) == 0
    assert "already patched" in capsys.readouterr().out
    target.write_text("nothing here\n")
    assert patcher.main([str(target)]) == 1
    assert "another heareval" in capsys.readouterr().err
