"""The interop scripts are not a package: load them from ``interop/`` by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

INTEROP = Path(__file__).resolve().parents[2] / "interop"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"interop_{name}", INTEROP / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the script runs
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_interop_script():
    return load_script


@pytest.fixture(scope="session")
def patcher():
    return load_script("patch_heareval")


@pytest.fixture(scope="session")
def interop():
    return load_script("run_interop")


@pytest.fixture
def fake_hear_module(tmp_path, monkeypatch):
    """An importable HEAR module ``fake_hear`` whose load_model records how it was called."""
    (tmp_path / "fake_hear.py").write_text(
        "calls = []\n"
        "def load_model(*args, **kwargs):\n"
        "    calls.append((args, kwargs))\n"
        "    return 'model'\n"
        "def get_scene_embeddings(audio, model):\n"
        "    return 'scene'\n"
        "def get_timestamp_embeddings(audio, model):\n"
        "    return 'timestamps'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake_hear"
    sys.modules.pop("fake_hear", None)
