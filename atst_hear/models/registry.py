"""Named official checkpoints: where to download them, how to verify them, what they contain.

``frame.load_model("atst-frame-base")`` resolves the name here: the file is downloaded once into
the torch hub cache (``torch.hub.get_dir()/checkpoints/atst-hear/``), checked against its
sha256, and read from the cache from then on without touching the network.

The sha256 of the released files is recorded where it is known. Where it is ``None`` the file
is *not verified* against a published hash: the first download's hash is stored beside it
(``<file>.sha256``) and every later load is checked against that, so a file that changes in the
cache is still caught. Pass ``checkpoint_sha256=`` (``--checkpoint-sha256``) to verify a
download against a hash you trust.

Downloads are atomic: bytes go to a temporary sibling that is renamed into place only when the
transfer is complete and the hash matches, so an interrupted or corrupt download never leaves a
file that a later run would take for the checkpoint.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..fileio import atomic_output, sha256_file
from .checkpoints import CheckpointError
from .encoder import ATSTConfig

log = logging.getLogger(__name__)

CACHE_SUBDIR = ("checkpoints", "atst-hear")
_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DownloadError(CheckpointError):
    """A registered checkpoint could not be downloaded or failed verification."""


@dataclass(frozen=True)
class RegisteredCheckpoint:
    """One released checkpoint: name, download locations, expected hash, config and licence."""

    name: str
    config: ATSTConfig  # the architecture the file must hold (flavour, width, depth, heads)
    file_name: str
    urls: tuple[str, ...]
    sha256: str | None  # None: no published hash, the file is not verified
    licence: str
    source: str  # where the download location is documented

    def check_config(self, config: ATSTConfig) -> None:
        """Refuse a file whose encoder is not the registered architecture."""
        expected = self.config
        found = (config.flavour, config.width, config.depth, config.heads)
        wanted = (expected.flavour, expected.width, expected.depth, expected.heads)
        if found != wanted:
            raise CheckpointError(
                f"{self.name}: the downloaded file holds an ATST-{config.flavour} encoder of "
                f"width {config.width}, depth {config.depth}, {config.heads} heads; expected "
                f"ATST-{expected.flavour} of width {expected.width}, depth {expected.depth}, "
                f"{expected.heads} heads"
            )


def _drive(file_id: str) -> str:
    # the usercontent endpoint with confirm=t skips Drive's "cannot scan for viruses" page,
    # which the sharing link shows instead of the file for anything over ~100 MB
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


_OSS = "https://checkpointstorage.oss-cn-beijing.aliyuncs.com/atst"
_FRAME_README = "audiossl: audiossl/methods/atstframe/README.md"
_CLIP_README = "audiossl: audiossl/methods/atst/README.md"
_CC_BY = "CC-BY-4.0"

REGISTRY: dict[str, RegisteredCheckpoint] = {
    entry.name: entry
    for entry in (
        RegisteredCheckpoint(
            "atst-frame-small",
            ATSTConfig.preset("frame", "small"),
            "atstframe_small.ckpt",
            (_drive("1xZoOTuxV415icYONYbeFQzgrmJQf4a4B"),),
            None,
            _CC_BY,
            _FRAME_README,
        ),
        RegisteredCheckpoint(
            "atst-frame-base",
            ATSTConfig.preset("frame", "base"),
            "atstframe_base.ckpt",
            (_drive("1bGJSZWlAIIJ6GL5Id5dW0PTB72DL-QDQ"),),
            None,
            _CC_BY,
            _FRAME_README,
        ),
        RegisteredCheckpoint(
            "atst-frame-base-as2m",
            ATSTConfig.preset("frame", "base"),
            "atst_as2M.ckpt",
            (_drive("1_xb0_n3UNbUG_pH1vLHTviLfsaSfCzxz"),),
            None,
            _CC_BY,
            "ATST-SED: README.md (ATST-Frame fine-tuned on AudioSet-2M)",
        ),
        RegisteredCheckpoint(
            "atst-clip-small",
            ATSTConfig.preset("clip", "small"),
            "small.ckpt",
            (f"{_OSS}/small.ckpt",),
            None,
            _CC_BY,
            _CLIP_README,
        ),
        RegisteredCheckpoint(
            "atst-clip-base",
            ATSTConfig.preset("clip", "base"),
            "base.ckpt",
            (f"{_OSS}/base.ckpt",),
            None,
            _CC_BY,
            _CLIP_README,
        ),
    )
}

_SHA256 = re.compile(r"[0-9a-f]{64}")


def lookup(name_or_path: str | os.PathLike | None) -> RegisteredCheckpoint | None:
    """The registry entry for a checkpoint name; ``None`` for anything else (e.g. a path).

    An existing file of the same name wins over the registry, so a local ``atst-frame-base``
    file is never shadowed.
    """
    if name_or_path is None or not isinstance(name_or_path, str):
        return None
    if name_or_path in REGISTRY and not Path(name_or_path).exists():
        return REGISTRY[name_or_path]
    return None


def cache_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()).joinpath(*CACHE_SUBDIR)


def _normalised_hash(sha256: str | None, what: str) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise ValueError(f"{what} must be 64 hexadecimal digits, got {sha256!r}")
    return sha256.lower()


def fetch(
    name: str,
    *,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """The local path of registered checkpoint ``name``, downloading and verifying it once.

    ``sha256`` overrides the registry's hash (for files whose hash the registry does not know).
    Raises :class:`DownloadError` when no URL delivers a complete file with the expected hash,
    and when a cached file no longer matches; nothing unverified is left in the cache.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown checkpoint {name!r}; registered: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    expected = _normalised_hash(sha256, "checkpoint_sha256") or entry.sha256
    target = cache_dir() / entry.file_name
    record = target.with_name(target.name + ".sha256")
    if target.is_file():
        known = expected or (record.read_text().strip() if record.is_file() else None)
        actual = sha256_file(target)
        if known is None:  # placed there by hand: from now on, this is the file
            log.warning("%s: %s is not verified (sha256 %s recorded)", name, target, actual)
            _record(record, actual)
        elif actual != known:
            raise DownloadError(
                f"{target}: cached {name} has sha256 {actual}, expected {known}; delete the "
                "file to download it again"
            )
        return target
    errors = []
    for url in entry.urls:
        try:
            _download(url, target, expected, progress=progress)
        except DownloadError as err:
            errors.append(str(err))
            continue
        actual = sha256_file(target)
        if expected is None:
            log.warning(
                "%s: no published sha256, the download is not verified (sha256 %s recorded in "
                "%s; pass checkpoint_sha256= to check it against a trusted hash)",
                name,
                actual,
                record,
            )
        _record(record, actual)
        return target
    raise DownloadError(
        f"could not download {name} ({entry.file_name}): {'; '.join(errors)}. Download it by "
        f"hand ({entry.source}) and pass its path, or place it at {target}"
    )


def _record(record: Path, sha256: str) -> None:
    with atomic_output(record) as tmp:
        tmp.write_text(sha256 + "\n")


def _download(url: str, target: Path, expected: str | None, *, progress: bool) -> None:
    """Copy ``url`` to ``target`` atomically; refuse a short transfer or a hash mismatch."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    received = 0
    head = b""
    try:
        with (
            urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response,
            atomic_output(target) as tmp,
        ):
            declared = response.headers.get("Content-Length")
            declared = int(declared) if declared and declared.isdigit() else None
            with (
                open(tmp, "wb") as handle,
                tqdm(
                    total=declared,
                    unit="B",
                    unit_scale=True,
                    desc=target.name,
                    disable=not progress,
                ) as bar,
            ):
                while block := response.read(_CHUNK):
                    if not head:
                        head = block[:64].lstrip().lower()
                    handle.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            if declared is not None and received != declared:
                raise DownloadError(f"{url}: incomplete download ({received} of {declared} bytes)")
            if head.startswith((b"<!doctype", b"<html")):
                # Drive answers a quota or permission problem with a web page, status 200
                raise DownloadError(f"{url}: the server sent a web page instead of the file")
            if expected is not None and digest.hexdigest() != expected:
                raise DownloadError(
                    f"{url}: sha256 {digest.hexdigest()} does not match the expected {expected}"
                )
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        if isinstance(err, DownloadError):
            raise
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{url}: {type(err).__name__}: {reason}") from err


def resolve(
    name_or_path: str | os.PathLike, *, sha256: str | None = None
) -> tuple[Path, RegisteredCheckpoint | None]:
    """A checkpoint argument as a local file: a registered name is fetched (and verified), a
    path is returned as it is, checked against ``sha256`` when one is given."""
    entry = lookup(name_or_path)
    if entry is not None:
        return fetch(entry.name, sha256=sha256), entry
    path = Path(name_or_path)
    expected = _normalised_hash(sha256, "checkpoint_sha256")
    if expected is not None and path.is_file():
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(f"{path}: sha256 {actual} does not match the expected {expected}")
    return path, None
