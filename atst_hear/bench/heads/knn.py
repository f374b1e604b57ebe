"""Cosine k-nearest neighbours on standardised embeddings: nothing trained, nothing selected."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .base import check_features, check_int, check_targets, keep_params


class KNNClassifier(BaseEstimator):
    """Class scores of a clip: the cosine-similarity-weighted mean of the (multi-hot) labels of
    its ``n_neighbors`` nearest training clips, similarities clipped at 1e-6.

    Embeddings are standardised with the training statistics (std + 1e-8) and scaled to unit
    length. Not scikit-learn's ``KNeighborsClassifier``: that weights neighbours by inverse
    distance and votes on label vectors, this averages indicator rows by similarity, so a
    multi-label task gets per-class scores. Fitted: ``mean_``, ``scale_``, ``neighbours_`` (the
    unit training vectors), ``targets_``.
    """

    def __init__(self, n_neighbors: int = 10, chunk_size: int = 1024):
        keep_params(self, locals())

    def _check_params(self) -> None:
        check_int(self, "n_neighbors", self.n_neighbors)
        check_int(self, "chunk_size", self.chunk_size)

    def fit(self, X, y) -> KNNClassifier:
        self._check_params()
        X = check_features(X)
        self.targets_ = check_targets(X, y, multilabel=None)
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-8
        self.neighbours_ = self._unit(X)
        return self

    def _unit(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.mean_) / self.scale_
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[n_samples, n_classes]`` scores; rows sum to 1 where the targets are one-hot."""
        check_is_fitted(self, "neighbours_")
        X = check_features(X)
        if X.shape[1] != self.neighbours_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, the neighbours have {self.neighbours_.shape[1]}"
            )
        k = min(int(self.n_neighbors), len(self.neighbours_))
        out = np.zeros((len(X), self.targets_.shape[1]))
        for start in range(0, len(X), self.chunk_size):
            similarity = self._unit(X[start : start + self.chunk_size]) @ self.neighbours_.T
            nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
            weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 1e-6, None)
            out[start : start + self.chunk_size] = np.einsum(
                "nk,nkc->nc", weights, self.targets_[nearest]
            ) / weights.sum(axis=1, keepdims=True)
        return out
