"""Ranks for ``atst-hear embed --devices N --num-nodes M``, started by Lightning Fabric.

Run from a shell, Fabric starts the other ``N - 1`` processes of this node by re-running the
command line; under ``torchrun`` or SLURM (``srun``) it takes the ranks those launchers set. The
embedding needs no collective operation: each rank embeds its own batches and writes each clip's
output atomically, so the only synchronisation is a barrier between listing the clips still to do
and writing the first output. Lightning is imported here only, never by the HEAR modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Ranks:
    rank: int
    world_size: int
    device: str
    fabric: Any

    def barrier(self) -> None:
        self.fabric.barrier()


def start_ranks(devices: int, num_nodes: int, device: str) -> Ranks:
    """Start (or join) the ``devices * num_nodes`` processes; ``device`` cpu runs them on gloo."""
    try:
        from lightning.fabric import Fabric
    except ImportError:
        raise RuntimeError("--devices needs Lightning: pip install 'atst-hear[train]'") from None
    accelerator = "cuda" if device.startswith("cuda") else "cpu"
    if accelerator == "cpu" and device != "cpu":
        raise ValueError(f"--devices runs on cpu or cuda, got --device {device!r}")
    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp")
    fabric.launch()
    return Ranks(fabric.global_rank, fabric.world_size, str(fabric.device), fabric)
