"""A hostile-input corpus, generated (nothing binary is committed): malformed and adversarial
images and zip archives. Each case is (name, bytes, expected) where expected is a set of
acceptable outcomes: "ok" (usable) or the reason a file is refused or skipped with."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "bmp": "BMP", "tif": "TIFF", "webp": "WEBP"}
BAD = {"corrupt", "not an image", "unsupported format", "too many pixels", "too large"}


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def base_image(seed: int = 0, size=(32, 24)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height, with one empty IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"")) + \
        png_chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    """A real, complete 1-bit PNG of width x height zeros: a few KB that would decode to gigabytes in RGB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def gif_header_only(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x2c" + struct.pack(
        "<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x44\x01\x00\x3b"


def bmp_header_only(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + info + b"\x00" * 16


def exif_jpeg(orientation_bytes: bytes) -> bytes:
    """A JPEG whose EXIF block is built by hand (orientation tag 0x0112 with the given 2-byte value)."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01" + \
        orientation_bytes + b"\x00\x00" + b"\x00\x00\x00\x00"
    return encode(base_image(3, (20, 12)), "JPEG", exif=b"Exif\x00\x00" + tiff)


def image_cases() -> list[tuple[str, bytes, set[str]]]:
    cases: list[tuple[str, bytes, set[str]]] = []
    img = base_image()
    valid = {ext: encode(img, fmt) for ext, fmt in FORMATS.items()}
    # Truncation at five points per format.
    for ext, data in valid.items():
        for cut in (0, 8, len(data) // 4, len(data) // 2, 3 * len(data) // 4):
            cases.append((f"truncated-{cut}.{ext}", data[:cut], BAD | ({"ok"} if ext in ("bmp", "tif") else set())))
    # Wrong extensions: a real image of each format under every other format's extension (usable).
    for ext, data in valid.items():
        for other in FORMATS:
            if other != ext:
                cases.append((f"{ext}-named.{other}", data, {"ok"}))
    # Things that are not images at all, named as images.
    not_images = {"empty": b"", "text": b"hello, I am a text file\n" * 20, "html": b"<!doctype html><img src=x>",
                  "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "elf": b"\x7fELF\x02\x01\x01" + bytes(64),
                  "zip": b"PK\x03\x04" + bytes(40), "nul": bytes(4096), "svg": b"<svg xmlns='x'><rect/></svg>",
                  "eps": encode(Image.new("RGB", (8, 8)), "EPS") if _has_ghostscript_free_eps() else b"%!PS-Adobe-3.0",
                  "random": np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes(),
                  "png-signature-only": b"\x89PNG\r\n\x1a\n", "jpeg-soi-only": b"\xff\xd8\xff\xe0"}
    for label, data in not_images.items():
        for ext in ("png", "jpg"):
            cases.append((f"{label}.{ext}", data, BAD))
    # Odd modes, each usable once converted to RGB.
    modes = {"1": "png", "L": "png", "LA": "png", "P": "png", "RGBA": "png", "I": "png", "I;16": "png", "F": "tif",
             "CMYK": "jpg", "YCbCr": "jpg", "RGBX": "tif", "La": "tif"}
    for mode, ext in modes.items():
        try:
            data = encode(img.convert(mode) if mode not in ("La",) else img.convert("LA"), FORMATS[ext])
        except (OSError, ValueError):
            continue
        cases.append((f"mode-{mode.replace(';', '_')}.{ext}", data, {"ok"}))
    pal = img.convert("P")
    cases.append(("palette-transparent.png", encode(pal, "PNG", transparency=0), {"ok"}))
    cases.append(("animated.gif", encode(img, "GIF", save_all=True, append_images=[base_image(s) for s in (1, 2, 3)],
                                          duration=50, loop=0), {"ok"}))
    cases.append(("animated.png", encode(img, "PNG", save_all=True, append_images=[base_image(4)]), {"ok"}))
    cases.append(("one-pixel.png", encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), {"ok"}))
    cases.append(("tall-1x5000.png", encode(Image.new("L", (1, 5000), 77), "PNG"), {"ok"}))
    cases.append(("wide-5000x1.png", encode(Image.new("L", (5000, 1), 77), "PNG"), {"ok"}))
    # Huge dimensions claimed by headers, and real decompression bombs.
    for w, h in ((30000, 30000), (1, 40_000_001), (65535, 65535), (2**31 - 1, 2), (0, 10), (10, 0)):
        cases.append((f"header-{w}x{h}.png", png_header_only(w, h), {"too many pixels", "corrupt", "not an image"}))
    for w, h in ((65535, 65535), (20000, 3000)):
        cases.append((f"header-{w}x{h}.gif", gif_header_only(w, h), {"too many pixels", "corrupt"}))
    for w, h in ((50000, 50000), (8000, -8000)):
        cases.append((f"header-{w}x{h}.bmp", bmp_header_only(w, h), {"too many pixels", "corrupt"}))
    cases.append(("bomb-8000x8000.png", png_bomb(8000, 8000), {"too many pixels"}))
    cases.append(("bomb-40000x2000.png", png_bomb(40000, 2000), {"too many pixels"}))
    # EXIF: every orientation value, invalid ones, and a damaged EXIF block.
    for value in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 65535):
        cases.append((f"exif-orientation-{value}.jpg", exif_jpeg(struct.pack(">H", value)), {"ok"}))
    for seed in range(3):
        junk = np.random.default_rng(seed).integers(0, 256, 64, dtype=np.uint8).tobytes()
        cases.append((f"exif-garbage-{seed}.jpg", encode(img, "JPEG", exif=b"Exif\x00\x00" + junk), {"ok"} | BAD))
    # Seeded random corruption of valid files: anything but a crash is acceptable.
    rng = np.random.default_rng(7)
    for i in range(42):
        ext = list(FORMATS)[i % len(FORMATS)]
        data = bytearray(valid[ext])
        for pos in rng.integers(0, len(data), 1 + i % 5):
            data[pos] = int(rng.integers(0, 256))
        cases.append((f"flipped-{i}.{ext}", bytes(data), {"ok"} | BAD))
    return cases


def _has_ghostscript_free_eps() -> bool:
    return False  # writing EPS needs Ghostscript; a PostScript header is enough to test refusal


# ---------- archives ----------

def make_zip(entries: list, compression=zipfile.ZIP_DEFLATED, comment: bytes = b"") -> bytes:
    """entries: (name or ZipInfo, bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            z.writestr(name, data)
        z.comment = comment
    return buf.getvalue()


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16)
    return info


def patch_names(data: bytes, placeholder: bytes, raw: bytes) -> bytes:
    """Replace a member name's bytes in both headers: names no encoder would write (not UTF-8)."""
    assert len(placeholder) == len(raw)
    return data.replace(placeholder, raw)


def mark_encrypted(data: bytes, name: str | None = None) -> bytes:
    """Set the 'encrypted' flag bit of member `name` (every member if None) in the local and central
    headers: zipfile cannot write encrypted members, but readers must refuse them."""
    out = bytearray(data)
    for sig, flag_offset, name_len_offset, name_offset in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        start = 0
        while (i := out.find(sig, start)) >= 0:
            length = struct.unpack("<H", out[i + name_len_offset:i + name_len_offset + 2])[0]
            if name is None or out[i + name_offset:i + name_offset + length] == name.encode():
                out[i + flag_offset] |= 0x1
            start = i + 4
    return bytes(out)


def archive_cases() -> list[tuple[str, bytes, set[str]]]:
    """(name, zip bytes, expected): expected holds skip reasons that must appear, or {"error"} when the
    whole archive must be refused with a DataError, or {"ok"} when it imports cleanly."""
    png = encode(base_image(), "PNG")
    good = [("cats/a.png", png), ("dogs/b.png", encode(base_image(5), "PNG"))]
    cases: list[tuple[str, bytes, set[str]]] = []
    for bad in ("../evil.png", "cats/../../evil.png", "/etc/evil.png", "C:/evil.png", "..\\evil.png",
                "cats/..\\..\\evil.png", "a/b/../../../evil.png", "\\\\server\\share\\evil.png"):
        cases.append((f"slip {bad!r}", make_zip(good + [(bad, png)]), {"unsafe path"}))
    for target in ("cats/link.png", "dogs/deep/link.png"):
        cases.append((f"symlink {target}", make_zip(good + [(symlink_info(target), b"/etc/passwd")]),
                      {"symbolic link"}))
    cases.append(("encrypted member", mark_encrypted(make_zip(good + [("cats/e.png", png)]), "cats/e.png"),
                  {"encrypted"}))
    cases.append(("every member encrypted", mark_encrypted(make_zip(good)), {"error"}))
    for depth in (17, 40, 120):
        deep = "/".join(["d"] * depth) + "/x.png"
        cases.append((f"nested {depth} deep", make_zip(good + [(deep, png)]), {"nested too deep"}))
    for raw in (b"\xff\xfe\x81\x8d", b"\xe9t\xe9\xa0", b"\x82\xa0\x82\xa2", b"\xc3\x28\xa0\xa1"):
        data = patch_names(make_zip(good + [("cats/QQQQ.png", encode(base_image(9), "PNG"))]), b"QQQQ", raw)
        cases.append((f"non-UTF-8 name {raw!r}", data, {"ok"}))
    bad_utf8 = make_zip(good + [("cats/\u00e9QQ.png", encode(base_image(10), "PNG"))])
    cases.append(("UTF-8 flag with invalid bytes", bad_utf8.replace("\u00e9QQ".encode(), b"\xff\xfeQQ"[:4]),
                  {"ok", "error"}))
    cases.append(("name part over 255 bytes", make_zip(good + [("cats/" + "n" * 300 + ".png", png)]),
                  {"name too long"}))
    cases.append(("control characters", make_zip(good + [("cats/\x01\x02\n\t.png", encode(base_image(11), "PNG"))]),
                  {"ok"}))
    cases.append(("backslash separators", make_zip(good + [("cats\\c.png", encode(base_image(12), "PNG"))]), {"ok"}))
    cases.append(("zip inside zip", make_zip(good + [("cats/inner.zip", make_zip(good))]), {"not an image"}))
    cases.append(("ratio bomb", make_zip(good + [("cats/bomb.png", bytes(8 * 1024**2))]),
                  {"suspicious compression ratio"}))
    cases.append(("too many entries", make_zip([(f"c{i % 2}/{i}.png", b"x") for i in range(150)]), {"error"}))
    cases.append(("empty archive", make_zip([]), {"error"}))
    cases.append(("not a zip", b"this is not a zip archive" * 10, {"error"}))
    whole = make_zip(good)
    for cut in (0, 22, len(whole) // 3, len(whole) // 2, len(whole) - 10):
        cases.append((f"truncated at {cut}", whole[:cut], {"error"}))
    cases.append(("folders only", make_zip([("cats/", b""), ("dogs/", b"")]), {"error"}))
    cases.append(("images at top level", make_zip([("a.png", png), ("b.png", encode(base_image(6), "PNG"))]),
                  {"error", "not in a class folder"}))
    cases.append(("one class", make_zip([("cats/a.png", png), ("cats/b.png", encode(base_image(7), "PNG"))]),
                  {"ok"}))
    cases.append(("duplicate names", make_zip(good + [("cats/a.png", encode(base_image(8), "PNG"))]),
                  {"duplicate name"}))
    crc = bytearray(make_zip(good + [("cats/c.png", encode(base_image(13), "PNG"))], zipfile.ZIP_STORED))
    at = crc.rfind(encode(base_image(13), "PNG")[:16]) + 40
    crc[at] ^= 0xFF
    cases.append(("CRC mismatch", bytes(crc), {"corrupt"}))
    method = bytearray(make_zip(good + [("cats/m.png", png)], zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = method.rfind(sig)
        method[i + offset] = 99  # an unknown compression method
    cases.append(("unknown compression method", bytes(method), {"corrupt"}))
    cases.append(("macOS clutter", make_zip(good + [("__MACOSX/cats/._a.png", b"junk"), ("cats/.DS_Store", b"x")]),
                  {"ok"}))
    cases.append(("garbage comment", make_zip(good, comment=bytes(range(256)) * 200), {"ok"}))
    cases.append(("dot names", make_zip(good + [("cats/./x.png", encode(base_image(14), "PNG")), ("..", png)]),
                  {"unsafe path"}))
    cases.append(("truncated image inside", make_zip(good + [("cats/t.png", png[: len(png) // 2])]), {"corrupt"}))
    cases.append(("text named png inside", make_zip(good + [("dogs/t.png", b"plain text")]), {"not an image"}))
    cases.append(("header bomb inside", make_zip(good + [("dogs/h.png", png_header_only(30000, 30000))]),
                  {"too many pixels"}))
    cases.append(("non-image extension", make_zip(good + [("cats/readme.txt", b"hi")]), {"not an image"}))
    return cases
