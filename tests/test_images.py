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


# ------------------------------------------------------------------ hostile files (issue 14)

import errno  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import hostile_inputs as hostile  # noqa: E402

HEADERS = {
    "png": lambda w, h: hostile.png_header(w, h),
    "jpg": lambda w, h: hostile.jpeg_header(w, h),
    "bmp": lambda w, h: hostile.bmp_header(w, h),
    "gif": lambda w, h: hostile.gif_header(w, h),
    "webp": lambda w, h: hostile.webp_header(w, h),
    "tif": lambda w, h: hostile.tiff_header(w, h),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if OpenCV is asked to decode anything."""
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called on an image over the pixel limit")
    monkeypatch.setattr(images.cv2, "imdecode", refuse)
    monkeypatch.setattr(images.cv2, "imread", refuse)


@pytest.mark.parametrize("fmt", HEADERS)
@pytest.mark.parametrize("side", [16000, 50000])
def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, no_decoding, fmt, side):
    """A header that declares side x side pixels (16000: under OpenCV's own limit of 2**30
    pixels, so OpenCV would allocate 768 MB; 50000: over it, a raw cv2.error before)."""
    side = min(side, 16383) if fmt == "webp" else side  # WebP's largest
    data = HEADERS[fmt](side, side)
    path = tmp_path / f"bomb.{fmt}"
    path.write_bytes(data)
    message = (rf"(?s)bomb\.{fmt}' has {side * side:,} pixels.*limit of 100,000,000.*not decoded"
               rf".*camutils\.images\.MAX_PIXELS = {side * side}.*CAMUTILS_MAX_PIXELS")
    with pytest.raises(ValueError, match=message):
        load_image(path)
    from camutils.widgets.render import decode_image  # the explorer's upload

    with pytest.raises(ValueError, match=r"(?s)'upload' has .* pixels.*MAX_PIXELS"):
        decode_image(data, "'upload'")


def test_the_14000_pixel_png_bomb_is_refused(tmp_path, no_decoding):
    """The issue's case: a valid 190 kB PNG that decodes to 196 million pixels (755 MB)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(hostile.png_zero_bomb(14000))
    assert path.stat().st_size < 250_000
    with pytest.raises(ValueError, match="196,000,000 pixels"):
        load_image(path)


def test_the_pixel_limit_can_be_raised_or_lowered(tmp_path, monkeypatch, rgb):
    path = save_image(tmp_path / "a.png", rgb)  # 20 x 30 = 600 pixels
    monkeypatch.setattr(images, "MAX_PIXELS", 599)
    with pytest.raises(ValueError, match="has 600 pixels .30 wide, 20 high., more than camutils' limit of 599"):
        load_image(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 600)
    np.testing.assert_array_equal(load_image(path), rgb)
    monkeypatch.setenv("CAMUTILS_MAX_PIXELS", "599")  # the variable wins (the command line)
    with pytest.raises(ValueError, match="limit of 599"):
        load_image(path)
    monkeypatch.setenv("CAMUTILS_MAX_PIXELS", "1_000")
    np.testing.assert_array_equal(load_image(path), rgb)
    for bad in ("lots", "0", "-5", "1e9"):
        monkeypatch.setenv("CAMUTILS_MAX_PIXELS", bad)
        with pytest.raises(ValueError, match=f"CAMUTILS_MAX_PIXELS must be a positive whole number.*'{bad}'"):
            load_image(path)


def test_pillow_s_own_ceiling_is_explained(tmp_path, monkeypatch, rgb):
    from PIL import Image

    path = save_image(tmp_path / "a.png", rgb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses over 200 pixels
    with pytest.raises(ValueError, match=r"600 pixels: within camutils' limit.*PIL\.Image\.MAX_IMAGE_PIXELS"):
        load_image(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 300)
    with pytest.raises(ValueError, match="has 600 pixels, more than camutils' limit of 300"):
        load_image(path)


def test_a_format_whose_size_cannot_be_read_first_is_refused(tmp_path):
    """OpenCV decodes PFM (and PAM, Radiance HDR), but Pillow cannot read their headers."""
    path = tmp_path / "a.pfm"
    assert cv2.imwrite(str(path), np.ones((4, 5, 3), np.float32))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None
    with pytest.raises(ValueError, match=r"Cannot read '.*a\.pfm' as an image.*whose size can be read before decoding"):
        load_image(path)


def _open_for_writing_when_read(fifo, done: threading.Event):
    """Unblock a reader of ``fifo`` (as old camutils was) by writing to it once it is opened;
    give up after 5 s, or when ``done``."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not done.is_set():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:  # ENXIO: nobody reads it
            if error.errno != errno.ENXIO:
                raise
            time.sleep(0.02)
            continue
        os.write(fd, b"not an image")
        os.close(fd)
        return


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("through_a_link", [False, True])
def test_a_fifo_named_like_an_image_is_refused_without_blocking(tmp_path, through_a_link):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    path = fifo
    if through_a_link:
        path = tmp_path / "link.png"
        path.symlink_to(fifo)
    done = threading.Event()
    writer = threading.Thread(target=_open_for_writing_when_read, args=(fifo, done), daemon=True)
    writer.start()
    start = time.monotonic()
    try:
        with pytest.raises(ValueError, match=r"is not a regular file \(it is a FIFO \(named pipe\)\)"):
            load_image(path)
    finally:
        done.set()
        writer.join()
    assert time.monotonic() - start < 2


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused():
    with pytest.raises(ValueError, match=r"'/dev/zero' is not a regular file \(it is a character device\)"):
        load_image("/dev/zero")


def _quadrants(height=32, width=48):
    """An image whose every flip and turn differs: four flat colours, JPEG-friendly (the
    blocks are multiples of 16 pixels)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:16, :16] = (250, 20, 20)
    image[:16, 16:] = (20, 250, 20)
    image[16:, :32] = (20, 20, 250)
    image[16:, 32:] = (240, 240, 30)
    return image


def _viewer(path):
    """The image as a viewer shows it: Pillow's exif_transpose (a second, independent decoder)."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_of_a_jpeg_is_applied_on_every_path(tmp_path, orientation):
    stored = _quadrants()
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    data = hostile.jpeg_with_orientation(jpeg.tobytes(), orientation)
    path = tmp_path / f"phone_{orientation}.jpg"
    path.write_bytes(data)

    loaded = load_image(path)
    turned = orientation >= 5
    assert loaded.shape == ((48, 32, 3) if turned else (32, 48, 3))
    # OpenCV's own reader applies the orientation of a JPEG by default: the same pixels
    np.testing.assert_array_equal(loaded, cv2.imread(str(path))[:, :, ::-1])
    # Pillow, as a viewer: the same picture (up to the two JPEG decoders' rounding)
    assert np.abs(loaded.astype(int) - _viewer(path)).mean() < 2
    # the explorer's upload and a batch agree with load_image
    from camutils.widgets.render import decode_image

    np.testing.assert_array_equal(decode_image(data), loaded)
    np.testing.assert_array_equal(images.as_batch([path])[0], loaded)
    if orientation != 1:  # and it is not the stored picture
        assert loaded.shape != stored.shape or np.abs(loaded.astype(int) - stored).mean() > 20


@pytest.mark.parametrize("fmt", ["png", "webp"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_the_exif_orientation_of_png_and_webp_is_applied(tmp_path, fmt, orientation):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"a.{fmt}"
    Image.fromarray(_quadrants()).save(path, exif=exif.tobytes(), **({"lossless": True} if fmt == "webp" else {}))
    np.testing.assert_array_equal(load_image(path), _viewer(path))


def test_an_invalid_or_damaged_exif_block_is_ignored(tmp_path):
    stored = _quadrants()
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR))
    for orientation in (0, 9, 65535):
        path = tmp_path / f"o{orientation}.jpg"
        path.write_bytes(hostile.jpeg_with_orientation(jpeg.tobytes(), orientation))
        assert load_image(path).shape == stored.shape
    damaged = bytearray(hostile.jpeg_with_orientation(jpeg.tobytes(), 6))
    damaged[16:24] = b"\xff" * 8  # inside the EXIF block's TIFF header
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(damaged))
    assert load_image(path).shape == stored.shape


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_a_file_is_converted_in_strips_exactly_as_a_whole(tmp_path, dtype, channels):
    """Files are converted to RGB uint8 a strip of rows at a time (bounded memory): the same
    pixels as converting the whole array (here 3 strips), alpha and 16 bits included."""
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    stored = rng.integers(0, top + 1, (400, 500, channels), dtype=dtype)  # 131 rows a strip
    path = tmp_path / "a.png"
    assert cv2.imwrite(str(path), stored)
    rgb = stored[:, :, [2, 1, 0, 3][:channels]] if channels > 1 else stored
    np.testing.assert_array_equal(load_image(path), to_rgb_uint8(rgb))
