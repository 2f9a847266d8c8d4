"""camutils.images: every input form becomes RGB uint8; bad inputs raise errors that help."""

import numpy as np
import pytest
import cv2

from camutils import images
from camutils.images import center_crop, collage, collage_boxes, load_image, resize, save_image, to_rgb_uint8


def _write(path, array):
    assert cv2.imwrite(str(path), array)
    return path


@pytest.fixture()
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


def test_png_round_trip_keeps_rgb_order(tmp_path, rgb):
    path = save_image(tmp_path / "a.png", rgb)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (20, 30, 3)
    np.testing.assert_array_equal(loaded, rgb)
    # on disk it is BGR: reading with OpenCV directly gives the channels reversed
    np.testing.assert_array_equal(cv2.imread(str(path))[:, :, ::-1], rgb)


def test_grayscale_file(tmp_path):
    gray = np.arange(0, 200, dtype=np.uint8).reshape(10, 20)
    loaded = load_image(_write(tmp_path / "g.png", gray))
    assert loaded.shape == (10, 20, 3)
    for c in range(3):
        np.testing.assert_array_equal(loaded[:, :, c], gray)


def test_16_bit_file_is_scaled(tmp_path):
    deep = np.full((4, 5, 3), 65535, np.uint16)
    deep[0, 0] = 0
    deep[1, 1] = 257 * 100
    loaded = load_image(_write(tmp_path / "d.png", deep))
    assert loaded.dtype == np.uint8
    assert loaded[0, 0].tolist() == [0, 0, 0]
    assert loaded[1, 1].tolist() == [100, 100, 100]
    assert loaded[2, 2].tolist() == [255, 255, 255]


def test_rgba_file_is_composited_over_white(tmp_path):
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 255  # red in BGR order
    bgra[0, 0, 3] = 255  # opaque
    bgra[0, 1, 3] = 0  # transparent
    loaded = load_image(_write(tmp_path / "t.png", bgra))
    assert loaded[0, 0].tolist() == [255, 0, 0]
    assert loaded[0, 1].tolist() == [255, 255, 255]


def test_palette_image(tmp_path):
    from PIL import Image

    palette_image = Image.new("P", (6, 3))
    palette_image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette_image.putpixel((2, 1), 1)
    palette_image.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.shape == (3, 6, 3)
    assert loaded[1, 2].tolist() == [10, 200, 30]
    assert loaded[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((2, 2), 1.0, np.float32), 255),
        (np.full((2, 2, 3), 0.5, np.float64), 128),
        (np.full((2, 2, 3), 200.0), 200),
        (np.ones((2, 2), bool), 255),
        (np.full((2, 2, 1), 7, np.int64), 7),
        (np.full((2, 2, 3), 257 * 3, np.uint16), 3),
    ],
)
def test_array_dtypes(array, expected):
    out = to_rgb_uint8(array)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert np.all(out == expected)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "no_such_photo.jpg"
    with pytest.raises(FileNotFoundError, match="no_such_photo.jpg"):
        load_image(missing)


def test_missing_file_close_to_a_sample_name_suggests_it():
    with pytest.raises(FileNotFoundError, match="chelsea"):
        load_image("chelsee")


def test_unreadable_file_names_the_path(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.png"):
        load_image(bad)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg"):
        load_image(empty)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        load_image(tmp_path)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 2, 5), np.uint8), "shape"),
        (np.zeros((2,), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.array([[np.nan, 0.0]]), "NaN"),
        (np.zeros((2, 2), complex), "dtype"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(ValueError, match=message):
        to_rgb_uint8(array)


def test_bad_source_type():
    with pytest.raises(TypeError, match="file path"):
        load_image(42)


def test_resize_takes_height_then_width(rgb):
    out = resize(rgb, (7, 11))
    assert out.shape == (7, 11, 3) and out.dtype == np.uint8
    heat = np.random.default_rng(1).random((5, 5)).astype(np.float32)
    assert resize(heat, (10, 20)).shape == (10, 20)
    assert resize(rgb, 8).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="positive"):
        resize(rgb, (0, 5))
    with pytest.raises(ValueError, match="interpolation"):
        resize(rgb, (5, 5), interpolation="fancy")


def test_resize_of_a_constant_map_stays_constant():
    m = np.full((7, 7), 0.25, np.float32)
    np.testing.assert_allclose(resize(m, (64, 48)), 0.25, atol=1e-6)


def test_center_crop():
    a = np.arange(6 * 10).reshape(6, 10)
    crop = center_crop(a)
    assert crop.shape == (6, 6)
    np.testing.assert_array_equal(crop, a[:, 2:8])
    assert center_crop(a, 0.5).shape == (3, 3)
    with pytest.raises(ValueError):
        center_crop(a, 0)


def test_collage_places_tiles_where_boxes_say(rgb):
    tiles = [np.full((10, 10, 3), v, np.uint8) for v in (10, 20, 30)]
    out = collage(tiles, tile_size=(8, 8), cols=2, pad=2)
    boxes = collage_boxes(3, (8, 8), cols=2, pad=2)
    assert out.shape == (2 + 2 * 10, 2 + 2 * 10, 3)
    for v, (x0, y0, x1, y1) in zip((10, 20, 30), boxes):
        assert np.all(out[y0:y1, x0:x1] == v)
    x0, y0, x1, y1 = collage_boxes(4, (8, 8), cols=2, pad=2)[3]
    assert np.all(out[y0:y1, x0:x1] == 255)  # the empty fourth cell is background
    assert collage(["chelsea", "coffee"], tile_size=32).shape == (32, 64, 3)


def test_collage_of_nothing_fails():
    with pytest.raises(ValueError, match="empty batch|at least one"):
        collage([])


def test_as_batch_forms(rgb):
    assert len(images.as_batch(rgb)) == 1
    assert len(images.as_batch(np.stack([rgb, rgb]))) == 2
    assert len(images.as_batch(["chelsea", rgb])) == 2
