"""Downstream protocols: each a named, versioned recipe (``benchmark-protocols.md`` §1).

======================  ============================================================
``paper-linear``        the ATST paper's linear evaluation (frozen, BN + Linear, SGD)
``evar-linear``         EVAR's linear evaluation (frozen, standardised, Linear, Adam)
``hear-mlp``            hear-eval-kit's MLP grid and scoring (HEAR leaderboard)
``knn``                 cosine k-NN on standardised embeddings (nothing trained)
``sed``                 the paper's DCASE frame head; PSDS with psds_eval and sed_scores_eval
``finetune``            the paper's fine-tuning of the whole encoder
======================  ============================================================
"""

from __future__ import annotations

from .base import Protocol
from .evar_linear import EvarLinear
from .finetune import Finetune
from .hear_mlp import HearMLP
from .knn import KNN
from .paper_linear import PaperLinear
from .sed import SED

PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (PaperLinear(), EvarLinear(), HearMLP(), KNN(), SED(), Finetune())
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}") from None
