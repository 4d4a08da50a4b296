"""Predicting many images at once: image files, folders (searched recursively) and zips (read member by
member under the dataset import's limits, core.data.archive), in chunks, so memory stays flat and a
progress line can move. The results are core.inference.predict's, one per image, plus what was skipped and why.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from core.backbones.registry import Engine
from core.data.archive import ZipLimits, zip_images
from core.data.dataset import Skipped
from core.data.decode import IMAGE_EXTENSIONS
from core.data.scan import files_under
from core.errors import DataError
from core.fileio import not_regular
from core.images import thumbnail
from core.inference.predict import classify_decoded, decode_sources, run_model
from core.runs.store import RunStore

CHUNK = 64  # images decoded and classified together: two TFLite batches


UNKNOWN = "none of these"


@dataclass(frozen=True, kw_only=True)
class Batch:
    results: list[dict]  # core.inference.predict.predict_sources' dicts, in the order the images were found
    skipped: list[Skipped]  # zip members and folder files that are not images, unsafe, or missing
    engine: Engine
    seconds: float

    @property
    def predicted(self) -> list[dict]:
        return [r for r in self.results if "top" in r]

    def counts(self) -> dict[str, int]:
        """Images per predicted class, most first, then those the "none of these" rule set apart (UNKNOWN)."""
        counts = Counter(UNKNOWN if r.get("unknown") else r["top"][0]["label"] for r in self.predicted)
        unknown = counts.pop(UNKNOWN, 0)
        return {**dict(counts.most_common()), **({UNKNOWN: unknown} if unknown else {})}

    def as_results(self) -> list[dict]:
        """Every image's result, then every skipped member as an error row (for the CSV)."""
        return self.results + [{"image": s.name, "error": f"skipped: {s.reason} ({s.detail})"} for s in self.skipped]


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" and path.is_file()


def _folder_images(folder: Path, skipped: list[Skipped]) -> Iterator[tuple[str, Path]]:
    """The folder's images by the scan's policy for links (core.data.scan.files_under), named by their path."""
    files, passed = files_under(folder)
    skipped += [Skipped(name=str(folder / s.name), reason=s.reason, detail=s.detail) for s in passed]
    for path in files:
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(name=str(path), reason="not an image", detail="extension is not an image type"))
        elif kind := not_regular(path):
            skipped.append(_not_regular(str(path), kind))
        else:
            yield str(path), path


def _not_regular(name: str, kind: str) -> Skipped:
    if kind == "missing":
        return Skipped(name=name, reason="not found", detail="no such file or folder")
    return Skipped(name=name, reason="not a regular file", detail=f"{kind}; only regular files are read")


def _zip_members(source: bytes | Path, name: str, skipped: list[Skipped],
                 limits: ZipLimits) -> Iterator[tuple[str, bytes]]:
    """A zip's images named "archive.zip:member"; an archive that is damaged or over the limits is skipped
    with the reason (the images before the point it failed are kept)."""
    try:
        for member, content in zip_images(source, name, skipped, limits):
            yield f"{name}:{member}", content
    except DataError as exc:
        skipped.append(Skipped(name=name, reason="archive refused", detail=str(exc)))


def sources(paths: list[str | Path], skipped: list[Skipped], limits: ZipLimits = ZipLimits(),
            names: dict[str, str] | None = None) -> Iterator[tuple[str, bytes | Path]]:
    """(name, path or bytes) of every image under `paths`; a zip's members are named "archive.zip:member".
    `names` names a path otherwise (an upload by the name it was sent with, not where it was saved). A path
    that does not exist is skipped."""
    for path in map(Path, paths):
        name = (names or {}).get(str(path), str(path))
        if path.is_dir():
            yield from _folder_images(path, skipped)
        elif _is_zip(path):
            yield from _zip_members(path, name, skipped, limits)
        elif kind := not_regular(path):
            skipped.append(_not_regular(str(path), kind))
        else:
            yield name, path


def estimate(paths: list[str | Path]) -> int:
    """How many images `sources` will find at most (image-named files and members), for a progress bar."""
    import zipfile

    def in_zip(source) -> int:
        try:
            with zipfile.ZipFile(source) as archive:
                return sum(Path(i.filename).suffix.lower() in IMAGE_EXTENSIONS for i in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return 0

    total = 0
    for path in map(Path, paths):
        if path.is_dir():
            total += sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*"))
        else:
            total += in_zip(path) if _is_zip(path) else 1
    return total


def predict_batch(
    store: RunStore,
    run_id: str,
    paths: list[str | Path],
    k: int = 3,
    names: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    limits: ZipLimits = ZipLimits(),
    thumbnails: int = 0,
) -> Batch:
    """Every image under `paths` (named as `sources` says) through the run, CHUNK images at a time;
    progress(done, estimated total) after each chunk. The next chunk decodes while this one is classified
    (Pillow and the TFLite interpreter both release the GIL). With `thumbnails`, each readable image's
    result also has "thumbnail": a thumbnails x thumbnails PIL image made from the decoded array."""
    start, skipped, results = time.perf_counter(), list[Skipped](), []
    model = run_model(store, run_id)
    total = estimate(paths)
    found = sources(paths, skipped, limits, names)

    def read_next() -> tuple[list, list]:
        chunk = list(islice(found, CHUNK))
        return chunk, decode_sources(chunk, model.size)

    with ThreadPoolExecutor(1, thread_name_prefix="decode") as reader:
        ahead = reader.submit(read_next)
        while True:
            chunk, decoded = ahead.result()
            if not chunk:
                break
            ahead = reader.submit(read_next)
            chunk_results = classify_decoded(model, chunk, decoded, k)
            if thumbnails:
                for result, array in zip(chunk_results, decoded, strict=True):
                    if "top" in result:
                        result["thumbnail"] = thumbnail(array, thumbnails)
            results += chunk_results
            if progress is not None:
                progress(len(results), max(total, len(results)))
    return Batch(results=results, skipped=skipped, engine=model.engine, seconds=time.perf_counter() - start)
