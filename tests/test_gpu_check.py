"""benchmarks/gpu_check.py: the smoke mode writes every section's keys; a section that runs past
its time limit is recorded and the next one still runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.setenv("GPU_CHECK_SMOKE", "1")  # the sections' processes inherit it
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_section_past_its_limit_is_recorded_and_the_rest_runs(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setitem(gpu_check.SMOKE_LIMITS, "parity", 0.5)
    out = tmp_path / "check.json"
    assert gpu_check.main(["--out", str(out), "--sections", "parity,pretrain"]) == 0
    sections = json.loads(out.read_text())["sections"]
    assert sections["parity"]["status"] == "timeout"
    assert sections["parity"]["limit_s"] == 0.5
    assert sections["pretrain"]["status"] == "ok"
    assert not list(tmp_path.glob(".*.part"))


def test_unknown_section_is_refused(gpu_check, tmp_path):
    with pytest.raises(SystemExit, match="unknown sections"):
        gpu_check.main(["--out", str(tmp_path / "x.json"), "--sections", "parity,speed"])


@pytest.mark.slow  # ~30 s on 2 cores
def test_smoke_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "GPU_CHECK_SMOKE": "1", "OUT": str(out), "VENV": sys.prefix}
    subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env, check=True)
    report = json.loads(out.read_text())
    assert report["smoke"] is True
    sections = report["sections"]
    assert {name: s["status"] for name, s in sections.items()} == dict.fromkeys(
        ("parity", "throughput", "hear_mlp", "pretrain"), "ok"
    )
    parity = sections["parity"]
    assert parity["fp32_ok"] and parity["fp32_device_vs_cpu_max_abs_diff"] == 0.0
    assert 0 < parity["bf16_vs_fp32_max_abs_diff"] < 0.06
    assert {"scene", "timestamp"} == set(parity["clips"]["frame_tiny_1s"])
    for key in ("atst_hear_fp32_s", "official_path_fp32_s", "atst_hear_bf16_s", "speedup_fp32"):
        assert sections["throughput"][key] > 0
    assert sections["throughput"]["official_mode_vs_reference_max_abs_diff"] <= 1e-4
    for key in ("batched_s", "reference_s", "speedup", "batched_test_top1"):
        assert key in sections["hear_mlp"]
    assert "skipped" in sections["pretrain"]
