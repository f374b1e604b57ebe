"""A suite's ``checkpoint:`` may be a registered name, fetched once into the torch hub cache."""

from __future__ import annotations

import pytest
import torch
import yaml

from atst_hear.bench.suite import load_suite
from atst_hear.models import registry
from atst_hear.models.encoder import ATSTConfig
from atst_hear.models.registry import DownloadError, RegisteredCheckpoint

NAME = "atst-frame-tiny-fixture"


@pytest.fixture
def registered(official_fixtures, tmp_path, monkeypatch):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    source = official_fixtures / "frame_tiny.ckpt"
    entry = RegisteredCheckpoint(
        NAME,
        ATSTConfig("frame", width=128, depth=3, heads=2),
        "frame_tiny.ckpt",
        (source.as_uri(),),
        None,
        "CC-BY-4.0",
        "test fixture",
    )
    monkeypatch.setitem(registry.REGISTRY, NAME, entry)
    yield tmp_path / "hub" / "checkpoints" / "atst-hear" / "frame_tiny.ckpt"
    torch.hub.set_dir(previous)


def write_suite(tmp_path, checkpoint: str):
    (tmp_path / "tasks").mkdir(exist_ok=True)
    suite = {
        "name": "s",
        "seeds": [0],
        "tasks_dir": str(tmp_path / "tasks"),
        "models": {"m": {"module": "atst_hear.hear.frame", "checkpoint": checkpoint}},
        "tasks": {"t": {"path": "t"}},
        "protocols": [{"protocol": "knn"}],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_a_registered_name_in_a_suite_is_downloaded_once_and_used(registered, tmp_path):
    suite = load_suite(write_suite(tmp_path, NAME))
    model = suite.models["m"]
    assert model.missing_checkpoint is None
    assert model.spec.checkpoint == str(registered) and registered.is_file()


def test_a_registered_name_given_on_the_command_line_is_downloaded(registered, tmp_path):
    suite = load_suite(write_suite(tmp_path, "frame"), checkpoints={"frame": NAME})
    assert suite.models["m"].spec.checkpoint == str(registered)


def test_an_unknown_name_still_asks_for_the_command_line(tmp_path):
    model = load_suite(write_suite(tmp_path, "frame")).models["m"]
    assert model.spec.checkpoint is None and model.missing_checkpoint == "frame"


def test_a_failed_download_names_the_checkpoint(registered, tmp_path, monkeypatch):
    broken = registry.REGISTRY[NAME]
    monkeypatch.setitem(
        registry.REGISTRY,
        NAME,
        RegisteredCheckpoint(
            NAME,
            broken.config,
            broken.file_name,
            ((tmp_path / "gone.ckpt").as_uri(),),
            None,
            broken.licence,
            broken.source,
        ),
    )
    with pytest.raises(DownloadError, match=NAME):
        load_suite(write_suite(tmp_path, NAME))
