from __future__ import annotations

import numpy as np
import pytest

from atst_hear.bench import baselines
from atst_hear.bench.cache import EmbeddingCache, ModelSpec
from atst_hear.tasks.folder import TaskFolder

BASELINE = ModelSpec("logmel", "atst_hear.bench.baselines")


class Interrupted(BaseException):
    """Stands in for a kill: not an Exception, so nothing catches it on the way up."""


def test_scene_embeddings_in_split_file_order(make_task, tmp_path):
    task = TaskFolder.open(make_task("multiclass"))
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    emb = cache.get(BASELINE, task, "train", "scene")
    assert emb.files == sorted(task.split_labels("train"))
    assert emb.embeddings.shape == (12, 128) and emb.embeddings.dtype == np.float32
    np.testing.assert_allclose(emb.durations_ms, 500.0)
    assert (cache.split_dir(BASELINE, task, "train", "scene") / "done.json").is_file()
    assert not cache.split_dir(BASELINE, task, "valid", "scene").exists()


def test_timestamp_embeddings_layout(make_task, tmp_path):
    task = TaskFolder.open(make_task("event", n_train=3, n_eval=2))
    emb = EmbeddingCache(tmp_path / "cache", progress=False).get(
        BASELINE, task, "test", "timestamp"
    )
    assert emb.lengths.tolist() == [75, 75]  # 3 s of 40 ms frames
    assert emb.embeddings.shape == (150, 64)
    first = dict(emb.file_slices())[emb.files[0]]
    np.testing.assert_allclose(emb.timestamps[first][:2], [20.0, 60.0])


def test_second_call_reads_the_cache(make_task, tmp_path, monkeypatch):
    task = TaskFolder.open(make_task("multiclass"))
    first = EmbeddingCache(tmp_path / "cache", progress=False).get(BASELINE, task, "test", "scene")

    def fail(*args, **kwargs):
        raise AssertionError("the model must not run again")

    monkeypatch.setattr(baselines, "get_scene_embeddings", fail)
    again = EmbeddingCache(tmp_path / "cache", progress=False).get(BASELINE, task, "test", "scene")
    np.testing.assert_array_equal(first.embeddings, again.embeddings)


def test_resumes_mid_split_and_recomputes_only_missing_shards(make_task, tmp_path, monkeypatch):
    task = TaskFolder.open(make_task("multiclass"))
    original = baselines.get_scene_embeddings
    calls = []

    def interrupted_after_two_batches(audio, model):
        calls.append(len(audio))
        if len(calls) > 2:
            raise Interrupted
        return original(audio, model)

    monkeypatch.setattr(baselines, "get_scene_embeddings", interrupted_after_two_batches)
    cache = EmbeddingCache(tmp_path / "cache", batch_size=2, shard_size=4, progress=False)
    with pytest.raises(Interrupted):
        cache.get(BASELINE, task, "train", "scene")
    directory = cache.split_dir(BASELINE, task, "train", "scene")
    assert sorted(p.name for p in directory.glob("shard-*.npz")) == ["shard-00000.npz"]
    assert not (directory / "done.json").exists()
    assert not list(directory.glob(".*tmp"))  # no half-written shard left behind

    calls.clear()
    monkeypatch.setattr(
        baselines, "get_scene_embeddings", lambda a, m: calls.append(len(a)) or original(a, m)
    )
    resumed = EmbeddingCache(tmp_path / "cache", batch_size=2, shard_size=4, progress=False)
    emb = resumed.get(BASELINE, task, "train", "scene")
    assert sum(calls) == 8  # 12 files, the first shard of 4 was kept
    fresh = EmbeddingCache(tmp_path / "fresh", progress=False).get(BASELINE, task, "train", "scene")
    np.testing.assert_allclose(emb.embeddings, fresh.embeddings, atol=1e-5)


def test_key_separates_options_checkpoints_and_tasks(make_task, tmp_path):
    task = TaskFolder.open(make_task("multiclass"))
    other = TaskFolder.open(make_task("multiclass", seed=1))
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    base = cache.split_dir(BASELINE, task, "train", "scene")
    assert cache.split_dir(BASELINE.with_options(n_mels=32), task, "train", "scene") != base
    assert cache.split_dir(BASELINE, other, "train", "scene") != base
    assert cache.split_dir(BASELINE, task, "train", "timestamp") != base
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"one")
    first = cache.split_dir(
        ModelSpec("m", "atst_hear.bench.baselines", str(weights)), task, "train", "scene"
    )
    weights.write_bytes(b"two")
    second = cache.split_dir(
        ModelSpec("m", "atst_hear.bench.baselines", str(weights)), task, "train", "scene"
    )
    assert first != second  # keyed by the checkpoint's content, not its path


def test_model_errors_name_the_problem(make_task, tmp_path):
    task = TaskFolder.open(make_task("multiclass"))
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    with pytest.raises(RuntimeError, match="cannot import HEAR module 'no.such.module'"):
        cache.get(ModelSpec("x", "no.such.module"), task, "train", "scene")
    with pytest.raises(RuntimeError, match="atst_hear.audio is not a HEAR module"):
        cache.get(ModelSpec("x", "atst_hear.audio"), task, "train", "scene")
    with pytest.raises(ValueError, match=r"load_model rejected options \{'depth': 3\}"):
        cache.get(BASELINE.with_options(depth=3), task, "train", "scene")
    with pytest.raises(FileNotFoundError, match="checkpoint /nonexistent.ckpt not found"):
        cache.get(
            ModelSpec("x", "atst_hear.bench.baselines", "/nonexistent.ckpt"), task, "train", "scene"
        )


def test_baseline_module_follows_the_hear_api():
    import torch

    model = baselines.load_model()
    assert model.sample_rate == 16000
    assert isinstance(model.scene_embedding_size, int) and model.scene_embedding_size == 128
    audio = torch.randn(2, 16000) * 0.1
    scene = baselines.get_scene_embeddings(audio, model)
    frames, stamps = baselines.get_timestamp_embeddings(audio, model)
    assert scene.shape == (2, 128) and scene.dtype == torch.float32
    assert frames.shape == (2, 25, model.timestamp_embedding_size)
    assert stamps.shape == (2, 25) and float(stamps.max()) <= 1000.0
    np.testing.assert_allclose(stamps[0, :3].numpy(), [20.0, 60.0, 100.0])
    with pytest.raises(ValueError, match="no weights"):
        baselines.load_model("weights.ckpt")


def test_reads_48khz_tasks_when_no_16khz_folder(make_task, tmp_path):
    import shutil

    from atst_hear.audio import read_audio, write_wav

    task_dir = make_task("multiclass")
    reference = EmbeddingCache(tmp_path / "a", progress=False).get(
        BASELINE, TaskFolder.open(task_dir), "test", "scene"
    )
    # the same clips as 48 kHz files only, as HEAR's public tarballs ship them
    for wav in sorted((task_dir / "16000").rglob("*.wav")):
        target = task_dir / "48000" / wav.relative_to(task_dir / "16000")
        write_wav(target, read_audio(wav, 48000), 48000)
    shutil.rmtree(task_dir / "16000")
    resampled = EmbeddingCache(tmp_path / "b", progress=False).get(
        BASELINE, TaskFolder.open(task_dir), "test", "scene"
    )
    assert resampled.files == reference.files
    # two resampling passes blur only the bands next to 8 kHz, where log-mel values are tiny
    difference = np.abs(resampled.embeddings - reference.embeddings)
    assert np.median(difference) < 0.05
    assert np.corrcoef(resampled.embeddings.ravel(), reference.embeddings.ravel())[0, 1] > 0.99
