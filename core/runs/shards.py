"""The feature store filled across a Ray cluster (`core features --data D --cluster ADDRESS`).

The images whose vectors the store lacks are cut into shards; one Ray task per shard runs them through the
backbone on a node (its own converted model and store), and the vectors arrive in the studio's store under
the same content keys as computed here, so a later run, health check or analysis reads them and computes
nothing. Images travel as for runs: each shard's files go into the object store once, and a node fetches
them only when it lacks one (kept by SHA-256), so an image goes to a node once; with STUDIO_RAY_DATA=shared
the nodes read the studio's paths. A node lost mid-shard: Ray runs the shard again elsewhere (at most
MAX_RETRIES more times). A shard's vectors are kept once, when its task returns; a shard that fails for good
leaves what arrived before it, so running again computes only the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import ray

from core.backbones.forward import Layout
from core.data.dataset import ImageItem
from core.errors import RunError
from core.features import blocks
from core.features.fill import Filled
from core.progress import Progress
from core.runs.remote import MAX_RETRIES, connect, fetch_missing, kept_image, put_images, ships_images, suffix_of

SHARD = 512  # images per task: a lost node costs at most this much work again; a task's overhead is amortised
FAULT_ENV = "STUDIO_FAULT_PAUSE"  # "shard": a node's task stops before returning (the reliability test kills it)


def fill(items: Sequence[ImageItem], backbone: str, size: int, address: str,
         progress: Progress | None = None, *, shard: int = SHARD) -> Filled:
    """Every item's block vectors in the store, the missing ones computed on the cluster at `address`."""
    began = time.monotonic()
    todo = [items[i] for i in blocks.unstored(items, backbone, size)]
    parts = [todo[i:i + shard] for i in range(0, len(todo), shard)]
    nodes: list[str] = []
    if parts:
        connect(address)
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))  # shards in flight: object store bounded
        pending, done = list(parts), 0
        waiting: dict[Any, list[ImageItem]] = {}
        while pending or waiting:
            while pending and len(waiting) < window:
                part = pending.pop(0)
                waiting[_send(part, backbone, size)] = part
            ready, _ = ray.wait(list(waiting), num_returns=1)
            part = waiting.pop(ready[0])
            nodes.append(_arrive(ready[0], part, backbone, size))
            done += len(part)
            if progress:
                progress("features", done, len(todo))
        blocks.CACHE.evict()
    return Filled(images=len(items), computed=len(todo), shards=len(parts), nodes=tuple(nodes),
                  seconds=round(time.monotonic() - began, 3), address=address)


def _send(part: Sequence[ImageItem], backbone: str, size: int) -> ray.ObjectRef:
    listing = [(i.sha256, suffix_of(i.path), i.path) for i in part]
    images = put_images(part) if ships_images() else None
    return vectors_on_node.options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False,
                                   scheduling_strategy="SPREAD").remote(backbone, size, listing, images)


def _arrive(ref: ray.ObjectRef, part: Sequence[ImageItem], backbone: str, size: int) -> str:
    """Keep one returned shard's vectors; its node. A shard Ray gave up on stops the fill with the reason."""
    try:
        result = ray.get(ref)
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"A shard of {len(part)} images failed on the cluster after up to {MAX_RETRIES + 1} "
                       f"attempts: {reason}. The vectors that arrived before it are kept; run again for the rest.") \
            from exc
    if result["shas"] != [i.sha256 for i in part] or len(result["vectors"]) != len(part):
        raise RunError(f"A node ({result['node']}) returned vectors for other images than its shard's.")
    blocks.keep(backbone, size, Layout.from_json(result["layout"]), result["shas"], result["vectors"])
    return result["node"]


@ray.remote
def vectors_on_node(backbone: str, size: int, listing: list[tuple[str, str, str]], images: list | None) -> dict:
    """One shard's block vectors, computed on this node (its own store serves what it already has).
    listing: (SHA-256, suffix, the studio's path) per image; images: [a reference to their files], or None
    when the nodes share the studio's storage."""
    if images is not None:
        fetch_missing([(sha, suffix) for sha, suffix, _ in listing], images)
    items = [ImageItem(path=path if images is None else str(kept_image(sha, suffix)), relpath=path, label="",
                       sha256=sha) for sha, suffix, path in listing]
    found = blocks.block_vectors(items, backbone, size)
    while os.environ.get(FAULT_ENV) == "shard":  # fault injection only: paused until the node is killed
        time.sleep(1)
    return {"node": ray.get_runtime_context().get_node_id(), "shas": [i.sha256 for i in items],
            "layout": found.layout.to_json(), "vectors": found.vectors}
