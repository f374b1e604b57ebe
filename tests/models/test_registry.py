"""Checkpoint registry: download once into the torch hub cache, verify, refuse, stay atomic.

No network here: downloads come from ``file://`` URLs of the official-format fixtures and from
a local HTTP server that breaks off mid-transfer.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest
import torch

from atst_hear.fileio import sha256_file
from atst_hear.hear import frame
from atst_hear.models import registry
from atst_hear.models.checkpoints import CheckpointError
from atst_hear.models.encoder import ATSTConfig
from atst_hear.models.registry import DownloadError, RegisteredCheckpoint

REPO = Path(__file__).resolve().parents[2]
NAME = "atst-frame-tiny-fixture"


@pytest.fixture
def hub_dir(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub" / "checkpoints" / "atst-hear"
    torch.hub.set_dir(previous)


FIXTURE_CONFIG = ATSTConfig("frame", width=128, depth=3, heads=2)  # frame_tiny.ckpt


def register(monkeypatch, url: str, sha256: str | None = None, config=FIXTURE_CONFIG) -> None:
    entry = RegisteredCheckpoint(
        NAME, config, "frame_tiny.ckpt", (url,), sha256, "CC-BY-4.0", "test fixture"
    )
    monkeypatch.setitem(registry.REGISTRY, NAME, entry)


def cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_official_entries_are_complete():
    for name, entry in registry.REGISTRY.items():
        assert entry.name == name and entry.urls and entry.licence and entry.source
        assert entry.sha256 is None or len(entry.sha256) == 64
        assert entry.config.flavour in name
    assert {"atst-frame-base", "atst-frame-small", "atst-clip-base", "atst-clip-small"} <= set(
        registry.REGISTRY
    )


def test_name_downloads_once_verifies_and_loads_offline(official_fixtures, hub_dir, monkeypatch):
    source = official_fixtures / "frame_tiny.ckpt"
    register(monkeypatch, source.as_uri(), sha256=sha256_file(source))
    model = frame.load_model(NAME)
    assert cache_files(hub_dir) == ["frame_tiny.ckpt", "frame_tiny.ckpt.sha256"]
    assert sha256_file(hub_dir / "frame_tiny.ckpt") == sha256_file(source)
    audio = torch.linspace(-0.5, 0.5, 16000)[None]
    expected = frame.get_scene_embeddings(audio, frame.load_model(source))
    torch.testing.assert_close(frame.get_scene_embeddings(audio, model), expected)

    # offline: the URL is gone, the cached file is used
    register(monkeypatch, (hub_dir / "missing.ckpt").as_uri(), sha256=sha256_file(source))
    frame.load_model(NAME)


def test_unknown_hash_is_recorded_and_guards_the_cache(official_fixtures, hub_dir, monkeypatch):
    register(monkeypatch, (official_fixtures / "frame_tiny.ckpt").as_uri(), sha256=None)
    path = registry.fetch(NAME, progress=False)
    assert (hub_dir / "frame_tiny.ckpt.sha256").read_text().strip() == sha256_file(path)
    with open(path, "r+b") as handle:  # the cached file changes behind our back
        handle.seek(100)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(DownloadError, match="delete the file"):
        frame.load_model(NAME)


def test_wrong_hash_is_refused_and_leaves_nothing(official_fixtures, hub_dir, monkeypatch):
    register(monkeypatch, (official_fixtures / "frame_tiny.ckpt").as_uri(), sha256="0" * 64)
    with pytest.raises(DownloadError, match="does not match the expected 0000"):
        frame.load_model(NAME)
    assert cache_files(hub_dir) == []


def test_user_hash_overrides_and_checks_local_files(official_fixtures, hub_dir, monkeypatch):
    source = official_fixtures / "frame_tiny.ckpt"
    register(monkeypatch, source.as_uri(), sha256=None)
    with pytest.raises(DownloadError, match="does not match"):
        frame.load_model(NAME, checkpoint_sha256="f" * 64)
    assert cache_files(hub_dir) == []
    frame.load_model(NAME, checkpoint_sha256=sha256_file(source).upper())
    with pytest.raises(CheckpointError, match="does not match"):
        frame.load_model(source, checkpoint_sha256="a" * 64)
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        frame.load_model(source, checkpoint_sha256="abc")


def test_missing_network_is_a_clear_error(hub_dir, monkeypatch):
    register(monkeypatch, "http://127.0.0.1:9/frame_tiny.ckpt")  # nothing listens on port 9
    with pytest.raises(DownloadError, match=r"could not download .*place it at .*frame_tiny"):
        frame.load_model(NAME)
    assert cache_files(hub_dir) == []


class _Truncating(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])  # then hang up

    def log_message(self, *args):
        pass


def test_partial_download_is_refused_and_leaves_nothing(official_fixtures, hub_dir, monkeypatch):
    _Truncating.payload = (official_fixtures / "frame_tiny.ckpt").read_bytes()
    server = http.server.HTTPServer(("127.0.0.1", 0), _Truncating)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        register(monkeypatch, f"http://127.0.0.1:{server.server_port}/frame_tiny.ckpt")
        with pytest.raises(DownloadError, match="(?i)incomplete"):
            registry.fetch(NAME, progress=False)
    finally:
        thread.join(10)
        server.server_close()
    assert cache_files(hub_dir) == []


def test_web_page_instead_of_file_is_refused(tmp_path, hub_dir, monkeypatch):
    page = tmp_path / "quota.html"
    page.write_text("<!DOCTYPE html><html><body>Quota exceeded</body></html>")
    register(monkeypatch, page.as_uri())
    with pytest.raises(DownloadError, match="web page"):
        registry.fetch(NAME, progress=False)
    assert cache_files(hub_dir) == []


def test_file_of_another_architecture_is_refused(official_fixtures, hub_dir, monkeypatch):
    register(
        monkeypatch,
        (official_fixtures / "frame_tiny.ckpt").as_uri(),
        config=ATSTConfig.preset("frame", "base"),
    )
    with pytest.raises(CheckpointError, match="expected ATST-frame of width 768"):
        frame.load_model(NAME)


def test_an_existing_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert registry.lookup("atst-frame-base") is registry.REGISTRY["atst-frame-base"]
    Path("atst-frame-base").write_bytes(b"local")
    assert registry.lookup("atst-frame-base") is None
    assert registry.lookup("no-such-model") is None


def test_hubconf_entry_points(official_fixtures, hub_dir, monkeypatch):
    source = official_fixtures / "frame_tiny.ckpt"
    register(monkeypatch, source.as_uri(), sha256=sha256_file(source))
    model = torch.hub.load(str(REPO), "atst_frame", source="local", checkpoint=NAME)
    assert model.scene_embedding_size == frame.load_model(source).scene_embedding_size
    untrained = torch.hub.load(str(REPO), "atst_clip", source="local", random_init="tiny")
    audio = torch.zeros(2, 8000)
    assert untrained.scene_embeddings(audio).shape == (2, untrained.scene_embedding_size)


def test_file_placed_by_hand_is_used_and_then_guarded(official_fixtures, hub_dir, monkeypatch):
    register(monkeypatch, "http://127.0.0.1:9/unreachable")  # the error message's advice:
    hub_dir.mkdir(parents=True)
    shutil.copy(official_fixtures / "frame_tiny.ckpt", hub_dir / "frame_tiny.ckpt")
    frame.load_model(NAME)  # no network needed
    recorded = (hub_dir / "frame_tiny.ckpt.sha256").read_text().strip()
    assert recorded == sha256_file(official_fixtures / "frame_tiny.ckpt")
