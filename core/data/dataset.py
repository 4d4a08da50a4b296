"""A scanned dataset: the images it holds, what was skipped and why, and warnings."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from core.errors import DataError

MIN_PER_CLASS_WARNING = 10
IMBALANCE_WARNING_RATIO = 3.0


@dataclass(frozen=True, kw_only=True)
class ImageItem:
    path: str  # absolute path on disk
    relpath: str  # path inside the dataset folder, '/'-separated: the image's name in reports
    label: str
    sha256: str
    origin: str = ""  # for an image labelled from an unlabelled pool (core.data.additions): the pool's folder


@dataclass(frozen=True, kw_only=True)
class Skipped:
    name: str  # the file or archive member, as the user knows it
    reason: str  # short cause: not an image, corrupt, too many pixels, exact duplicate, ...
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class Dataset:
    name: str
    root: str
    classes: tuple[str, ...]
    items: tuple[ImageItem, ...]
    skipped: tuple[Skipped, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = ()  # what the studio did to its copy of the data (downscaling)
    overrides: dict = field(default_factory=dict)  # the user's corrections applied (core.data.overrides)
    additions: dict = field(default_factory=dict)  # images labelled from a pool, applied (core.data.additions)
    file_warnings: tuple[str, ...] = ()  # the part of warnings that the files gave, not the counts

    def counts(self) -> dict[str, int]:
        counter = Counter(item.label for item in self.items)
        return {c: counter.get(c, 0) for c in self.classes}

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))

    def __len__(self) -> int:
        return len(self.items)

    def require_images(self) -> Dataset:
        """The dataset, or a DataError saying why it has no usable image (every step after the scan needs one)."""
        if self.items:
            return self
        if not self.skipped:
            raise DataError(f"{self.root} has no images in its class folders; put the images in one folder per "
                            f"class.")
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped_by_reason().items()))
        first = self.skipped[0]
        raise DataError(f"{self.root} has no usable image: all {len(self.skipped)} file(s) were skipped ({reasons}); "
                        f"for example {first.name}: {first.reason}" + (f" ({first.detail})" if first.detail else "")
                        + ".")

    def summary(self) -> dict:
        return {"name": self.name, "root": self.root, "classes": list(self.classes), "images": len(self.items),
                "counts": self.counts(), "skipped": self.skipped_by_reason(), "warnings": list(self.warnings),
                "notes": list(self.notes), "overrides": self.overrides,
                "additions": self.additions,
                "skipped_files": [{"name": s.name, "reason": s.reason, "detail": s.detail} for s in self.skipped]}


def control_characters(name: str) -> list[str]:
    """The characters of name that a line of labels.txt or a CSV cell cannot hold (controls, line and paragraph
    separators), spelled out: ['\\n']."""
    return [repr(ch)[1:-1] for ch in name if unicodedata.category(ch) in ("Cc", "Zl", "Zp")]


def class_name(label: str) -> str:
    """The label as a class folder would be named; DataError when no folder could have that name."""
    label = unicodedata.normalize("NFC", label).strip()
    if not label or label.startswith(".") or "/" in label or "\\" in label or len(label.encode()) > 100 \
            or control_characters(label):
        raise DataError(f"Class name {label!r} is not usable; use a plain name without slashes or control "
                        f"characters, not starting with a dot, up to 100 bytes.")
    return label


def count_warnings(counts: dict[str, int]) -> tuple[str, ...]:
    """The warnings that follow from the images per class alone (recomputed when corrections change them)."""
    warnings = []
    small = [c for c, n in counts.items() if n < MIN_PER_CLASS_WARNING]
    if small:
        warnings.append(f"{len(small)} class(es) have fewer than {MIN_PER_CLASS_WARNING} images: "
                        + ", ".join(f"{c} ({counts[c]})" for c in small[:10]))
    present = [n for n in counts.values() if n > 0]
    if present and min(present) * IMBALANCE_WARNING_RATIO < max(present):
        warnings.append(f"Classes are imbalanced: {min(present)} to {max(present)} images per class; "
                        f"accuracy alone can mislead, look at per-class recall.")
    return tuple(warnings)


def validation_lines(summary: dict) -> list[str]:
    """A dataset summary (Dataset.summary, a run's dataset.json) as the lines people read before
    training: usable images per class, then every skipped file with its reason, then warnings."""
    counts = ", ".join(f"{c} {n}" for c, n in summary.get("counts", {}).items())
    lines = [f"{summary.get('images', 0):,} usable images in {len(summary.get('classes', []))} classes ({counts})"]
    skipped = summary.get("skipped_files", [])
    lines.append(f"{len(skipped)} file(s) skipped" + (":" if skipped else ""))
    lines += [f"  {s['name']}: {s['reason']}" + (f" ({s['detail']})" if s.get("detail") else "") for s in skipped]
    return lines + [f"warning: {w}" for w in summary.get("warnings", [])] + list(summary.get("notes", []))
