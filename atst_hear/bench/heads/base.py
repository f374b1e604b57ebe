"""What every head shares: the scikit-learn estimator shape, and the checks of its inputs.

A head is a :class:`sklearn.base.BaseEstimator`: its hyper-parameters are the arguments of
``__init__``, stored as given (so ``get_params``, ``set_params`` and ``sklearn.base.clone`` work)
and checked there and again by ``fit``; ``fit`` returns the estimator, and what it learns lives in
attributes ending in ``_``. Before ``fit``, ``predict_proba`` raises
:class:`sklearn.exceptions.NotFittedError`.

Targets are indicator matrices ``y [n_samples, n_classes]`` (multi-hot, or one-hot when
``multilabel`` is false) rather than label vectors, so that every class of the task keeps its
column even when a training split lacks it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ...options import OptionError, require_bool, require_int, require_number
from ...tasks.scores import MAP_ALL_CLASSES, clip_score, score_spec
from .batched import as_tensor, head_probabilities

# ``(probabilities [N, C], logits [N, C]) -> (validation value, anything kept with the best
# check)``: what a head selects its checkpoint (and grid point) on
Scorer = Callable[[np.ndarray, torch.Tensor], tuple[float, Any]]


def _where(owner: object, name: str) -> str:
    return f"{type(owner).__name__}: {name}"


def check_int(owner: object, name: str, value: Any, minimum: int = 1) -> None:
    require_int(value, _where(owner, name), minimum=minimum)


def check_float(
    owner: object,
    name: str,
    value: Any,
    low: float = 0.0,
    high: float | None = None,
    low_inclusive: bool = False,
) -> None:
    """A real number above ``low`` (or equal to it, with ``low_inclusive``) and below ``high``."""
    bounds = {"at_least": low} if low_inclusive else {"above": low}
    require_number(value, _where(owner, name), below=high, **bounds)


def check_bool(owner: object, name: str, value: Any) -> None:
    require_bool(value, _where(owner, name))


def check_sequence(owner: object, name: str, value: Any) -> Sequence:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise OptionError(f"{_where(owner, name)} must be a non-empty list, got {value!r}")
    return value


def keep_params(estimator: BaseEstimator, arguments: dict[str, Any]) -> None:
    """Store ``__init__``'s ``arguments`` (its ``locals()``) as attributes of the same names,
    unchanged (scikit-learn's convention), then check them with ``estimator._check_params``."""
    for name in inspect.signature(type(estimator).__init__).parameters:
        if name != "self":
            setattr(estimator, name, arguments[name])
    estimator._check_params()


def seed_labels(random_state: Any) -> tuple:
    """``random_state`` as the labels :func:`.batched.seeded_generator` hashes: a tuple as it
    is, anything else as a 1-tuple."""
    return random_state if isinstance(random_state, tuple) else (random_state,)


def check_features(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D array of finite numbers (its dtype kept: numbers must not move)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array [n_samples, n_features], got shape {X.shape}"
        )
    # a NaN or infinity anywhere makes the (float64, overflow-free) sum non-finite, without a
    # boolean copy of a large frame array
    if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X.sum(dtype=np.float64)):
        raise ValueError(f"{name} must hold finite numbers")
    return X


def check_targets(X: np.ndarray, y: Any, multilabel: bool | None, name: str = "y") -> np.ndarray:
    """``y`` as a 0/1 indicator matrix with one row per row of ``X``; one-hot rows when
    ``multilabel`` is false (None: any number of positives)."""
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D indicator array [n_samples, n_classes], got shape {y.shape}"
        )
    if len(y) != len(X):
        raise ValueError(f"{name} has {len(y)} rows but its features have {len(X)}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 class indicators")
    if multilabel is False:
        positives = y.sum(axis=1)
        if not (positives == 1).all():
            row = int(np.flatnonzero(positives != 1)[0])
            raise ValueError(
                f"{name}: multilabel=False needs exactly one class per row; row {row} has "
                f"{int(positives[row])}"
            )
    return y


def check_fit_arrays(
    X: Any, y: Any, X_valid: Any, y_valid: Any, multilabel: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation arrays checked against each other (heads select on the
    validation set, so it is required)."""
    if X_valid is None or y_valid is None:
        raise ValueError(
            "X_valid and y_valid are required: the head selects its checkpoint on them"
        )
    X = check_features(X)
    y = check_targets(X, y, multilabel)
    X_valid = check_features(X_valid, "X_valid")
    y_valid = check_targets(X_valid, y_valid, multilabel, "y_valid")
    if X_valid.shape[1] != X.shape[1]:
        raise ValueError(f"X_valid has {X_valid.shape[1]} features, X has {X.shape[1]}")
    if y_valid.shape[1] != y.shape[1]:
        raise ValueError(f"y_valid has {y_valid.shape[1]} classes, y has {y.shape[1]}")
    return X, y, X_valid, y_valid


def main_value(value: float | dict[str, float]) -> float:
    """A score's main value (the first sub-score of a tuple score)."""
    return float(next(iter(value.values()))) if isinstance(value, dict) else float(value)


def check_clip_score(owner: object, name: Any) -> bool:
    """Whether a greater clip score ``name`` is better; an error if it is no clip score."""
    try:
        spec = score_spec(name)
    except (ValueError, TypeError) as err:
        raise OptionError(f"{type(owner).__name__}: scoring: {err}") from None
    if spec.event:
        raise OptionError(
            f"{_where(owner, 'scoring')} must be a clip-level score (heads score clip arrays), "
            f"got {name!r}"
        )
    return spec.maximize


def clip_scorer(
    owner: object, name: str, y_valid: np.ndarray, map_convention: str = MAP_ALL_CLASSES
) -> tuple[Scorer, bool]:
    """``(scorer, greater_is_better)`` for a clip-level score on the validation targets."""
    maximize = check_clip_score(owner, name)

    def score(probs: np.ndarray, logits: torch.Tensor) -> tuple[float, Any]:
        return main_value(clip_score(name, probs, y_valid, map_convention)), None

    return score, maximize


class TorchHead(BaseEstimator):
    """A head trained with :mod:`.batched`: ``head_`` holds the selected weights."""

    multilabel: bool
    device: str | torch.device

    def _inputs(self, X: Any) -> np.ndarray:
        """What the network reads (heads that standardise their input override this)."""
        check_is_fitted(self, "head_")
        X = check_features(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, the head was fitted on {self.n_features_in_}"
            )
        return X

    def _logits(self, X: Any) -> torch.Tensor:
        x = as_tensor(self._inputs(X), self.device)  # checks that the head is fitted
        return self.head_.predict_logits(x)[0]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``[n_samples, n_classes]``."""
        return self._logits(X).cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax (rows sum to 1) or, with ``multilabel``, per-class sigmoid probabilities."""
        return head_probabilities(self._logits(X), self.multilabel).cpu().numpy()
