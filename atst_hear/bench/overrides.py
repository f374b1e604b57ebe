"""``--set key=value`` overrides of a suite, applied to its YAML before it is checked.

A key is a dotted path into the suite document. Values are YAML (``seeds=[0]``,
``params.epochs=5``). Inside ``protocols`` an entry is picked by index (``protocols.0``), by
protocol name (every entry of that protocol: ``protocols.paper-linear.params.epochs=5``) or
with ``*`` (every entry). ``models.NAME`` and ``tasks.NAME`` must name an existing entry, so a
typo is an error rather than a new, incomplete model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ..yamlio import parse_key_values


class OverrideError(ValueError):
    """An override that is malformed or points nowhere."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: YAML value}``, in order."""
    return parse_key_values(items, "--set", OverrideError)


def apply_overrides(document: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a suite document with every override applied."""
    result = copy.deepcopy(dict(document))
    for key, value in overrides.items():
        path = key.split(".")
        if any(not part for part in path):
            raise OverrideError(f"--set {key}: empty part in the dotted key")
        _assign(result, path, value, key)
    return result


def _assign(node: Any, path: list[str], value: Any, key: str) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        targets = _list_targets(node, head, key)
        if not rest:
            raise OverrideError(f"--set {key}: name a field of the entry, not the entry itself")
        for target in targets:
            _assign(target, rest, value, key)
        return
    if not isinstance(node, dict):
        raise OverrideError(
            f"--set {key}: {head!r} is inside a {type(node).__name__}, not a mapping"
        )
    if head in ("models", "tasks") and node.get(head) is not None and len(rest) >= 1:
        known = node[head]
        if rest[0] not in known:
            raise OverrideError(
                f"--set {key}: no {head[:-1]} named {rest[0]!r}; the suite has {sorted(known)}"
            )
    if not rest:
        node[head] = value
        return
    if node.get(head) is None:
        node[head] = {}
    _assign(node[head], rest, value, key)


def _list_targets(entries: list, selector: str, key: str) -> list:
    if selector == "*":
        return list(entries)
    if selector.isdigit():
        index = int(selector)
        if index >= len(entries):
            raise OverrideError(f"--set {key}: index {index} but there are {len(entries)} entries")
        return [entries[index]]
    if not any(isinstance(e, dict) and "protocol" in e for e in entries):
        raise OverrideError(f"--set {key}: {selector!r} is not an index of a list")
    matches = [e for e in entries if isinstance(e, dict) and e.get("protocol") == selector]
    if not matches:
        names = sorted({str(e.get("protocol")) for e in entries if isinstance(e, dict)})
        raise OverrideError(
            f"--set {key}: no entry for protocol {selector!r}; the suite runs {names} "
            "(or use an index or *)"
        )
    return matches
