"""Several small classifier heads trained side by side as one batched computation.

A hyper-parameter grid trains many heads on the same embeddings; looping over them one at a time
re-reads the data and launches many tiny kernels. :class:`BatchedHeads` keeps ``G`` heads as
``[G, ...]`` tensors and runs them with batched matmuls; each head is still an independent model:
it has its own initialisation and dropout stream (a :class:`torch.Generator` per head), its own
BatchNorm statistics and its own learning rate, so its result equals training it alone.

Layer ``l`` of every head is ``Linear -> BatchNorm1d -> Dropout -> ReLU`` (hear-eval-kit's
``FullyConnectedPrediction``), followed by a ``Linear`` projection; ``input_norm`` puts a
``BatchNorm1d(affine=False)`` in front (the ATST paper's linear head), shared by all heads since
its statistics only depend on the input.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

BN_MOMENTUM = 0.1
# tensors whose heads are not on axis 0: the first layer is [in, G, out] so that all heads
# multiply the shared input in one matmul without copying weights
HEAD_AXIS = {"w0": 1}
BN_EPS = 1e-5
INITIALIZATIONS = ("xavier_uniform", "xavier_normal", "normal_0.01", "torch_default")


def as_tensor(array: np.ndarray, device: str | torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)


def seeded_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from any labels (seed, grid point, fold, ...)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return generator


def init_linear(
    out_dim: int, in_dim: int, initialization: str, gain: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [out, in], bias [out])`` as ``torch.nn.Linear`` lays them out.

    Xavier heads keep ``nn.Linear``'s default bias (uniform in +-1/sqrt(in)); the paper's head is
    N(0, 0.01) weights and zero bias; ``torch_default`` is ``nn.Linear``'s own initialisation
    (weights and bias uniform in +-1/sqrt(in), i.e. Kaiming-uniform with a = sqrt(5)).
    """
    weight = torch.empty(out_dim, in_dim)
    bound = 1.0 / math.sqrt(in_dim)
    if initialization == "torch_default":
        weight.uniform_(-bound, bound, generator=generator)
    elif initialization == "xavier_uniform":
        torch.nn.init.xavier_uniform_(weight, gain=gain, generator=generator)
    elif initialization == "xavier_normal":
        torch.nn.init.xavier_normal_(weight, gain=gain, generator=generator)
    elif initialization == "normal_0.01":
        weight.normal_(0.0, 0.01, generator=generator)
        return weight, torch.zeros(out_dim)
    else:
        raise ValueError(f"unknown initialization {initialization!r}; known: {INITIALIZATIONS}")
    bias = torch.empty(out_dim).uniform_(-bound, bound, generator=generator)
    return weight, bias


def dropout_mask(shape: Sequence[int], p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted-dropout multiplier: 0 with probability ``p``, else ``1 / (1 - p)``."""
    keep = torch.rand(tuple(shape), generator=generator) >= p
    return keep.float() / (1.0 - p)


@dataclass(frozen=True)
class HeadConfig:
    """The shape of every head in a batch (heads of one batch differ only in init, lr, seed)."""

    in_dim: int
    out_dim: int
    hidden_layers: int = 0
    hidden_dim: int = 0
    dropout: float = 0.0
    input_norm: bool = False


class BatchedHeads:
    def __init__(
        self,
        config: HeadConfig,
        initializations: Sequence[str],
        generators: Sequence[torch.Generator],
        device: str | torch.device = "cpu",
    ):
        if len(initializations) != len(generators):
            raise ValueError("one initialization and one generator per head")
        self.config = config
        self.device = torch.device(device)
        self.generators = list(generators)
        dims = [config.in_dim] + [config.hidden_dim] * config.hidden_layers + [config.out_dim]
        weights, biases = [], []
        for layer in range(len(dims) - 1):
            # gains follow the activation feeding the layer: none for the input, ReLU after
            gain = torch.nn.init.calculate_gain("linear" if layer == 0 else "relu")
            pairs = [
                init_linear(dims[layer + 1], dims[layer], init, gain, gen)
                for init, gen in zip(initializations, self.generators)
            ]
            axis = HEAD_AXIS.get(f"w{layer}", 0)
            weights.append(torch.stack([w.t() for w, _ in pairs], dim=axis).to(self.device))
            biases.append(torch.stack([b for _, b in pairs]).to(self.device))
        g, h = len(self.generators), config.hidden_dim
        self.tensors: dict[str, torch.Tensor] = {}
        for layer, (w, b) in enumerate(zip(weights, biases)):
            self.tensors[f"w{layer}"] = w.requires_grad_()
            self.tensors[f"b{layer}"] = b.requires_grad_()
        for layer in range(config.hidden_layers):
            self.tensors[f"bn_weight{layer}"] = torch.ones(
                g, h, device=self.device
            ).requires_grad_()
            self.tensors[f"bn_bias{layer}"] = torch.zeros(g, h, device=self.device).requires_grad_()
            self.tensors[f"bn_mean{layer}"] = torch.zeros(g, h, device=self.device)
            self.tensors[f"bn_var{layer}"] = torch.ones(g, h, device=self.device)
        if config.input_norm:
            self.input_mean = torch.zeros(config.in_dim, device=self.device)
            self.input_var = torch.ones(config.in_dim, device=self.device)

    @property
    def n_heads(self) -> int:
        return len(self.generators)

    def parameters(self) -> list[torch.Tensor]:
        return [t for t in self.tensors.values() if t.requires_grad]

    def head_axes(self) -> list[int]:
        """The axis that indexes heads, for each tensor of :meth:`parameters`."""
        return [HEAD_AXIS.get(n, 0) for n, t in self.tensors.items() if t.requires_grad]

    def head_tensor(self, name: str, head: int) -> torch.Tensor:
        """One head's slice of a tensor (weights as ``[in, out]``)."""
        return self.tensors[name].select(HEAD_AXIS.get(name, 0), head)

    # --- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """``x [B, D]`` (shared by every head) -> logits ``[G, B, C]``.

        Hidden activations are laid out ``[B, G*H]``: per-head BatchNorm is then ordinary
        per-channel BatchNorm over ``G*H`` channels (torch's kernel, running statistics updated
        in place), and the first layer is one matmul for all heads.
        """
        config, t, g, batch = self.config, self.tensors, self.n_heads, x.shape[0]
        if config.input_norm:
            x = F.batch_norm(
                x, self.input_mean, self.input_var, None, None, train, BN_MOMENTUM, BN_EPS
            )
        h = torch.addmm(t["b0"].view(-1), x, t["w0"].view(x.shape[1], -1))  # [B, G*out]
        for layer in range(config.hidden_layers):
            h = F.batch_norm(
                h,
                t[f"bn_mean{layer}"].view(-1),
                t[f"bn_var{layer}"].view(-1),
                t[f"bn_weight{layer}"].view(-1),
                t[f"bn_bias{layer}"].view(-1),
                train,
                BN_MOMENTUM,
                BN_EPS,
            )
            if train and config.dropout > 0:
                shape = (batch, config.hidden_dim)
                masks = [dropout_mask(shape, config.dropout, gen) for gen in self.generators]
                h = h * torch.cat(masks, dim=1).to(h.device)
            h = F.relu(h)
            per_head = h.view(batch, g, -1).transpose(0, 1)  # [G, B, H]
            h = torch.baddbmm(t[f"b{layer + 1}"][:, None, :], per_head, t[f"w{layer + 1}"])
            if layer + 1 < config.hidden_layers:
                h = h.transpose(0, 1).reshape(batch, -1)
        if config.hidden_layers == 0:
            h = h.view(batch, g, -1).transpose(0, 1)
        return h

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Eval-mode logits ``[G, N, C]`` in chunks."""
        chunks = [
            self.forward(x[i : i + batch_size], train=False) for i in range(0, len(x), batch_size)
        ]
        return torch.cat(chunks, dim=1)

    # --- checkpoints in memory -----------------------------------------------------------------
    def snapshot(self, head: int) -> dict[str, torch.Tensor]:
        """A copy of one head's weights and statistics."""
        state = {name: self.head_tensor(name, head).detach().clone() for name in self.tensors}
        if self.config.input_norm:
            state["input_mean"] = self.input_mean.clone()
            state["input_var"] = self.input_var.clone()
        return state

    @classmethod
    def from_snapshots(
        cls, config: HeadConfig, snapshots: Sequence[dict[str, torch.Tensor]], device="cpu"
    ) -> BatchedHeads:
        """Heads rebuilt from snapshots (for testing the selected checkpoints together)."""
        heads = cls.__new__(cls)
        heads.config, heads.device = config, torch.device(device)
        heads.generators = [torch.Generator() for _ in snapshots]
        names = [n for n in snapshots[0] if not n.startswith("input_")]
        heads.tensors = {
            n: torch.stack([s[n] for s in snapshots], dim=HEAD_AXIS.get(n, 0)).to(device)
            for n in names
        }
        if config.input_norm:
            # heads of one batch share the input statistics
            heads.input_mean = snapshots[0]["input_mean"].to(device)
            heads.input_var = snapshots[0]["input_var"].to(device)
        return heads

    def keep(self, heads: Sequence[int]) -> None:
        """Drop every head not listed (early-stopped heads stop costing compute)."""
        index = torch.as_tensor(list(heads), dtype=torch.long, device=self.device)
        for name, tensor in self.tensors.items():
            kept = tensor.detach().index_select(HEAD_AXIS.get(name, 0), index)
            self.tensors[name] = kept.requires_grad_(tensor.requires_grad)
        self.generators = [self.generators[i] for i in heads]


class BatchedOptimizer:
    """Adam or SGD with momentum over head-stacked tensors, one learning rate per head.

    Updates follow ``torch.optim.Adam`` / ``torch.optim.SGD`` (``weight_decay`` as theirs: L2
    added to the gradient); each tensor's
    head axis comes from ``head_axes``. A head's rate can be rescaled every epoch (cosine
    schedules) through ``lr_scale``. Updates work in place in per-tensor scratch buffers: the
    grid's tensors are large and temporaries would dominate the step time.
    """

    def __init__(
        self,
        heads: BatchedHeads,
        lrs: Sequence[float],
        kind: str,
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if kind not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {kind!r}")
        if len(lrs) != heads.n_heads:
            raise ValueError(f"{heads.n_heads} heads need {heads.n_heads} learning rates")
        self.kind, self.momentum, self.betas, self.eps = kind, momentum, betas, eps
        self.weight_decay = float(weight_decay)
        self.heads = heads
        self.params = heads.parameters()
        self.head_axes = heads.head_axes()
        self.base_lrs = torch.tensor(list(lrs), dtype=torch.float64)
        self.lr_scale = 1.0
        self.steps = 0
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _per_head(self, values: torch.Tensor, p: torch.Tensor, axis: int) -> torch.Tensor:
        """``[G]`` values shaped to broadcast along ``p``'s head axis."""
        shape = [1] * p.dim()
        shape[axis] = -1
        return values.to(device=p.device, dtype=p.dtype).view(shape)

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        lrs = self.base_lrs * self.lr_scale
        beta1, beta2 = self.betas
        for p, axis, state in zip(self.params, self.head_axes, self.state):
            if p.grad is None:
                continue
            grad = p.grad
            if self.weight_decay:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.kind == "sgd":
                if "momentum" not in state:
                    state["momentum"] = grad.clone()
                else:
                    state["momentum"].mul_(self.momentum).add_(grad)
                p.addcmul_(state["momentum"], self._per_head(lrs, p, axis), value=-1)
                continue
            if "exp_avg" not in state:
                for name in ("exp_avg", "exp_avg_sq", "scratch"):
                    state[name] = torch.zeros_like(p)
            state["exp_avg"].lerp_(grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1**self.steps
            bias_correction2_sqrt = math.sqrt(1 - beta2**self.steps)
            update = state["scratch"]
            torch.sqrt(state["exp_avg_sq"], out=update)
            update.div_(bias_correction2_sqrt).add_(self.eps)
            torch.div(state["exp_avg"], update, out=update)
            p.addcmul_(update, self._per_head(lrs / bias_correction1, p, axis), value=-1)

    def keep(self, heads: Sequence[int]) -> None:
        """Keep only ``heads`` (call after :meth:`BatchedHeads.keep` with the same list)."""
        index = torch.as_tensor(list(heads), dtype=torch.long)
        self.base_lrs = self.base_lrs[index]
        for axis, state in zip(self.head_axes, self.state):
            for name in state:
                state[name] = state[name].index_select(axis, index.to(state[name].device))
        self.params = self.heads.parameters()


def head_losses(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Per-head mean loss ``[G]``: BCE-with-logits (multilabel) or cross-entropy on argmax."""
    g, b, c = logits.shape
    if multilabel:
        loss = F.binary_cross_entropy_with_logits(logits, y.expand(g, b, c), reduction="none")
        return loss.mean(dim=(1, 2))
    target = y.argmax(dim=1).repeat(g)
    return F.cross_entropy(logits.reshape(g * b, c), target, reduction="none").view(g, b).mean(1)


def head_probabilities(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=-1)


# --- training loop ---------------------------------------------------------------------------
@dataclass
class HeadRun:
    """One head's training: its best validation check so far and its early-stopping state.

    Checkpoint selection and early stopping follow Lightning's ``ModelCheckpoint`` and
    ``EarlyStopping`` (strict improvement, ``patience`` counted in checks, stop on NaN);
    ``ties_improve`` counts an equal value as an improvement (EVAR's ``EarlyStopping``), so the
    later of two equal checks is kept.
    """

    index: int
    conf: dict[str, Any]
    maximize: bool
    max_epochs: int
    patience: int | None = None
    best_value: float | None = None
    best_epoch: int = -1
    best_extra: Any = None
    snapshot: dict | None = field(default=None, repr=False)
    wait: int = 0
    stopped: bool = False
    time_in_min: float = 0.0
    ties_improve: bool = False

    def record(self, value: float, epoch: int, extra: Any, heads: BatchedHeads, slot: int) -> None:
        if np.isnan(value):
            # Lightning's ModelCheckpoint ranks a NaN as the worst value (so a run whose first
            # check is NaN still keeps that checkpoint); EarlyStopping stops on it
            value = -math.inf if self.maximize else math.inf
            self.stopped = True
        if self.best_value is None:
            improved = True
        elif self.ties_improve:
            improved = value >= self.best_value if self.maximize else value <= self.best_value
        else:
            improved = value > self.best_value if self.maximize else value < self.best_value
        if improved:
            self.best_value, self.best_epoch, self.best_extra = value, epoch, extra
            self.snapshot = heads.snapshot(slot)
            self.wait = 0
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.stopped = True


Evaluate = Callable[[np.ndarray, torch.Tensor], tuple[float, Any]]


def fit_heads(
    runs: Sequence[HeadRun],
    heads: BatchedHeads,
    optimizer: BatchedOptimizer,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_valid: torch.Tensor,
    multilabel: bool,
    evaluate: Evaluate,
    batch_size: int,
    check_every: int = 1,
    shuffle: torch.Generator | None = None,
    lr_scale: Callable[[int], float] | None = None,
    progress: bool = True,
    description: str = "heads",
    loss_scale: float = 1.0,
) -> None:
    """Train ``heads`` (one per run) with per-head validation, selection and early stopping.

    ``evaluate(probabilities [N, C], logits [N, C])`` returns the validation value of one head
    and anything to keep with its best check. Rows are visited in their given order every epoch
    unless ``shuffle`` draws a fresh permutation; ``lr_scale(epoch)`` rescales every rate;
    ``loss_scale`` multiplies every head's loss.
    """
    active = list(runs)
    started = time.time()
    bar = tqdm(
        range(max(run.max_epochs for run in runs)),
        desc=f"{description} ({len(runs)} heads)",
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        if lr_scale is not None:
            optimizer.lr_scale = lr_scale(epoch)
        order = None if shuffle is None else torch.randperm(len(x_train), generator=shuffle)
        for start in range(0, len(x_train), batch_size):
            rows = (
                slice(start, start + batch_size)
                if order is None
                else order[start : start + batch_size]
            )
            logits = heads.forward(x_train[rows], train=True)
            loss = head_losses(logits, y_train[rows], multilabel).sum() * loss_scale
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if (epoch + 1) % check_every == 0:
            logits = heads.predict_logits(x_valid)
            probs = head_probabilities(logits, multilabel).cpu().numpy()
            for slot, run in enumerate(active):
                value, extra = evaluate(probs[slot], logits[slot])
                run.record(value, epoch, extra, heads, slot)
        for run in active:
            if epoch + 1 >= run.max_epochs:
                run.stopped = True
            if run.stopped and not run.time_in_min:
                run.time_in_min = (time.time() - started) / 60
        kept = [slot for slot, run in enumerate(active) if not run.stopped]
        if len(kept) < len(active):
            if not kept:
                break
            heads.keep(kept)
            optimizer.keep(kept)
            active = [active[slot] for slot in kept]
        bar.set_postfix(active=len(active))
    bar.close()
    for run in runs:
        if run.snapshot is None:
            raise RuntimeError(f"{description}: head {run.conf} had no finite validation score")


def best_run(runs: Sequence[HeadRun]) -> HeadRun:
    """The run with the best validation value, ties going to the earlier run (hear-eval-kit's
    ``sort_grid_points``)."""
    return sorted(runs, key=lambda r: r.best_value, reverse=runs[0].maximize)[0]


def cosine_scale(total_epochs: int) -> Callable[[int], float]:
    """``CosineAnnealingLR(T_max=total_epochs, eta_min=0)`` stepped once per epoch."""
    return lambda epoch: 0.5 * (1.0 + math.cos(math.pi * epoch / total_epochs))
