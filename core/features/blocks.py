"""Every block's output, global-average pooled: one vector per image per block, from one forward pass.

The vectors are kept on disk (STUDIO_HOME/cache/blocks/<backbone>-<size>px/), keyed by the image's
SHA-256, so a second analysis of the same images, or of a sample that overlaps, runs nothing through
the backbone. The bundled backbone's pooled-blocks model is converted to TFLite by `prepare` and runs
there; other backbones run in TensorFlow. An opaque TF Hub layer has no blocks to read: it gives its
final vector only, as one block named "output".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, overload

import numpy as np

from core.backbones.forward import Layout, pooled_blocks_model, run_batches
from core.backbones.registry import Engine, Source
from core.data.arrays import array_chunks
from core.data.dataset import ImageItem
from core.data.npy_cache import NpyCache
from core.features import packs
from core.fileio import atomic_write_json, read_json
from core.progress import Progress

CACHE = NpyCache("blocks", 4 * 1024**3)  # Lite0's pooled blocks are 16 KB an image: 250,000 images
CHUNK = 128  # images decoded and run at a time: memory stays flat however many images there are


@dataclass(frozen=True, kw_only=True)
class BlockVectors:
    layout: Layout
    vectors: np.ndarray  # (images, layout.width) float32: the blocks' pooled outputs side by side
    engine: Engine | Literal["store"]  # store: nothing had to run
    computed: int  # images that went through the backbone; the others came from the store

    def block(self, index: int) -> np.ndarray:
        start = sum(self.layout.dims[:index])
        return self.vectors[:, start:start + self.layout.dims[index]]

    @property
    def final(self) -> np.ndarray:
        """The last block's vectors: the backbone's feature vectors."""
        return self.block(len(self.layout.dims) - 1)


def space(backbone: str, size: int) -> str:
    return f"{backbone}-{size}px"


def _layout_path(backbone: str, size: int) -> Path:
    return CACHE.folder / space(backbone, size) / "layout.json"


def stored_layout(backbone: str, size: int) -> Layout | None:
    try:
        return Layout.from_json(read_json(_layout_path(backbone, size)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _forward(backbone_name: str, image_size: int | None, *, tensorflow: bool = True):
    """(callable uint8 images -> vectors, layout, engine, input size): the converted file if there is one,
    else TensorFlow (None when tensorflow is False)."""
    from core.backbones import tflite_run

    lite = tflite_run.blocks_forward(backbone_name, image_size)
    if lite is not None:
        forward, layout_json, size = lite
        return forward, Layout.from_json(layout_json), "tflite", size
    if not tensorflow:
        return None
    from core.backbones import get_spec, load_backbone
    from core.tf import tf_keras

    if get_spec(backbone_name).source == Source.RANDOM:  # the store keys vectors by name: the same weights each time
        tf_keras.utils.set_random_seed(0)
    backbone = load_backbone(backbone_name, image_size)
    model, layout = pooled_blocks_model(backbone)
    return (lambda x: run_batches(model, x)), layout, "tensorflow", backbone.input_size


@overload
def block_vectors(items: Sequence[ImageItem], backbone_name: str, image_size: int | None,
                  progress: Progress | None = None,
                  *, tensorflow: Literal[True] = True) -> BlockVectors: ...


@overload
def block_vectors(items: Sequence[ImageItem], backbone_name: str, image_size: int | None,
                  progress: Progress | None = None,
                  *, tensorflow: bool) -> BlockVectors | None: ...


def block_vectors(items: Sequence[ImageItem], backbone_name: str, image_size: int | None,
                  progress: Progress | None = None,
                  *, tensorflow: bool = True) -> BlockVectors | None:
    """Every item's pooled block outputs, from the store where it has them. progress(stage, done, total).
    tensorflow=False: None rather than build the backbone in TensorFlow for the missing ones (only the
    store and a converted file serve)."""
    from core.backbones import get_spec

    size = image_size or get_spec(backbone_name).input_size
    layout, shas = stored_layout(backbone_name, size), [item.sha256 for item in items]
    packed = packs.find(CACHE, space(backbone_name, size), shas, layout.width) if layout and items else None
    if packed is not None and layout is not None:
        return BlockVectors(layout=layout, vectors=packed, engine="store", computed=0)
    found = [_get(backbone_name, size, item, layout) for item in items]
    missing = [i for i, v in enumerate(found) if v is None]
    if not missing and layout is not None:
        vectors = np.stack(cast(list[np.ndarray], found)) if found else np.zeros((0, layout.width), np.float32)
        packs.write(CACHE, space(backbone_name, size), shas, vectors)
        return BlockVectors(layout=layout, vectors=vectors, engine="store", computed=0)
    engine = _forward(backbone_name, image_size, tensorflow=tensorflow)
    if engine is None:
        return None
    forward, layout, engine, size = engine
    atomic_write_json(_layout_path(backbone_name, size), layout.to_json())
    for at, vector in _computed(forward, [items[i] for i in missing], size, backbone_name, progress):
        found[missing[at]] = vector
    vectors = np.stack(cast(list[np.ndarray], found)) if found else np.zeros((0, layout.width), np.float32)
    packs.write(CACHE, space(backbone_name, size), shas, vectors)
    CACHE.evict()
    return BlockVectors(layout=layout, vectors=vectors, engine=engine, computed=len(missing))


def _computed(forward, items: Sequence[ImageItem], size: int, backbone_name: str,
              progress) -> Iterator[tuple[int, np.ndarray]]:
    """(index, vector) of each item through the backbone, CHUNK images at a time, each vector stored."""
    for start, arrays in array_chunks(items, size, CHUNK):
        for at, vector in enumerate(forward(arrays), start):
            vector = vector.astype(np.float32)
            CACHE.put(space(backbone_name, size), items[at].sha256, vector)
            yield at, vector
        if progress:
            progress("features", min(start + CHUNK, len(items)), len(items))


def unstored(items: Sequence[ImageItem], backbone_name: str, size: int) -> list[int]:
    """Indices of the items whose vectors the store lacks (by file, nothing read): what a forward pass
    elsewhere (a cluster's nodes) has to compute."""
    if stored_layout(backbone_name, size) is None:
        return list(range(len(items)))
    return [i for i, item in enumerate(items) if not CACHE.has(space(backbone_name, size), item.sha256)]


def keep(backbone_name: str, size: int, layout: Layout, shas: Sequence[str], vectors: np.ndarray) -> None:
    """Vectors computed elsewhere into the store, under the same content keys as computed here. A layout
    other than the stored one is refused: the store would mix two models' vectors."""
    stored = stored_layout(backbone_name, size)
    if stored is not None and stored != layout:
        raise ValueError(f"vectors of {space(backbone_name, size)} arrived with blocks {layout.blocks}, the store "
                         f"holds {stored.blocks}: clear {CACHE.folder / space(backbone_name, size)} and run again")
    if stored is None:
        atomic_write_json(_layout_path(backbone_name, size), layout.to_json())
    for sha, vector in zip(shas, vectors, strict=True):
        CACHE.put(space(backbone_name, size), sha, np.asarray(vector, np.float32))


def _get(backbone_name: str, size: int, item: ImageItem, layout: Layout | None) -> np.ndarray | None:
    if layout is None:
        return None
    return CACHE.get(space(backbone_name, size), item.sha256,
                     lambda a: a.shape == (layout.width,) and a.dtype == np.float32)


def stored_final_vectors(items: Sequence[ImageItem], backbone_name: str, size: int,
                         feature_dim: int) -> np.ndarray | None:
    """The last block's vectors (the backbone's feature vectors) of every item, if the store has them
    all (an analysis of these images ran before); else None. Nothing is computed."""
    layout = stored_layout(backbone_name, size)
    if layout is None or layout.dims[-1] != feature_dim:
        return None
    packed = packs.find(CACHE, space(backbone_name, size), [item.sha256 for item in items], layout.width)
    if packed is not None and layout is not None:
        return np.array(packed[:, -feature_dim:])
    out = np.empty((len(items), feature_dim), np.float32)
    for i, item in enumerate(items):
        vector = _get(backbone_name, size, item, layout)
        if vector is None:
            return None
        out[i] = vector[-feature_dim:]
    return out
