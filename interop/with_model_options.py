"""A HEAR module that forwards to another one, loading it with fixed ``load_model`` options.

hear-validator calls ``load_model(path)`` and has no way to pass options, unlike heareval's
``--model-options``. To validate, say, ATST-Frame in its official embedding mode::

    HEAR_MODULE=atst_hear.hear.frame HEAR_MODEL_OPTIONS='{"compat": "official"}' \\
        PYTHONPATH=interop hear-validator with_model_options -m frame.ckpt

The embedding functions are the target module's own, so the validator checks exactly them.
"""

from __future__ import annotations

import importlib
import json
import os

MODULE_VARIABLE = "HEAR_MODULE"
OPTIONS_VARIABLE = "HEAR_MODEL_OPTIONS"


def _target_module():
    name = os.environ.get(MODULE_VARIABLE)
    if not name:
        raise RuntimeError(
            f"with_model_options: set ${MODULE_VARIABLE} to the HEAR module to load, "
            "e.g. atst_hear.hear.frame"
        )
    return importlib.import_module(name)


def _options() -> dict:
    text = os.environ.get(OPTIONS_VARIABLE, "{}")
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"${OPTIONS_VARIABLE} is not valid JSON ({err}): {text!r}") from None
    if not isinstance(options, dict):
        raise ValueError(f"${OPTIONS_VARIABLE} must be a JSON object of options, got {text!r}")
    return options


_target = _target_module()
_load_options = _options()
get_scene_embeddings = _target.get_scene_embeddings
get_timestamp_embeddings = _target.get_timestamp_embeddings


def load_model(model_file_path: str | None = None):
    """The target's ``load_model`` with the options of ``$HEAR_MODEL_OPTIONS``."""
    path_argument = (model_file_path,) if model_file_path else ()
    return _target.load_model(*path_argument, **_load_options)
