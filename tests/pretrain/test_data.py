import io
import tarfile
import warnings
from pathlib import Path

import pytest
import torch

from atst_hear.pretrain.data import (
    AudioStream,
    PretrainDataModule,
    StreamPosition,
    open_source,
)

CROP = 8000


def write_shards(folder: Path, audio: Path, per_shard: int = 4) -> list[Path]:
    """WebDataset-style shards: ``key.wav`` + ``key.json`` members."""
    files = sorted(audio.rglob("*.wav"))
    shards = []
    for start in range(0, len(files), per_shard):
        shard = folder / f"shard-{start // per_shard:03d}.tar"
        with tarfile.open(shard, "w") as archive:
            for file in files[start : start + per_shard]:
                archive.add(file, arcname=f"{file.stem}.wav")
                meta = io.BytesIO(b'{"label": "x"}')
                info = tarfile.TarInfo(f"{file.stem}.json")
                info.size = len(meta.getvalue())
                archive.addfile(info, meta)
        shards.append(shard)
    return shards


def take(stream, n: int) -> list[dict]:
    iterator = iter(stream)
    return [next(iterator) for _ in range(n)]


def test_sources_from_folder_manifest_patterns_and_files(tmp_path, audio_folder):
    folder = open_source([str(audio_folder)])
    assert folder.kind == "files" and len(folder.units) == 12
    manifest = tmp_path / "list.csv"
    rows = [str(p.relative_to(audio_folder)) for p in sorted(audio_folder.rglob("*.wav"))[:5]]
    manifest.write_text("path,duration\n" + "".join(f"{r},1\n" for r in rows))
    listed = open_source([str(manifest)])
    # relative entries are relative to the manifest's folder
    assert listed.units[0] == str(tmp_path / rows[0]) and len(listed.units) == 5
    single = open_source([str(sorted(audio_folder.rglob("*.wav"))[0])])
    assert single.kind == "files" and len(single.units) == 1
    # a pattern may match folders: the clips of each
    folders = open_source([str(audio_folder / "sub*")])
    assert sorted(folders.units) == sorted(folder.units)


def test_shard_patterns(tmp_path, audio_folder):
    (tmp_path / "shards").mkdir()
    shards = write_shards(tmp_path / "shards", audio_folder)
    assert len(shards) == 3
    for spec in (
        str(tmp_path / "shards"),
        str(tmp_path / "shards" / "shard-*.tar"),
        str(tmp_path / "shards" / "shard-{000..002}.tar"),
    ):
        source = open_source([spec])
        assert source.kind == "shards" and [Path(u).name for u in source.units] == [
            s.name for s in shards
        ]


def test_source_errors_name_the_input(tmp_path, audio_folder):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_source([str(tmp_path / "nowhere")])
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.wav\n")
    with pytest.raises(ValueError, match="'path' column"):
        open_source([str(bad)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        open_source([str(tmp_path / "empty")])
    (tmp_path / "shards").mkdir()
    write_shards(tmp_path / "shards", audio_folder)
    with pytest.raises(ValueError, match="mixes"):
        open_source([str(audio_folder), str(tmp_path / "shards")])
    with pytest.raises(FileNotFoundError, match="expanded"):
        open_source([str(tmp_path / "shards" / "shard-{000..005}.tar")])


def test_ranks_and_workers_read_disjoint_units_each_pass(audio_folder):
    source = open_source([str(audio_folder)])
    seen = []
    for rank in range(2):
        stream = AudioStream(source, (CROP,), seed=0, rank=rank, world_size=2)
        for worker in range(3):
            seen += stream.worker_units(epoch=0, worker=worker, n_workers=3)
    assert sorted(seen) == list(range(12))
    stream = AudioStream(source, (CROP,), seed=0)
    assert stream.worker_units(0, 0, 1) != stream.worker_units(1, 0, 1)  # reshuffled per pass


def test_stream_crops_and_positions(audio_folder):
    source = open_source([str(audio_folder)])
    samples = take(AudioStream(source, (CROP, 4000), seed=0), 14)
    assert [tuple(w.shape) for w in samples[0]["waves"]] == [(CROP,), (4000,)]
    # 12 files: the 12th sample ends pass 0, the 13th starts pass 1
    assert [(s["epoch"], s["unit"]) for s in samples[10:13]] == [(0, 11), (1, 0), (1, 1)]
    # resuming from a recorded position continues the same stream
    position = StreamPosition(samples[4]["epoch"], samples[4]["unit"], samples[4]["member"])
    resumed = take(AudioStream(source, (CROP, 4000), seed=0, start={0: position}), 5)
    for a, b in zip(samples[5:10], resumed):
        assert all(torch.equal(x, y) for x, y in zip(a["waves"], b["waves"]))


def test_unreadable_files_are_skipped_and_counted(tmp_path, make_audio_folder):
    make_audio_folder(tmp_path, n_files=4)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav")
    (tmp_path / "empty.flac").write_bytes(b"")
    source = open_source([str(tmp_path)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = take(AudioStream(source, (CROP,), seed=0), 8)
    assert sum(s["skipped"] for s in samples) == 2 * 2  # two bad files, passed twice
    assert any("broken.wav" in str(w.message) for w in caught)


def test_tar_shards_stream_audio_members_only_and_survive_damage(tmp_path, audio_folder):
    (tmp_path / "shards").mkdir()
    shards = write_shards(tmp_path / "shards", audio_folder)
    data = shards[2].read_bytes()
    shards[2].write_bytes(data[: len(data) // 2])  # truncated mid-archive
    source = open_source([str(tmp_path / "shards")])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        samples = take(AudioStream(source, (CROP,), seed=0), 12)
    units = [s["unit"] for s in samples]
    assert all(s["waves"][0].shape == (CROP,) for s in samples)
    # whole shards of 4 members, the damaged one shorter: 4 + 4 + fewer per pass
    per_pass = next(i for i, s in enumerate(samples) if s["epoch"] == 1) + 1
    assert 8 < per_pass < 12, units


def test_datamodule_records_and_restores_positions(audio_folder):
    source = open_source([str(audio_folder)])
    module = PretrainDataModule(source, (0.5,), batch_size=2, num_workers=0, seed=0)
    loader = module.train_dataloader()
    batches = take(loader, 3)
    for batch in batches:
        module.record(batch)
    state = module.state_dict()
    assert state["ranks"][0]["positions"] == {0: [0, 6, 0]}
    restored = PretrainDataModule(source, (0.5,), batch_size=2, num_workers=0, seed=0)
    restored.load_state_dict(state)
    continued = next(iter(restored.train_dataloader()))
    fresh = take(module.train_dataloader(), 4)[3]
    assert torch.equal(continued["waves"][0], fresh["waves"][0])


def test_datamodule_starts_a_new_pass_when_the_layout_changes(audio_folder):
    source = open_source([str(audio_folder)])
    module = PretrainDataModule(source, (0.5,), batch_size=2, num_workers=2, seed=0)
    module.load_state_dict(
        {"world_size": 1, "num_workers": 1, "ranks": [{"positions": {0: [3, 5, 0]}}]}
    )
    with pytest.warns(UserWarning, match="fresh pass"):
        stream = module.train_dataloader().dataset
    assert stream.start == {0: StreamPosition(4), 1: StreamPosition(4)}
    assert stream.worker_offset == 0
    with pytest.raises(ValueError, match="cannot feed"):
        PretrainDataModule(source, (0.5,), 2, num_workers=13, seed=0).train_dataloader()
