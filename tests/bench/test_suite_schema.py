"""Suite files and protocol parameters through their schemas (``atst_hear/schema.py``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from atst_hear.bench.protocols import PROTOCOLS, get_protocol
from atst_hear.bench.suite import SuiteError, load_suite
from atst_hear.resources import shipped
from atst_hear.yamlio import load_yaml

SHIPPED_SUITES = ("demo", "hear", "layers", "paper", "pretrain-demo-probe")
# sha256 of every (protocol, task, resolved params) of a shipped suite, as JSON in the order the
# runner hashes into unit keys. Recorded before the schemas replaced the hand-written checks; a
# change here means every unit of that suite is recomputed: a protocol default or the suite
# itself moved, which needs a protocol `version` bump or a deliberate suite edit.
RESOLVED_PARAMS_SHA256 = {
    "demo": "d8d916d0a8d2b5541bd8f18cbc084344c3140ba8bb665570a7742f590febef54",
    "hear": "af6a6a08f0149e4123d17c74bc613249e1ecd52d789e0455128d410c24104616",
    "layers": "cd5515b66b7fa6ae5e55b523a49d29fb43610894fdc3dfb37ff5e9d376f46876",
    "paper": "9c7e07d8320ae48494b0b000ba99da81b4b0ae4526e38ab02a0650c823959c29",
    "pretrain-demo-probe": "d0b29b97e13d7c92e77ca754208d48c40b9ece5563177932fc204d66f1448f1d",
}


def _resolved_rows(suite) -> list:
    return [
        [entry.protocol, task, get_protocol(entry.protocol).resolve_params(
            {**entry.params, **entry.task_params.get(task, {})}
        )]
        for entry in suite.protocols
        for task in entry.tasks
    ]  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED_SUITES)
def test_shipped_suites_resolve_to_the_values_their_yaml_states(name):
    suite = load_suite(name)
    raw = load_yaml(shipped("suites", name).read_text())
    assert suite.name == raw["name"] and suite.seeds == raw.get("seeds", [0, 1, 2])
    assert list(suite.tasks) == list(raw["tasks"])
    for entry, raw_entry in zip(suite.protocols, raw["protocols"], strict=True):
        protocol = get_protocol(entry.protocol)
        assert entry.params == (raw_entry.get("params") or {})
        for task in entry.tasks:
            stated = {
                **protocol.defaults,
                **(raw_entry.get("params") or {}),
                **(raw_entry.get("task_params") or {}).get(task, {}),
            }
            resolved = protocol.resolve_params({**entry.params, **entry.task_params.get(task, {})})
            # same keys in declaration order, same values and types (1 and 1.0 hash apart)
            assert json.dumps(resolved) == json.dumps({k: stated[k] for k in protocol.defaults})
    text = json.dumps(_resolved_rows(suite), separators=(",", ":"))
    assert hashlib.sha256(text.encode()).hexdigest() == RESOLVED_PARAMS_SHA256[name]


def _write(tmp_path: Path, **changes) -> Path:
    document = {
        "name": "mine",
        "seeds": [0],
        "models": {"logmel": {"module": "atst_hear.bench.baselines"}},
        "tasks": {"scene": {"path": "scene"}, "other": None},
        "protocols": [{"protocol": "paper-linear"}],
        **changes,
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _linear(**entry) -> list[dict]:
    return [{"protocol": "paper-linear", **entry}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"protocols": _linear(params={"epochs": "ten"})},
            r"mine\.yaml: protocols\[0\]: protocol 'paper-linear': epochs must be an integer, "
            r"got 'ten' \(str\)",
        ),
        (
            {"protocols": _linear(params={"epochs": True})},
            r"epochs must be an integer, got True \(bool\)",
        ),
        (
            {"protocols": _linear(params={"lr_grid": 0.1})},
            r"'paper-linear': lr_grid must be a list, got 0\.1 \(float\)",
        ),
        (
            {"protocols": _linear(params={"lr_grid": [0.1, "0.001"]})},
            r"lr_grid\[1\] must be a number, got '0\.001' \(str\)",
        ),
        (
            {"protocols": _linear(params={"epoch": 5})},
            r"protocols\[0\]: protocol 'paper-linear': unknown parameters \['epoch'\]; known: "
            r"\['batch_size', 'crop_seconds', 'epochs'",
        ),
        (
            {"protocols": _linear(task_params={"scene": {"momentum": "high"}})},
            r"protocols\[0\]: task_params\.scene: protocol 'paper-linear': momentum must be a "
            r"number, got 'high'",
        ),
        (
            {"protocols": [{"protocol": "sed", "params": {"finetune_mode": "false"}}]},
            r"'sed': finetune_mode must be True or False \(a bool\), got 'false' \(str\)",
        ),
        (
            {"protocols": [{"tasks": ["scene"]}]},
            r"mine\.yaml: protocols\[0\]: 'protocol' is required",
        ),
        (
            {"protocols": _linear(params=[1])},
            r"protocols\[0\]\.params must be a mapping, got \[1\]",
        ),
        (
            {"protocols": _linear(seeds=[0, True])},
            r"protocols\[0\]\.seeds must be a non-empty list",
        ),
        (
            {"protocols": _linear(folds="fold1")},
            r"protocols\[0\]\.folds must be a list, got 'fold1'",
        ),
        ({"protocols": []}, r"protocols must hold at least 1 item, got \[\]"),
        ({"seeds": "zero"}, r"seeds must be a non-empty list of integers, got 'zero' \(str\)"),
        ({"seeds": []}, r"seeds must be a non-empty list of integers, got \[\]"),
        ({"model": {}}, r"mine\.yaml: unknown keys \['model'\]; known: \['description', "),
        ({"models": {"m": {"modul": "x"}}}, r"models\.m: unknown keys \['modul'\]; known: "),
        ({"models": {"m": {"options": {}}}}, r"models\.m: 'module' is required"),
        ({"models": {"m": "atst_hear.hear.frame"}}, r"models\.m must be a mapping, got 'atst_"),
        (
            {"models": {"m": {"module": "atst_hear.hear.frame", "sweep": {"a": [1], "b": [2]}}}},
            r"models\.m\.sweep: varies exactly one option",
        ),
        ({"tasks": {"scene": {"path": 3}}}, r"tasks\.scene\.path must be a string, got 3 \(int\)"),
        ({"tasks_dir": ["a"]}, r"tasks_dir must be a string, got \['a'\] \(list\)"),
    ],
)
def test_bad_suites_name_the_file_the_field_and_what_was_expected(tmp_path, changes, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(_write(tmp_path, **changes))


def test_a_suite_that_is_no_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- protocol: knn\n")
    with pytest.raises(SuiteError, match=r"list\.yaml: expected a mapping, got \[\{"):
        load_suite(path)


def test_suite_numbers_follow_yaml_1_2_and_integers_stand_for_floats(tmp_path):
    path = tmp_path / "numbers.yaml"
    # PyYAML alone reads 3e-2 as a string; an integer momentum is a number
    path.write_text(
        "seeds: 3\n"
        "description:\n"
        "models: {logmel: {module: atst_hear.bench.baselines, options:}}\n"
        "tasks: {scene: {path: scene}, other:}\n"
        "protocols:\n"
        "  - {protocol: paper-linear, params: {momentum: 1, lr_grid: [3e-2]}}\n"
    )
    suite = load_suite(path)
    assert (suite.name, suite.seeds, suite.description) == ("numbers", [3], "")
    assert suite.models["logmel"].spec.options == {}
    assert suite.tasks["other"].path == Path("tasks") / "other"
    (entry,) = suite.protocols
    assert entry.params == {"momentum": 1, "lr_grid": [0.03]} and entry.seeds == [3]
    resolved = get_protocol("paper-linear").resolve_params(entry.params)
    assert resolved["lr_grid"] == [0.03] and type(resolved["momentum"]) is float


# --- protocol parameters ------------------------------------------------------------------
def _wrong_values(default) -> list:
    """Values of the wrong type for a parameter with this default."""
    if isinstance(default, bool):
        return ["false", 0, None]
    if isinstance(default, int):
        return [True, 2.0, "3", None]
    if isinstance(default, float):
        return [True, "1e-3", [0.1]]
    if isinstance(default, str):
        return [1, True, ["default"]]
    if isinstance(default, list):
        return [0.1, "0.1", ["x"]]
    if isinstance(default, dict):
        return [[], "max_epochs"]
    return []


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_protocol_parameter_refuses_a_value_of_the_wrong_type(name):
    protocol = get_protocol(name)
    assert list(protocol.defaults) == list(protocol.Params.model_fields)
    for key, default in protocol.defaults.items():
        assert default is None or _wrong_values(default), f"{name}.{key}: no wrong values listed"
        for value in _wrong_values(default):
            with pytest.raises(ValueError, match=rf"protocol {name!r}: {key}\b.* must be .*got"):
                protocol.resolve_params({key: value})


def test_resolved_params_are_fresh_plain_dicts_in_declaration_order():
    protocol = get_protocol("hear-mlp")
    first = protocol.resolve_params({"grid_overrides": {"max_epochs": [30]}})
    assert type(first) is dict and list(first) == ["grid", "grid_points", "grid_overrides"]
    first["grid_overrides"]["max_epochs"].append(60)
    assert protocol.resolve_params({})["grid_overrides"] == {}
    protocol.defaults["grid"] = "changed"
    assert protocol.defaults["grid"] == "default"
    # an integer where a number is declared becomes a float; None stays where it is allowed
    finetune = get_protocol("finetune").resolve_params({"lr": 1, "mixup_alpha": None})
    assert type(finetune["lr"]) is float and finetune["mixup_alpha"] is None
    assert (
        get_protocol("paper-linear").resolve_params({"crop_seconds": None})["crop_seconds"] is None
    )
