"""What a run trains and is scored on: its sample of the dataset and the split, drawn exactly as the run
draws them (seeded: the same each time), with near-duplicate groups kept on one side of the split.

It sits above the data and health layers: the split needs health's near-duplicate groups."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from core import paths
from core.data.dataset import Dataset
from core.data.sampling import Sample, Split, leak_check, sample, split
from core.data.sources import load_dataset
from core.fileio import atomic_write_json, read_json
from core.health import near_duplicate_groups


@dataclass(frozen=True, kw_only=True)
class RunData:
    dataset: Dataset
    sample: Sample
    split: Split
    leak_check: dict  # what crossed the split, and how near duplicates were looked for


def sample_split(config, progress: Callable[[int, int], None] | None = None,
                 prime_size: int | None = None) -> RunData:
    """The dataset, sample, split and leak check of this TrainConfig; progress(done, total) while files are
    checked; prime_size: see core.data.scan.scan_folder."""
    dataset = load_dataset(config.dataset, progress=progress, prime_size=prime_size)
    chosen = sample(dataset, config.per_class, config.fraction, config.seed)
    groups, how = _duplicate_groups(chosen, config)
    parts = split(chosen.items, config.val_fraction, config.test_fraction, config.seed, groups)
    return RunData(dataset=dataset, sample=chosen, split=parts, leak_check=leak_check(parts, groups, how))


def _duplicate_groups(chosen: Sample, config) -> tuple[list[list[str]], str]:
    """The sample's near-duplicate groups (relative paths) and how they were found; kept per sample, backbone and
    size, so that a second run of the same images (a new seed of the head, another head) does not search again:
    at 20,000 images the search is most of a run whose vectors are stored. Only a search that had the feature
    vectors is kept (one on thumbnails alone is redone once they exist)."""
    key = hashlib.sha256(json.dumps([config.backbone, config.image_size, sorted(
        (i.sha256, i.relpath) for i in chosen.items)]).encode()).hexdigest()
    path = paths.cache_dir() / "duplicate-groups" / f"{key}.json"
    try:
        kept = read_json(path)
        return kept["groups"], kept["how"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    search = near_duplicate_groups(chosen.items, config.backbone, config.image_size)
    groups = [[chosen.items[i].relpath for i in g] for g in search.groups]
    if search.with_vectors:
        atomic_write_json(path, {"groups": groups, "how": search.how})
    return groups, search.how
