"""YAML as researchers write it: suites, recipes and ``--set KEY=VALUE`` overrides.

PyYAML implements YAML 1.1, where a float needs a dot: ``4e-4`` and ``1e3`` load as *strings*,
and a learning rate written that way would fail far from where it was typed. The loader here
adds YAML 1.2's float syntax; everything else is ``yaml.safe_load``. The dumper writes what the
loader reads back unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


# the dumper learns the same float syntax, so that it quotes a string such as "1e3" that the
# loader would otherwise read back as a number
for _yaml_class in (_Loader, _Dumper):
    _yaml_class.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 floats (``4e-4`` is 0.0004); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def dump_yaml(data: Any) -> str:
    """YAML text that :func:`load_yaml` reads back to ``data`` (keys in their given order)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


def parse_key_values(
    items: Sequence[str], what: str = "--set", error: type[Exception] = ValueError
) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: YAML value}`` in order; ``error`` names the bad item."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise error(f"{what} expects KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = load_yaml(text)
        except yaml.YAMLError as err:
            raise error(f"{what} {item!r}: the value is not valid YAML ({err})") from None
    return values
