"""Phone photos: decoded at the size the model needs, scanned on every core, downscaled on import."""

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data import decode
from core.data.archive import COPY_MAX_SIDE, import_zip
from core.data.scan import scan_folder
from core.data.sources import MAX_ZIP_BYTES, check_zip_size
from core.errors import DataError


def photo(width=4032, height=3024, seed=0) -> bytes:
    """A photo-like JPEG: a real photograph (scikit-image's cat) upscaled to phone size, shifted, with noise."""
    from skimage import data

    rng = np.random.default_rng(seed)
    base = np.asarray(Image.fromarray(data.chelsea()).resize((width, height), Image.BICUBIC)).astype(np.int16)
    base = np.roll(base, (seed * 37, seed * 53), axis=(0, 1)) + rng.integers(-8, 9, base.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=92)
    return out.getvalue()


@pytest.fixture(scope="module")
def phone_jpeg():
    return photo()


def test_a_phone_jpeg_decodes_at_a_reduced_scale_within_one_level(phone_jpeg):
    img = decode.open_image(phone_jpeg, "p.jpg", target=224)
    assert img.size == (1008, 756)  # 1/4: the smallest DCT scale still at least twice 224 on both sides
    fast = decode.load_array(phone_jpeg, 224).astype(float)
    full = np.asarray(decode.open_image(phone_jpeg, "p.jpg").resize((224, 224), Image.BICUBIC)).astype(float)
    assert decode.open_image(phone_jpeg, "p.jpg").size == (4032, 3024)
    assert np.abs(fast - full).mean() < 1.0


def test_small_images_decode_exactly_as_before():
    pixels = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG")
    full = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB").resize((224, 224), Image.BICUBIC))
    assert np.array_equal(decode.load_array(out.getvalue(), 224), full)  # under twice the size: no draft


def test_the_scan_checks_files_in_parallel_in_a_fixed_order(tmp_path, phone_jpeg):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(20):
            Image.new("RGB", (40, 30), (i * 10, 40 if label == "a" else 200, 0)).save(tmp_path / label / f"{i:02d}.png")
    (tmp_path / "a" / "photo.jpg").write_bytes(phone_jpeg)
    (tmp_path / "b" / "cut.jpg").write_bytes(phone_jpeg[:len(phone_jpeg) // 2])
    seen = []
    ds = scan_folder(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert [i.relpath for i in ds.items] == sorted(i.relpath for i in ds.items) and len(ds.items) == 41
    assert ds.items[-21].sha256 == hashlib.sha256(phone_jpeg).hexdigest()
    assert [(s.name, s.reason) for s in ds.skipped] == [("b/cut.jpg", "corrupt")]
    assert seen[-1] == (42, 42) and len(seen) >= 3


def test_zip_import_downscales_the_studios_copy_and_says_so(tmp_path, phone_jpeg):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pets/cats/0.jpg", phone_jpeg)
        zf.writestr("pets/cats/1.jpg", photo(800, 600, seed=1))
        zf.writestr("pets/dogs/0.jpg", photo(2000, 1500, seed=2))
        zf.writestr("pets/dogs/1.jpg", photo(800, 600, seed=3))
        zf.writestr("../escape.jpg", b"never written")
    data = buf.getvalue()
    ds = import_zip(data, tmp_path / "pets", name="pets")
    sizes = {i.relpath: Image.open(i.path).size for i in ds.items}
    assert sizes == {"cats/0.jpg": (1024, 768), "cats/1.jpg": (800, 600), "dogs/0.jpg": (1024, 768),
                     "dogs/1.jpg": (800, 600)}
    assert ds.notes == ("2 image(s) were downscaled to at most 1024 px on the long side in the studio's copy; "
                        "the zip itself is unchanged.",)
    again = scan_folder(ds.root)  # the app rescans the unpacked folder later: the note stays
    assert again.notes == ds.notes and [i.relpath for i in again.items] == [i.relpath for i in ds.items]
    assert [(x.name, x.reason) for x in again.skipped] == [("../escape.jpg", "unsafe path")] == [
        (x.name, x.reason) for x in ds.skipped]
    copy = decode.load_array(ds.items[0].path, 224).astype(float)
    original = decode.load_array(phone_jpeg, 224).astype(float)
    assert np.abs(copy - original).mean() < 2.0  # what the model sees barely changes
    assert COPY_MAX_SIDE == 1024 and buf.getvalue() == data


def test_a_zip_over_the_upload_limit_gets_a_clear_message():
    check_zip_size("photos.zip", MAX_ZIP_BYTES)
    with pytest.raises(DataError, match=r"photos.zip: 1.50 GB is over the 1 GB limit for an uploaded zip; split it"):
        check_zip_size("photos.zip", int(1.5 * 1000**3))


def test_a_primed_scan_leaves_training_no_photo_to_decode(tmp_path, phone_jpeg, monkeypatch):
    from core.data import arrays

    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "photo.jpg").write_bytes(phone_jpeg)
    Image.new("RGB", (30, 20), (200, 10, 10)).save(tmp_path / "data" / "a" / "small.png")  # cheap: not kept
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))  # the scan primes an empty cache of its own
    cache = arrays.DEFAULT_CACHE
    ds = scan_folder(tmp_path / "data", prime_size=224)
    decoded = []
    real = arrays.load_array
    monkeypatch.setattr(arrays, "load_array", lambda path, *a, **k: decoded.append(path) or real(path, *a, **k))
    loaded = arrays.item_arrays(ds.items, 224, cache=cache)
    assert decoded == [str(tmp_path / "data" / "a" / "small.png")]
    assert np.array_equal(loaded[0], decode.load_array(phone_jpeg, 224))  # the same pixels as a decode
