"""Datasets: decoding odd images, hostile archives, folders, sampling, splits, augmentation."""

import io
import os
import stat
import time
import unicodedata
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from core.data.archive import ZipLimits, import_zip
from core.data.arrays import ArrayCache, item_arrays
from core.data.augment import AugmentConfig, previews
from core.data.decode import MAX_PIXELS, VALIDATION_SIZE, ImageDecodeError, load_array, open_image
from core.data.sampling import sample, split
from core.data.scan import scan_folder
from core.data.sources import DEMOS, add_labelled_files, demo_folder, load_dataset
from core.errors import DataError
from tests.hostile import mark_encrypted, png_header_only


def png_bytes(array, mode=None, **save_args) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG", **save_args)
    return buf.getvalue()


def jpeg_bytes(array, **save_args) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", **save_args)
    return buf.getvalue()


def solid(color, size=(16, 16)):
    return np.full((*size, 3), color, dtype=np.uint8)


def make_zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                zf.writestr(entry, b"x")
            else:
                name, data = entry
                zf.writestr(name, data)
    return buf.getvalue()


def class_folders(root: Path, spec: dict[str, int], size=(16, 16)):
    """Solid-colour class folders, each image a slightly different shade (so no duplicates)."""
    colors = {0: (220, 40, 40), 1: (40, 200, 40), 2: (40, 40, 220), 3: (200, 200, 40)}
    for c, (label, n) in enumerate(spec.items()):
        (root / label).mkdir(parents=True, exist_ok=True)
        base = np.array(colors[c % 4])
        for i in range(n):
            Image.fromarray(solid(np.clip(base + i, 0, 255), size)).save(root / label / f"{label}_{i:03d}.png")
    return root


# ---------- decoding ----------

@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "CMYK", "L", "1", "F"])
def test_odd_modes_become_rgb(mode):
    base = Image.fromarray(solid((200, 100, 50), (20, 30)))
    img = base.convert("L").convert(mode) if mode in ("I;16", "F", "1", "LA") else base.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if mode in ("CMYK", "I;16", "F") else "PNG")
    out = open_image(buf.getvalue(), f"x.{mode}")
    assert out.mode == "RGB" and out.size == (30, 20)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    arr = np.asarray(open_image(png_bytes(rgba, "RGBA")))
    assert (arr == 255).all()


def test_sixteen_bit_keeps_its_range():
    data = np.full((8, 8), 65535, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(data).save(buf, format="PNG")
    assert np.asarray(open_image(buf.getvalue())).min() == 255


def test_exif_rotation_is_applied():
    img = Image.fromarray(solid((10, 20, 30), (20, 40)))  # 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert open_image(buf.getvalue()).size == (20, 40)


def test_animated_gif_uses_first_frame():
    frames = [Image.fromarray(solid(c)) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    arr = np.asarray(open_image(buf.getvalue()))
    assert arr[..., 0].mean() > 200 and arr[..., 2].mean() < 50


def test_huge_dimensions_are_refused_before_decoding():
    start = time.monotonic()
    with pytest.raises(ImageDecodeError, match="huge.png: .*over the 40 megapixel limit") as info:
        open_image(png_header_only(30000, 30000), "huge.png")
    assert info.value.reason == "too many pixels"
    assert time.monotonic() - start < 5
    assert MAX_PIXELS < 30000 * 30000


@pytest.mark.parametrize("data,reason", [
    (b"just some text, not a picture", "not an image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "unsupported format"),
    (b"", "not an image"),
])
def test_non_images_are_named(data, reason):
    with pytest.raises(ImageDecodeError, match="notes.jpg") as info:
        open_image(data, "notes.jpg")
    assert info.value.reason == reason


def test_truncated_jpeg_is_corrupt():
    data = jpeg_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ImageDecodeError, match="cut.jpg: corrupt or truncated") as info:
        open_image(data[: len(data) // 2], "cut.jpg", target=VALIDATION_SIZE)
    assert info.value.reason == "corrupt"


def test_load_array_resizes_and_names_missing_files(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(solid((1, 2, 3), (5, 7))))
    assert load_array(path, 32).shape == (32, 32, 3)
    with pytest.raises(ImageDecodeError, match="missing.png: cannot read file"):
        load_array(tmp_path / "missing.png", 32)


# ---------- zip archives ----------

def test_zip_with_hostile_members(tmp_path):
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    good = png_bytes(solid((200, 10, 10)))
    entries = [
        ("data/cats/a.png", good), ("data/cats/b.png", png_bytes(solid((201, 10, 10)))),
        ("data/dogs/c.png", png_bytes(solid((10, 200, 10)))), ("data/dogs/d.png", png_bytes(solid((10, 201, 10)))),
        ("../evil.png", good), ("/abs/evil.png", good), ("data/../../evil2.png", good),
        link, ("data/cats/secret.png", good),
        ("__MACOSX/data/cats/._a.png", b"junk"), ("data/.DS_Store", b"junk"),
        ("data/cats/readme.txt", b"hello"), ("data/dogs/fake.jpg", b"text pretending"),
    ]
    dest = tmp_path / "datasets" / "pets"
    start = time.monotonic()
    ds = import_zip(mark_encrypted(make_zip(entries), "data/cats/secret.png"), dest)
    assert time.monotonic() - start < 5
    assert ds.counts() == {"cats": 2, "dogs": 2}
    reasons = {s.name: s.reason for s in ds.skipped}
    assert reasons["../evil.png"] == "unsafe path"
    assert reasons["/abs/evil.png"] == "unsafe path"
    assert reasons["data/../../evil2.png"] == "unsafe path"
    assert reasons["cats/link.png"] == "symbolic link"
    assert reasons["data/cats/secret.png"] == "encrypted"
    assert reasons["data/cats/readme.txt"] == "not an image"
    assert reasons["dogs/fake.jpg"] == "not an image"
    assert not any("MACOSX" in s.name or "DS_Store" in s.name for s in ds.skipped)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "datasets" / "evil2.png").exists()
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(w.startswith("datasets/pets/") for w in written), written


def test_zip_bomb_is_refused_quickly(tmp_path):
    buf = io.BytesIO()
    with (zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
          zf.open("bomb/zeros.png", "w", force_zip64=True) as member):
        chunk = b"\0" * (16 * 1024**2)
        for _ in range(64):  # 1 GiB of zeros
            member.write(chunk)
    rss_before = psutil.Process().memory_info().rss
    start = time.monotonic()
    with pytest.raises(DataError, match="no images found.*1 member"):
        import_zip(buf.getvalue(), tmp_path / "bomb")
    assert time.monotonic() - start < 5
    assert psutil.Process().memory_info().rss - rss_before < 200 * 1024**2
    assert not any(tmp_path.iterdir())


def test_zip_member_lying_about_its_size_is_stopped(tmp_path):
    data = make_zip([("a/x.png", png_bytes(solid((1, 1, 1)))), ("b/y.png", png_bytes(solid((2, 2, 2))))])
    limits = ZipLimits(max_member_bytes=50)  # smaller than the real members
    with pytest.raises(DataError, match="no images found"):
        import_zip(data, tmp_path / "small", limits=limits)


def test_zip_with_100000_entries_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(100_000):
            zf.writestr(f"c/{i}.png", b"")
    start = time.monotonic()
    with pytest.raises(DataError, match="100,000 entries; the limit is 20,000"):
        import_zip(buf.getvalue(), tmp_path / "many")
    assert time.monotonic() - start < 5
    assert not (tmp_path / "many").exists()


def test_not_a_zip(tmp_path):
    with pytest.raises(DataError, match="upload.zip: not a readable zip archive"):
        import_zip(b"PK\x03\x04 nope", tmp_path / "x", name="upload.zip")


# ---------- folders ----------

def test_folder_scan_reports_every_problem(tmp_path):
    root = class_folders(tmp_path / "ds", {"cats": 3, "dogs": 12})
    (root / "cats" / "nested").mkdir()
    (root / "cats" / "nested" / "deep.png").write_bytes(png_bytes(solid((90, 90, 90))))
    (root / "cats" / "huge.png").write_bytes(png_header_only(30000, 30000))
    (root / "cats" / "notes.jpg").write_text("not an image")
    (root / "cats" / "vector.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    full = jpeg_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (root / "dogs" / "cut.jpg").write_bytes(full[: len(full) // 2])
    (root / "dogs" / "copy.png").write_bytes((root / "cats" / "cats_000.png").read_bytes())
    (root / "cats" / "cats_000_again.png").write_bytes((root / "cats" / "cats_000.png").read_bytes())
    (root / "single").mkdir()
    (root / "single" / "only.png").write_bytes(png_bytes(solid((5, 5, 250))))
    (root / "empty").mkdir()
    (root / "loose.png").write_bytes(png_bytes(solid((0, 0, 0))))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(b"junk")
    os.symlink(root / "cats" / "cats_001.png", root / "dogs" / "link.png")

    ds = scan_folder(root)
    reasons = {s.name: s.reason for s in ds.skipped}
    assert ds.counts() == {"cats": 4, "dogs": 12, "single": 1}
    assert reasons["cats/huge.png"] == "too many pixels"
    assert reasons["cats/notes.jpg"] == "not an image"
    assert reasons["cats/vector.png"] == "unsupported format"
    assert reasons["dogs/cut.jpg"] == "corrupt"
    assert reasons["loose.png"] == "not in a class folder"
    assert reasons["dogs/link.png"] == "exact duplicate"  # a link to an image is followed (README): to cats_001
    dupes = {s.name: s.detail for s in ds.skipped if s.reason == "exact duplicate"}
    assert set(dupes) == {"cats/cats_000_again.png", "dogs/copy.png", "dogs/link.png"}
    assert "class 'cats'" in dupes["dogs/copy.png"]
    assert not any(".hidden" in s.name for s in ds.skipped)
    assert any("'empty' has no usable images" in w for w in ds.warnings)
    assert any("fewer than 10 images" in w and "single (1)" in w for w in ds.warnings)
    with pytest.raises(DataError, match="class 'single' has 1 image; each class needs at least 2"):
        split(ds.items)


def test_class_names_are_nfc(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    data = make_zip([(f"{nfc}/a.png", png_bytes(solid((1, 2, 3)))), (f"{nfd}/b.png", png_bytes(solid((4, 5, 6)))),
                     ("tea/c.png", png_bytes(solid((7, 8, 9)))), ("tea/d.png", png_bytes(solid((9, 8, 7))))])
    ds = import_zip(data, tmp_path / "cafe")
    assert ds.counts() == {nfc: 2, "tea": 2}


def test_labelled_uploads(tmp_path):
    add_labelled_files("mine", "left", [("a.png", png_bytes(solid((1, 1, 1)))), ("b.png", png_bytes(solid((2, 2, 2))))])
    ds = add_labelled_files("mine", "right", [("../../a.png", png_bytes(solid((3, 3, 3))))])
    assert ds.counts() == {"left": 2, "right": 1}
    assert all(Path(i.path).is_relative_to(Path(ds.root)) for i in ds.items)
    with pytest.raises(DataError, match="Class name '../x' is not usable"):
        add_labelled_files("mine", "../x", [])


def test_demo_datasets_and_load_dataset_errors(tmp_path):
    digits = load_dataset("digits")
    assert len(digits) == DEMOS["digits"].images and len(digits.classes) == 10 and not digits.skipped
    faces = load_dataset("faces")
    assert faces.counts() == {"face": 100, "non-face": 100}
    assert (demo_folder("digits") / ".complete").is_file()
    with pytest.raises(DataError, match="not found: expected a demo name"):
        load_dataset(str(tmp_path / "nothing"))


# ---------- sampling and splits ----------

def test_sampling_is_stratified_seeded_and_reports_share():
    ds = load_dataset("digits")
    a, b, c = (sample(ds, per_class=20, seed=s) for s in (0, 0, 1))
    assert a.items == b.items and a.items != c.items
    assert set(a.per_class.values()) == {20} and len(a.items) == 200
    assert a.describe() == "200 images - 11% of 1,797"
    half = sample(ds, fraction=0.5, seed=0)
    assert abs(len(half.items) - 898) <= 10
    big = sample(ds, per_class=10_000)
    assert big.per_class == ds.counts()
    with pytest.raises(DataError, match="not both"):
        sample(ds, per_class=3, fraction=0.5)


def test_split_is_stratified_seeded_and_never_shares_a_duplicate():
    ds = load_dataset("digits")
    items = list(sample(ds, per_class=30, seed=0).items)
    # Duplicate bytes inside a class, as a hand-built dataset could have them.
    items += [replace(items[0], path=items[0].path + "#copy", relpath=items[0].relpath + "#copy")]
    s1, s2, s3 = split(items, 0.2, 0.1, seed=0), split(items, 0.2, 0.1, seed=0), split(items, 0.2, 0.1, seed=7)
    assert s1 == s2 and s1 != s3
    hashes = [{i.sha256 for i in part} for part in (s1.train, s1.val, s1.test)]
    assert not (hashes[0] & hashes[1]) and not (hashes[0] & hashes[2]) and not (hashes[1] & hashes[2])
    for label in ds.classes:
        n_val = sum(1 for i in s1.val if i.label == label)
        n_test = sum(1 for i in s1.test if i.label == label)
        assert n_val == 6 and n_test == 3
    assert len(s1.train) + len(s1.val) + len(s1.test) == len(items)
    again = type(s1).from_json(s1.to_json(), ds.root)
    assert [i.relpath for i in again.train] == [i.relpath for i in s1.train]


def test_two_image_classes_still_validate():
    ds = load_dataset("faces")
    tiny = sample(ds, per_class=2, seed=0)
    s = split(tiny.items, 0.2, 0.1, seed=0)
    assert len(s.val) == 2 and len(s.train) == 2 and len(s.test) == 0


# ---------- arrays and augmentation ----------

def test_a_store_under_its_bound_is_listed_once_and_kept_within_it_when_it_grows(tmp_path, monkeypatch):
    """Issue 44: a 20,000-image store was listed after every chunk; now only when it could pass the bound."""
    from core.data.npy_cache import NpyCache

    cache = NpyCache(tmp_path / "store", max_bytes=10 * 1024)
    listed = []
    files = cache._files
    monkeypatch.setattr(cache, "_files", lambda: listed.append(1) or files())
    for i in range(3):
        cache.put("s", f"{i:064x}", np.zeros(100, np.uint8))  # 228 bytes a file
        cache.evict()
    assert len(listed) == 1, "listed once, then counted"
    for i in range(3, 60):
        cache.put("s", f"{i:064x}", np.zeros(100, np.uint8))
        cache.evict()
    assert cache.nbytes <= 10 * 1024 and len(listed) < 10


def test_array_cache_is_bounded_and_a_second_load_decodes_nothing(tmp_path, monkeypatch):
    import core.data.arrays as arrays_module

    ds = scan_folder(class_folders(tmp_path / "c", {"a": 5, "b": 5}))
    one = 32 * 32 * 3 + 128  # an .npy file: header and pixels
    cache = ArrayCache(tmp_path / "cache", max_bytes=one * 4)
    arrays = item_arrays(ds.items, 32, cache=cache)
    assert arrays.shape == (10, 32, 32, 3) and arrays.dtype == np.uint8
    assert cache.nbytes == one * 3  # the oldest seven were evicted: down to LOW_WATER of the bound
    assert (arrays[0] == arrays[0, 0, 0]).all()  # solid colour survives the resize
    big = ArrayCache(tmp_path / "big")
    first = item_arrays(ds.items, 32, cache=big)
    decoded = []
    monkeypatch.setattr(arrays_module, "load_array", lambda *a, **k: decoded.append(a) or np.zeros((32, 32, 3)))
    assert np.array_equal(item_arrays(ds.items, 32, cache=big), first) and decoded == []
    next(big.folder.rglob("*.npy")).write_bytes(b"damaged")  # a damaged file is a miss, decoded again
    item_arrays(ds.items, 32, cache=big)
    assert len(decoded) == 1


def test_augmentation_previews_vary_and_keep_shape():
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :16] = 255  # left half white: a flip is visible
    outs = previews(img, AugmentConfig.standard(), n=6, seed=0)
    assert len(outs) == 6 and all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    assert len({o.tobytes() for o in outs}) > 1
    same = previews(img, AugmentConfig(), n=2)
    assert all((o == img).all() for o in same)
    assert not AugmentConfig().enabled and AugmentConfig(zoom=0.1).enabled


def test_fused_geometry_equals_keras_layers_applied_one_after_another():
    """One composed resampling = Keras' flip, rotation, zoom and shift matrices applied in turn."""
    from tf_keras.src.layers.preprocessing.image_preprocessing import (
        get_rotation_matrix,
        get_translation_matrix,
        get_zoom_matrix,
        transform,
    )

    from core.data.geometry import compose
    from core.tf import tf

    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w] / 63.0
    smooth = np.stack([np.sin(3 * xx) * 0.5 + 0.5, yy, (xx + yy) / 2], -1).astype(np.float32)  # bilinear-friendly
    images = tf.constant(np.stack([smooth, smooth[::-1]]))
    flips = tf.constant([True, False])
    angles, zooms = tf.constant([0.5, -0.4]), tf.constant([[0.9, 0.9], [1.1, 1.1]])
    shifts = tf.constant([[8.0, -6.0], [-7.0, 9.0]])
    fused = transform(images, compose(flips, angles, zooms, shifts, float(h), float(w)), fill_mode="reflect")
    steps = tf.where(flips[:, None, None, None], tf.image.flip_left_right(images), images)
    for matrix in (get_rotation_matrix(angles, float(h), float(w)), get_zoom_matrix(zooms, float(h), float(w)),
                   get_translation_matrix(shifts)):
        steps = transform(steps, matrix, fill_mode="reflect")
    inner = (slice(None), slice(16, -16), slice(16, -16))  # away from the reflected borders
    assert np.abs(fused.numpy()[inner] - steps.numpy()[inner]).max() < 0.01  # 0.003 measured; wrong order: 0.08
    assert np.abs(fused.numpy()[inner] - images.numpy()[inner]).max() > 0.2  # and it did move the pixels


def test_numpy_transforms_equal_the_tensorflow_ones():
    """core.data.transforms (numpy, for augmenting without TensorFlow) = core.data.geometry.compose."""
    from core.data import transforms
    from core.data.geometry import compose
    from core.tf import tf

    rng = np.random.default_rng(5)
    n, h, w = 16, 48.0, 64.0
    flips, angles = rng.random(n) < 0.5, rng.uniform(-1.0, 1.0, n).astype(np.float32)
    zooms = np.repeat(rng.uniform(0.7, 1.3, (n, 1)), 2, axis=1).astype(np.float32)
    shifts = (rng.uniform(-0.3, 0.3, (n, 2)) * (w, h)).astype(np.float32)
    mine = transforms.compose(flips, angles, zooms, shifts, h, w)
    theirs = compose(tf.constant(flips), tf.constant(angles), tf.constant(zooms), tf.constant(shifts), h, w).numpy()
    assert mine.shape == (n, 8) and np.allclose(mine, theirs, rtol=1e-4, atol=1e-4)


def test_array_augmenter_resamples_as_tensorflow_does():
    """OpenCV's resample with reflected edges = TensorFlow's transform(fill_mode="reflect"), and contrast =
    tf.image.adjust_contrast, within one level of 255; and a seed gives the same changes."""
    from tf_keras.src.layers.preprocessing.image_preprocessing import transform

    from core.data.augment import ArrayAugmenter
    from core.tf import tf

    h, w = 48, 64  # not square: height and width must not be swapped
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([np.sin(xx / 7.0) * 120 + 128, yy * 5.0, (xx + yy) * 2.0], -1).clip(0, 255).astype(np.uint8)
    images = np.stack([smooth, smooth[::-1], smooth[:, ::-1]])
    big = ArrayAugmenter(AugmentConfig(flip=True, rotation=0.1, zoom=0.3, translation=0.3, contrast=0.5), seed=3)
    transforms, factors = big.draw(3, h, w)
    expected = transform(tf.constant(images, tf.float32), transforms, fill_mode="reflect").numpy()
    for i in range(3):
        expected[i] = tf.image.adjust_contrast(expected[i], factors[i]).numpy()
    got = ArrayAugmenter.apply(images, transforms, factors)
    assert np.abs(got.astype(float) - np.clip(np.rint(expected), 0, 255)).max() <= 1
    assert np.abs(got.astype(float) - images).mean() > 20  # it did change the images (edges reflected, not black)
    again = ArrayAugmenter(big.config, seed=3)
    assert np.array_equal(again(images), ArrayAugmenter(big.config, seed=3)(images))
    assert not np.array_equal(again(images), again(images))  # each call draws new changes


def test_a_rescan_reads_only_files_changed_since_the_last_one(tmp_path, monkeypatch):
    """The Data page and the worker scan the same folder seconds apart: unchanged files keep their verdict
    unread; a file changed since (or too recently to trust its time stamp) is read again."""
    import core.data.scan as scan_module

    root = class_folders(tmp_path / "ds", {"a": 4, "b": 4})
    first = scan_folder(root)
    past = time.time() - 60
    for path in root.rglob("*.png"):
        os.utime(path, (past, past))
    read = []
    check = scan_module._check
    monkeypatch.setattr(scan_module, "_check", lambda c, **k: read.append(c[1]) or check(c, **k))
    scan_folder(root)
    assert len(read) == 8  # the files were too new to trust at the first scan: read again, now remembered
    read.clear()
    again = scan_folder(root)
    assert read == [] and again.items == first.items
    (root / "b" / "b_001.png").write_bytes(b"not a png any more")
    (root / "a" / "a_002.png").unlink()
    changed = scan_folder(root)
    assert read == ["b/b_001.png"]
    assert {s.name: s.reason for s in changed.skipped} == {"b/b_001.png": "not an image"}
    assert changed.counts() == {"a": 3, "b": 3}
