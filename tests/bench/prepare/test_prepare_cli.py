"""``atst-hear prepare`` on the command line."""

from __future__ import annotations

from atst_hear.cli import main


def test_prepare_then_validate_task_accepts_the_folder(esc50_raw, tmp_path, capsys):
    out = tmp_path / "esc50"
    args = ["prepare", "esc50", str(esc50_raw), str(out), "--jobs", "1", "--allow-partial"]
    assert main(args) == 0
    # a status message, on stderr with the other log records
    assert f"esc50: wrote {out}" in capsys.readouterr().err
    assert main(["validate-task", str(out)]) == 0


def test_user_errors_are_reported_without_traceback(esc50_raw, tmp_path, capsys):
    cases = [
        (["esc50", str(tmp_path / "nowhere")], "nowhere: raw dataset folder does not exist"),
        (["fsd50k", str(esc50_raw)], "cannot find FSD50K.ground_truth/dev.csv"),
        (["spcv2", str(esc50_raw), "--variant", "20"], "no variant '20'; choose one of 35, 12"),
        (["esc50", str(esc50_raw), "--variant", "x"], "esc50 has no variants"),
        (["esc50", str(esc50_raw)], "clips: found 10, the release has 2000"),
    ]
    for args, message in cases:
        name, raw, *options = args
        assert main(["prepare", name, raw, str(tmp_path / "out"), "--jobs", "1", *options]) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error
