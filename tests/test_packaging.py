"""The built wheel: what it contains, that it installs and runs outside the checkout, and that
the libraries installed here are inside the pins setup.cfg declares."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

from atst_hear import cli

REPO = Path(__file__).resolve().parents[1]
# what a source distribution of the project consists of; nothing else may be needed to build
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "atst_hear")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(work / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (path,) = (work / "dist").glob("atst_hear-*.whl")
    return path


def test_wheel_has_resources_license_and_metadata_but_no_tests(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    for kind, suffix in (("suites", ".yaml"), ("recipes", ".yaml"), ("reference", ".csv")):
        shipped = {p.name for p in (REPO / "atst_hear" / "resources" / kind).glob(f"*{suffix}")}
        packed = {Path(n).name for n in names if n.startswith(f"atst_hear/resources/{kind}/")}
        assert shipped and shipped <= packed, kind
    assert "atst_hear/resources/suites/layers.yaml" in names
    assert "atst_hear/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "interop/"))]
    assert not [n for n in names if "/tests/" in n or n.endswith(".ckpt")]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta
    assert "Classifier: License ::" not in meta  # superseded by the SPDX expression
    assert "Requires-Dist: torch>=2.5" in meta
    assert 'Requires-Dist: psds_eval==0.5.3; extra == "bench"' in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "setuptools" in r] == [
        'Requires-Dist: setuptools<81; extra == "bench"'
    ]
    assert b"atst-hear = atst_hear.cli:main" in entry_points


def _requirements() -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    lines += config["options.extras_require"]["bench"].splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_installed_libraries_satisfy_the_pins():
    # the suite runs against the installed set: it must be one the pins allow
    for requirement in _requirements():
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement.name} {installed} is outside {requirement}"
        )


def test_missing_extra_names_the_extra(tmp_path, monkeypatch, capsys):
    (tmp_path / "units").mkdir()
    monkeypatch.delitem(sys.modules, "atst_hear.bench.report", raising=False)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "pip install 'atst-hear[bench]'" in capsys.readouterr().err


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies come from this environment (no network); a .pth line adds a folder to
    # sys.path without running the .pth files inside it, so the checkout's editable install
    # of atst-hear stays invisible
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
        + [str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    from atst_hear.audio import write_wav

    write_wav(work / "clip.wav", np.zeros(16000, dtype=np.float32), 16000)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(venv / "bin" / "atst-hear"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run(
        [str(python), "-c", "import atst_hear; print(atst_hear.__file__)"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(venv))
    run("embed", "--model", "frame", "--random-init", "tiny", "--out", "out", "clip.wav")
    assert np.load(work / "out" / "clip.npy").shape == (4 * 192,)
    assert "--arch" in run("pretrain", "--arch", "base", "--help")
    # a shipped suite end to end, [bench] dependencies from this environment
    run("demo-tasks", "tasks", "--scale", "0.1", "--tasks", "demo_words")
    common = ["--suite", "demo", "--tasks-dir", "tasks", "--out", "run", "--quiet"]
    run(
        "bench",
        *common,
        "--models",
        "logmel",
        "--tasks",
        "demo_words",
        "--protocols",
        "knn",
        "--set",
        "seeds=[0]",
    )
    assert (work / "run" / "leaderboard.md").is_file() and (work / "run" / "summary.json").is_file()
    check = (
        "from atst_hear.bench.suite import load_suite; from atst_hear.pretrain.recipes import "
        "load_recipe; s = load_suite('paper'); print(bool(s.references) and all(p.is_file() "
        f"for p in s.references), str(s.path).startswith({str(venv)!r}), load_recipe(None, "
        "'frame', 'base') is not None)"
    )
    done = subprocess.run(
        [str(python), "-c", check], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]
