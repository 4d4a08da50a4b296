"""Reading an uploaded zip of class folders safely, member by member, into a dataset folder.

Limits are checked against the central directory first (entry count, declared sizes,
compression ratio) and again while reading (a member may lie about its size). Absolute
paths, '..', symbolic links and encrypted members are skipped with a reason. Only members
with an image extension are written, under the destination folder and nowhere else.
The studio's copy keeps each image at most COPY_MAX_SIDE pixels on its long side (phone photos
are ten times that; nothing the backbones take needs more); the zip itself is never changed.
A hidden record beside the class folders keeps what was skipped and downscaled for every later scan.
"""

from __future__ import annotations

import errno
import io
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from core.data.dataset import Dataset, Skipped
from core.data.decode import IMAGE_EXTENSIONS, downscaled
from core.data.scan import IMPORT_RECORD, class_root, is_junk, normalise, scan_folder
from core.errors import DataError
from core.fileio import atomic_write_json

MAX_NAME_BYTES = 255  # the usual file-system limit for one path component
COPY_MAX_SIDE = 1024


@dataclass(frozen=True, kw_only=True)
class ZipLimits:
    max_entries: int = 20_000
    max_total_bytes: int = 2 * 1024**3
    max_member_bytes: int = 200 * 1024**2
    max_ratio: float = 200.0  # uncompressed / compressed, for members over ratio_floor_bytes
    ratio_floor_bytes: int = 1024**2
    max_depth: int = 16


def _unsafe_reason(info: zipfile.ZipInfo, limits: ZipLimits) -> str | None:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        return "unsafe path"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file"  # a FIFO, socket or device recorded by a Unix zip
    if info.flag_bits & 0x1:
        return "encrypted"
    if len(path.parts) > limits.max_depth:
        return "nested too deep"
    if info.file_size > limits.max_member_bytes:
        return "too large"
    if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        return "suspicious compression ratio"
    return None


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise DataError(f"{info.filename}: expands beyond its declared size; the archive is damaged or hostile")
    return data


@dataclass(kw_only=True)
class _Imported:
    """What an import did besides writing images."""
    skipped: list[Skipped] = field(default_factory=list)
    downscaled: int = 0


def import_zip(source: bytes | Path, dest: str | Path, name: str | None = None,
               limits: ZipLimits = ZipLimits(), max_side: int | None = COPY_MAX_SIDE,
               progress: Callable[[int, int], None] | None = None, prime_size: int | None = None,
               *, scan: Callable = scan_folder, expected: str = "one folder of images per class") -> Dataset:
    """Unpack the images of a zip (bytes, or a file on disk read member by member) into `dest` and return
    it scanned (scan_folder, or `scan` with the same arguments: an unlabelled pool's). `dest` must not exist
    yet; on any error nothing is left behind.
    """
    dest = Path(dest)
    label = name or dest.name
    if dest.exists():
        raise DataError(f"{dest} already exists; choose another dataset name.")
    with _open_archive(source, label) as archive:
        infos = archive.infolist()
        _check_declared(infos, limits, label)
        done = _Imported()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
        try:
            written = 0
            for info in infos:
                written += _extract(archive, info, tmp, limits, label, done, max_side)
                if written > limits.max_total_bytes:
                    raise DataError(f"{label}: the archive expands beyond {limits.max_total_bytes / 1024**3:.1f} GB.")
            if not any(tmp.iterdir()):
                raise DataError(f"{label}: no images found in the archive; expected {expected}"
                                + (f" ({len(done.skipped)} member(s) skipped)" if done.skipped else "") + ".")
            atomic_write_json(class_root(tmp) / IMPORT_RECORD, {"skipped": [asdict(x) for x in done.skipped],
                                                                "downscaled": done.downscaled, "max_side": max_side})
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        return scan(dest, name=label, progress=progress, prime_size=prime_size)
    except DataError as exc:  # e.g. images but no class folders: refuse the archive, keep nothing
        shutil.rmtree(dest, ignore_errors=True)
        raise DataError(f"{label}: {str(exc).removeprefix(str(dest)).lstrip()}") from exc


def _open_archive(source: bytes | Path, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        # NotImplementedError: a member needs a newer zip format (its "version needed" is above 6.3)
        raise DataError(f"{label}: not a readable zip archive ({exc}).") from exc


def _check_declared(infos: list[zipfile.ZipInfo], limits: ZipLimits, label: str) -> None:
    """Refuse an archive whose directory alone is over the limits, before anything is read."""
    if len(infos) > limits.max_entries:
        raise DataError(f"{label}: the archive has {len(infos):,} entries; the limit is {limits.max_entries:,}. "
                        f"Split it into smaller archives.")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_bytes:
        raise DataError(f"{label}: the archive expands to {declared / 1024**3:.1f} GB; the limit is "
                        f"{limits.max_total_bytes / 1024**3:.1f} GB.")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, tmp: Path, limits: ZipLimits, label: str,
             done: _Imported, max_side: int | None) -> int:
    """Write one member under `tmp` if it is a safe, readable image (downscaled to max_side), else note
    why it was skipped; returns the bytes read (they count against the archive's limit even when not
    written)."""
    found = _read_image(archive, info, limits, done.skipped)
    if found is None:
        return 0
    parts, member, content = found
    smaller = downscaled(content, member, max_side) if max_side else None
    problem = _write_member(tmp, parts, smaller or content, member, label)
    if problem:
        done.skipped.append(problem)
    elif smaller:
        done.downscaled += 1
    return len(content)


def _read_image(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits,
                skipped: list[Skipped]) -> tuple[list[str], str, bytes] | None:
    """(path parts, member name, bytes) of a safe member with an image extension; None for anything else,
    noted in `skipped` with its reason unless it is a folder or junk (.DS_Store, __MACOSX)."""
    parts = [normalise(p) for p in PurePosixPath(info.filename.replace("\\", "/")).parts]
    if not parts or info.is_dir():  # a name cut to nothing at a NUL byte has no parts
        return None
    member = "/".join(parts).replace("//", "/")
    reason = _unsafe_reason(info, limits)  # before the junk test: '..' looks hidden
    if reason:
        skipped.append(Skipped(name=member, reason=reason, detail="archive member not extracted"))
        return None
    if is_junk(parts):
        return None
    if PurePosixPath(member).suffix.lower() not in IMAGE_EXTENSIONS:
        skipped.append(Skipped(name=member, reason="not an image", detail="extension is not an image type"))
        return None
    try:
        return parts, member, _read_bounded(archive, info, info.file_size)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, ValueError,
            zlib.error) as exc:  # what a damaged member can raise while it is read
        skipped.append(Skipped(name=member, reason="corrupt", detail=f"cannot read archive member ({exc})"))
    except RuntimeError as exc:  # zipfile raises RuntimeError for encrypted members
        skipped.append(Skipped(name=member, reason="encrypted", detail=str(exc)))
    return None


def zip_images(source: bytes | Path, label: str, skipped: list[Skipped],
               limits: ZipLimits = ZipLimits()) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of every safe image member of a zip in any folder layout, read one at a time
    under the same limits as import_zip; what is skipped is appended to `skipped` with its reason."""
    with _open_archive(source, label) as archive:
        infos = archive.infolist()
        _check_declared(infos, limits, label)
        read = 0
        for info in infos:
            found = _read_image(archive, info, limits, skipped)
            if found is None:
                continue
            read += len(found[2])
            if read > limits.max_total_bytes:
                raise DataError(f"{label}: the archive expands beyond {limits.max_total_bytes / 1024**3:.1f} GB.")
            yield found[1], found[2]


def _write_member(tmp: Path, parts: list[str], content: bytes, member: str, label: str) -> Skipped | None:
    """Write the member's bytes at tmp/parts; why not, where its name cannot be used."""
    target = tmp.joinpath(*parts)
    if tmp.resolve() not in target.resolve().parents:  # belt and braces against path tricks
        return Skipped(name=member, reason="unsafe path", detail="would be written outside the dataset folder")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
        return Skipped(name=member, reason="name too long", detail=f"a name part is over {MAX_NAME_BYTES} bytes")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return Skipped(name=member, reason="duplicate name", detail="another member has the same name")
        target.write_bytes(content)
    except OSError as exc:
        if exc.errno not in (errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ, errno.EEXIST, errno.ENOTDIR,
                             errno.EISDIR):
            raise DataError(f"{label}: cannot write {member} ({exc.strerror}); check free disk space.") from exc
        return Skipped(name=member, reason="unusable name", detail=f"cannot be saved under this name ({exc.strerror})")
    return None
