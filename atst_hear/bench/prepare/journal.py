"""The journal of finished clips in a partial folder, read back to resume an interrupted run.

Its first line is the run's signature (dataset, variant, converter version, resampler ...); a
partial folder left by a run with another signature is started again. Each further line is
the record of one converted clip with the sha256 of its output, so a resumed run keeps a clip
only while its output still has that checksum and its source is unchanged. A line torn by a
crash is ignored and its clip converted again.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ...fileio import sha256_file
from .convert import clip_path, source_stat
from .plan import Clip

logger = logging.getLogger(__name__)

JOURNAL_NAME = "progress.jsonl"
RECORD_KEYS = {"split", "file", "source", "source_stat", "sha256"}

Records = dict[tuple[str, str], dict[str, Any]]


class Journal:
    """Append-only record of finished clips in a partial folder."""

    def __init__(self, path: Path, records: Records) -> None:
        self.records = records
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    @classmethod
    def open(cls, partial: Path, signature: dict[str, Any], owned: bool = False) -> Journal:
        """The journal of ``partial``, created with the folder when there is none.

        A folder without a journal was not left by an interrupted run: it is refused, unless
        ``owned`` says that nothing but this machinery writes there (the demo suite's hidden
        partial folders), in which case it is removed.
        """
        path = partial / JOURNAL_NAME
        if partial.exists():
            if not path.is_file():
                if not owned:
                    raise ValueError(
                        f"{partial} exists but holds no {JOURNAL_NAME}, so it was not left by an "
                        "interrupted `atst-hear prepare`; remove it or choose another OUT_DIR"
                    )
                shutil.rmtree(partial)
            else:
                header, records = _read_journal(path)
                if header == signature:
                    return cls(path, records)
                logger.warning(
                    "%s: left by a run with other settings (%s); starting again", partial, header
                )
                shutil.rmtree(partial)
        partial.mkdir(parents=True)
        path.write_text(json.dumps({"signature": signature}) + "\n", encoding="utf-8")
        return cls(path, {})

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["split"], record["file"]] = record
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def verified(self, clips: Sequence[Clip], partial: Path, progress: bool = True) -> Records:
        """Records whose output still matches its sha256 and whose source is unchanged."""
        candidates = [clip for clip in clips if clip.key in self.records]
        if not candidates:
            return {}
        reused = {}
        for clip in tqdm(
            candidates,
            desc="verifying clips of the previous run",
            unit="clip",
            disable=None if progress else True,
        ):
            record = self.records[clip.key]
            target = clip_path(partial, clip)
            if (
                record["source"] == str(clip.source)
                and record["source_stat"] == source_stat(clip.source)
                and target.is_file()
                and sha256_file(target) == record["sha256"]
            ):
                reused[clip.key] = record
        return reused

    def close(self) -> None:
        self._handle.close()


def _read_journal(path: Path) -> tuple[Any, Records]:
    header = None
    records: Records = {}
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash: that clip is simply converted again
            if not isinstance(entry, dict):
                continue
            if n == 0:
                header = entry.get("signature")
            elif set(entry) >= RECORD_KEYS:
                records[entry["split"], entry["file"]] = entry
    return header, records
