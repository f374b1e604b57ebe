"""hear-eval-kit's predictor the way hear-eval-kit runs it: one ``torch.nn`` model at a time.

This is the yardstick for :mod:`.batched`: the same heads (same initialisation and dropout
draws, from the same per-head generators) built from ``torch.nn`` layers, optimised with
``torch.optim``, fed by a ``DataLoader`` and checkpointed to a file after every validation check
like Lightning's ``ModelCheckpoint``. The tests check that both give the same models; the
protocol benchmark (``benchmarks/bench_protocols.py``) times both on the same grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .batched import HeadConfig, HeadRun, dropout_mask, head_losses, head_probabilities, init_linear


class GeneratorDropout(torch.nn.Module):
    """``nn.Dropout`` drawing its masks from a given generator."""

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * dropout_mask(x.shape, self.p, self.generator).to(x.device)


def reference_head(
    config: HeadConfig, initialization: str, generator: torch.Generator
) -> torch.nn.Sequential:
    """One head as ``torch.nn`` layers, initialised exactly like a :class:`BatchedHeads` head."""
    layers: list[torch.nn.Module] = []
    if config.input_norm:
        layers.append(torch.nn.BatchNorm1d(config.in_dim, affine=False))
    dims = [config.in_dim] + [config.hidden_dim] * config.hidden_layers + [config.out_dim]
    for layer in range(len(dims) - 1):
        linear = torch.nn.Linear(dims[layer], dims[layer + 1])
        gain = torch.nn.init.calculate_gain("linear" if layer == 0 else "relu")
        weight, bias = init_linear(dims[layer + 1], dims[layer], initialization, gain, generator)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        layers.append(linear)
        if layer < config.hidden_layers:
            layers += [
                torch.nn.BatchNorm1d(config.hidden_dim),
                GeneratorDropout(config.dropout, generator),
                torch.nn.ReLU(),
            ]
    return torch.nn.Sequential(*layers)


def train_reference(
    run: HeadRun,
    config: HeadConfig,
    generator: torch.Generator,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    multilabel: bool,
    evaluate: Callable[[np.ndarray, torch.Tensor], tuple[float, Any]],
    checkpoint_dir: str | os.PathLike,
    batch_size: int,
    check_every: int,
) -> torch.nn.Sequential:
    """Train one head with Adam, checkpoint files and early stopping; return its best weights.

    ``run`` (a :class:`HeadRun`) receives the selection state, as in the batched trainer.
    """
    model = reference_head(config, run.conf["initialization"], generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=run.conf["lr"])
    loader = DataLoader(
        TensorDataset(torch.as_tensor(x_train), torch.as_tensor(y_train)),
        batch_size=batch_size,
        shuffle=False,  # hear-eval-kit never reshuffles its training rows
    )
    valid_x = torch.as_tensor(x_valid)
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    best_path = Path(checkpoint_dir) / f"head-{run.index}-best.ckpt"
    for epoch in range(run.max_epochs):
        model.train()
        for xb, yb in loader:
            loss = head_losses(model(xb)[None], yb, multilabel)[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        torch.save(model.state_dict(), Path(checkpoint_dir) / f"head-{run.index}-last.ckpt")
        if (epoch + 1) % check_every == 0:
            model.eval()
            with torch.no_grad():
                logits = model(valid_x)
            value, extra = evaluate(head_probabilities(logits, multilabel).numpy(), logits)
            previous_best = run.best_epoch
            run.record(value, epoch, extra, _NoSnapshot(), 0)
            if run.best_epoch != previous_best:
                torch.save(model.state_dict(), best_path)
        if run.stopped or epoch + 1 >= run.max_epochs:
            break
    model.load_state_dict(torch.load(best_path, weights_only=True))
    model.eval()
    return model


class _NoSnapshot:
    """Stands in for :class:`BatchedHeads` in ``HeadRun.record``: weights go to files here."""

    @staticmethod
    def snapshot(slot: int) -> dict:
        return {}
