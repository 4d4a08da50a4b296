"""Filling the feature store for a dataset ahead of the runs, health checks and analyses that read it (`core
features`): here, or sharded over a Ray cluster by core.runs.shards, which reports in the same Filled."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.data.dataset import ImageItem
from core.features import blocks
from core.progress import Progress


@dataclass(frozen=True, kw_only=True)
class Filled:
    """What filling the store did: how many images it covered and computed, in how many shards, on which nodes."""
    images: int
    computed: int
    shards: int  # 0 on this machine
    nodes: tuple[str, ...]  # the cluster node of each shard, in the order they arrived
    seconds: float
    address: str  # the cluster's, or "" for this machine

    def to_json(self) -> dict:
        return {"images": self.images, "computed": self.computed, "shards": self.shards, "nodes": list(self.nodes),
                "seconds": self.seconds, "address": self.address}


def fill_here(items: Sequence[ImageItem], backbone: str, size: int,
              progress: Progress | None = None) -> Filled:
    """Every item's block vectors in the store, the missing ones computed on this machine."""
    began = time.monotonic()
    found = blocks.block_vectors(items, backbone, size, progress)
    return Filled(images=len(items), computed=found.computed if found else 0, shards=0, nodes=(),
                  seconds=round(time.monotonic() - began, 3), address="")
