"""Heads trained on frozen embeddings, as scikit-learn-style estimators.

Each benchmark protocol that trains on embedding arrays builds one of these from its parameters,
fits it on the training split (selecting on the validation split) and scores its
``predict_proba`` on the test split:

* :class:`LinearProbeClassifier`: ``paper-linear``, BN + Linear, SGD, a learning-rate grid;
* :class:`EvarLinearClassifier`: ``evar-linear``, standardised inputs, Linear, Adam;
* :class:`HearMLPClassifier`: ``hear-mlp``, hear-eval-kit's MLP grid, trained as one batch;
* :class:`KNNClassifier`: ``knn``, cosine k-NN, nothing trained.

:mod:`.batched` is the engine the trained heads share (a grid of heads as one batched
computation); :mod:`.reference_mlp` is its one-model-at-a-time yardstick.
"""

from __future__ import annotations

from .knn import KNNClassifier
from .linear import EvarLinearClassifier, LinearProbeClassifier
from .mlp import HearMLPClassifier

__all__ = [
    "EvarLinearClassifier",
    "HearMLPClassifier",
    "KNNClassifier",
    "LinearProbeClassifier",
]
