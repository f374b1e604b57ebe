"""``atst-hear embed --devices N``: ranks started by Lightning Fabric (CPU, gloo) write the same
bytes as one process, and resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atst_hear.audio import write_wav

LENGTHS = [16000, 16000, 24000, 8000, 16000, 24000, 12000]  # batches of unequal sizes


def _embed(files: list[Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "atst_hear.cli", "embed", "--model", "frame"]
    command += ["--random-init", "tiny", "--out", str(out), "--batch-size", "2", "--workers", "0"]
    command += ["--device", "cpu", "--kind", "timestamp", *extra, *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_cpu_ranks_write_the_bytes_of_one_process_and_resume(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i, n in enumerate(LENGTHS):
        files.append(tmp_path / "in" / f"c{i}.wav")
        write_wav(files[-1], rng.uniform(-0.5, 0.5, n).astype(np.float32), 16000)
    single = _embed(files, tmp_path / "one")
    assert single.returncode == 0, single.stderr
    ranked = _embed(files, tmp_path / "two", "--devices", "2")
    assert ranked.returncode == 0, ranked.stderr
    assert ranked.stdout.count("wrote 7 embeddings") == 1  # rank 0 reports, once all are done
    written = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(written) == 2 * len(files)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == written
    for name in written:
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    (tmp_path / "two" / "c2.npy").unlink()
    again = _embed(files, tmp_path / "two", "--devices", "2")
    assert again.returncode == 0 and "wrote 1 embeddings" in again.stdout
    assert (tmp_path / "two" / "c2.npy").read_bytes() == (tmp_path / "one" / "c2.npy").read_bytes()


def test_the_hear_layer_imports_no_lightning():
    code = (
        "import sys, atst_hear.hear.commands, atst_hear.hear.frame, atst_hear.hear.clip, "
        "atst_hear.hear.c2f; assert 'lightning' not in sys.modules, 'lightning imported'"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
