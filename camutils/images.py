"""Images in, RGB uint8 out: loading, resizing and collages.

Every image in camutils is a numpy array of shape ``(height, width, 3)``, dtype uint8, in RGB
order. OpenCV reads and writes BGR; the conversion happens here and nowhere else. Sizes are
always ``(height, width)``, numpy's order: the original blog post's Grad-CAM snippet resized
its heat map with ``width, height`` swapped, which only goes unnoticed on square images.

Image files (and uploaded bytes) are untrusted: before anything is decoded, Pillow reads the
header alone, and an image of more than `MAX_PIXELS` pixels is refused (a 200 kB PNG can
decode to gigabytes). Only regular files are read (a FIFO or a device could block forever or
never end). The EXIF orientation of a photo is applied, as image viewers do.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from .checks import positive_int

__all__ = [
    "load_image", "decode_image", "encode_image", "to_rgb_uint8", "as_batch", "resize",
    "center_crop", "center_crop_resize", "collage", "collage_boxes", "save_image",
    "IMAGE_SUFFIXES",
]

#: The file types that count as images when a folder is searched (the command line and
#: `camutils.dataset`); case does not matter.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

MAX_PIXELS = 100_000_000
"""The most pixels (width x height) an image file may have; larger ones are refused before
they are decoded. Loading takes, beside the file's bytes, about 7 (8-bit RGB) to 17 (16-bit
RGBA) bytes per pixel at its peak, most of it OpenCV's decoder's: 0.7 to 1.7 GB at this limit.
Raise it for a large image you trust: ``camutils.images.MAX_PIXELS = 200_000_000``, or set the environment variable
``CAMUTILS_MAX_PIXELS`` (which, when set, takes precedence; e.g. for the command line)."""

# The formats whose header Pillow reads for camutils: those OpenCV decodes. (OpenCV also
# reads PAM, PFM and Radiance HDR, whose size Pillow cannot read first: they are refused.)
_HEADER_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "JPEG2000", "PPM",
                   "SUN", "AVIF")

def load_image(source, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Load one image as RGB uint8 of shape ``(height, width, 3)``.

    Args:
        source: a file path, a numpy array (grayscale, RGB or RGBA; uint8, uint16, bool or
            float in [0, 1]), or the name of an offline sample photo (see
            `camutils.samples.sample_names`).
        size: optional ``(height, width)`` (or one int for a square) to resize to.

    A file's header is read first: an image of more than `MAX_PIXELS` pixels is refused
    before it is decoded, and so is anything but a regular file. A photo's EXIF orientation
    is applied (a phone photo taken upright loads upright).

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        ValueError: the file is not a readable image, has more pixels than `MAX_PIXELS` (the
            message says how to raise the limit), is not a regular file, or the array has an
            unusable shape or values (the message says which).
    """
    if isinstance(source, np.ndarray):
        image = to_rgb_uint8(source)
    elif isinstance(source, (str, os.PathLike)):
        image = _load_path_or_sample(source)
    else:
        raise TypeError(
            f"Cannot load an image from a {type(source).__name__}: pass a file path, a numpy "
            "array or a sample name."
        )
    return image if size is None else resize(image, size)


def _load_path_or_sample(source) -> np.ndarray:
    from . import samples

    path = Path(source).expanduser()
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if isinstance(source, str) and source in samples.sample_names():
            return samples.load_sample(source)
        hint = samples.suggest(str(source)) if isinstance(source, str) else ""
        raise FileNotFoundError(f"No image at {str(path)!r}: the file does not exist.{hint}") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{str(path)!r} is a folder, not an image file.")
    _require_regular_file(mode, path)
    # Opened without blocking (a FIFO put in the file's place since the check would block
    # open() itself), then checked again; the bytes are decoded with cv2.imdecode, which also
    # handles paths that cv2.imread cannot (non-ASCII names on Windows).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as file:
        _require_regular_file(os.fstat(file.fileno()).st_mode, path)
        orientation = _check_header(file, repr(str(path)))
        file.seek(0)
        data = file.read()
    return _decode(data, repr(str(path)), orientation)


def _require_regular_file(mode: int, path: Path) -> None:
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device"
                if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise ValueError(
            f"{str(path)!r} is not a regular file (it is {kind}): camutils reads images only "
            "from regular files, since reading a FIFO or a device can block forever or never end."
        )


def _max_pixels() -> int:
    """The pixel limit in force: ``CAMUTILS_MAX_PIXELS`` when it is set, else `MAX_PIXELS`."""
    value = os.environ.get("CAMUTILS_MAX_PIXELS")
    if value is None:
        return int(MAX_PIXELS)
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f"The environment variable CAMUTILS_MAX_PIXELS must be a positive whole "
                         f"number of pixels (such as 200000000); it is {value!r}.")
    return limit


def _check_header(file, name: str) -> int:
    """Read an image's header with Pillow (nothing is decoded); refuse an image of more than
    `MAX_PIXELS` pixels, or one whose size cannot be read; return its EXIF orientation (1-8)."""
    from PIL import Image, UnidentifiedImageError

    limit = _max_pixels()
    Image.init()
    formats = [f for f in _HEADER_FORMATS if f in Image.OPEN]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # camutils decides
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": it is ignored
            with Image.open(file, formats=formats) as image:
                width, height = image.size
                exif = image.info.get("exif")
    except Image.DecompressionBombError as error:
        # Pillow refuses, before camutils can, images over 2 x PIL.Image.MAX_IMAGE_PIXELS.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found.group(1)) if found else None
        if (pixels > limit) if pixels else (2 * Image.MAX_IMAGE_PIXELS >= limit):
            raise ValueError(_too_many_pixels(name, pixels, limit)) from None
        raise ValueError(
            f"{name} has {pixels:,} pixels: within camutils' limit of {limit:,}, but Pillow, which "
            "reads the image's header, refuses more than 2 x PIL.Image.MAX_IMAGE_PIXELS. Raise "
            "that too (PIL.Image.MAX_IMAGE_PIXELS = None) if you trust the image.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError,
            TypeError) as error:
        raise ValueError(
            f"Cannot read {name} as an image: it is empty, damaged or not in a format camutils "
            "reads (PNG, JPEG, BMP, TIFF, WebP, GIF, JPEG 2000, PNM, Sun raster, AVIF: those "
            "OpenCV decodes and whose size can be read before decoding).") from None
    if width * height > limit:
        raise ValueError(_too_many_pixels(name, width * height, limit, (width, height)))
    return _exif_orientation(exif)


def _too_many_pixels(name: str, pixels: int | None, limit: int, size=None) -> str:
    """The message for an image over the limit (``pixels`` None: Pillow did not say how many)."""
    shape = f" ({size[0]:,} wide, {size[1]:,} high)" if size else ""
    count = f"{pixels:,} pixels{shape}, more" if pixels else "more pixels"
    wanted = pixels or 2 * limit
    return (
        f"{name} has {count} than camutils' limit of {limit:,} for one image, a guard against "
        "decompression bombs (a small file that decodes to gigabytes); it was not decoded. If "
        f"you trust the image, raise the limit: camutils.images.MAX_PIXELS = {wanted} in "
        f"Python, or the environment variable CAMUTILS_MAX_PIXELS={wanted} (for the command "
        "line too)."
    )


def _exif_orientation(exif: bytes | None) -> int:
    """The Orientation tag (274) of raw EXIF bytes; 1 (as stored) when absent or invalid."""
    if not exif:
        return 1
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data"
            tags = Image.Exif()
            tags.load(exif)
            value = tags.get(0x0112, 1)
    except Exception:  # a damaged EXIF block is ignored, as viewers do
        return 1
    return value if type(value) is int and 1 <= value <= 8 else 1


# EXIF orientation -> how to turn the stored pixels into the image as it is meant to be seen
# (the EXIF 2.3 specification, table of tag 274; 1 is as stored).
_ORIENT = {
    2: lambda a: a[:, ::-1],  # mirrored left to right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1],  # mirrored top to bottom
    5: lambda a: a.swapaxes(0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transversed
    8: lambda a: np.rot90(a, 1),  # turned 90 degrees counter-clockwise
}


def _decode(data: bytes, name: str, orientation: int = 1) -> np.ndarray:
    """Decode checked image bytes with OpenCV (alpha and 16 bits kept, so OpenCV applies no
    orientation), apply the EXIF ``orientation``, and convert to RGB uint8 a strip of rows at
    a time: beyond OpenCV's own peak (twice the decoded image), the result and a few MB
    (converting a 16-bit RGBA image as a whole took about 60 bytes per pixel)."""
    array = np.frombuffer(data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(array, cv2.IMREAD_UNCHANGED) if array.size else None
    except cv2.error as error:
        raise ValueError(f"Cannot read {name} as an image: OpenCV refuses it "
                         f"({str(error).strip().splitlines()[-1]}).") from None
    del array
    if decoded is None:
        raise ValueError(
            f"Cannot read {name} as an image: the file is empty, damaged or not in an "
            "image format OpenCV knows (PNG, JPEG, BMP, TIFF, WebP, GIF, ...)."
        )
    if orientation in _ORIENT:
        decoded = _ORIENT[orientation](decoded)
    rgb = {3: [2, 1, 0], 4: [2, 1, 0, 3]}.get(decoded.shape[2]) if decoded.ndim == 3 else None
    if decoded.dtype not in (np.uint8, np.uint16) or decoded.ndim not in (2, 3):
        return to_rgb_uint8(decoded if rgb is None else decoded[:, :, rgb])  # (floats: whole)
    height, width = decoded.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    step = max(1, 2**16 // max(width, 1))
    for top in range(0, height, step):
        strip = decoded[top:top + step]
        out[top:top + step] = to_rgb_uint8(strip if rgb is None else strip[:, :, rgb])
    return out


def decode_image(data, name: str = "the file") -> np.ndarray:
    """Decode the bytes of an image file (an upload) to RGB uint8 ``(H, W, 3)``, as
    `load_image` decodes a file: the header is checked against `MAX_PIXELS` first, and the
    EXIF orientation applied (the explorer decodes its uploads with it).

    Raises:
        ValueError: the bytes are not an image OpenCV can read, or have more pixels than
            `MAX_PIXELS` (the message names ``name``).
    """
    data = bytes(data)
    if not data:
        raise ValueError(f"Cannot read {name} as an image: it is empty.")
    return _decode(data, name, _check_header(io.BytesIO(data), name))


def encode_image(image: np.ndarray, suffix: str = ".png") -> bytes:
    """Encode an RGB image (any form `to_rgb_uint8` accepts) as the bytes of a file of type
    ``suffix`` (``".png"``, ``".jpg"``, ...): the one encoder, used by `save_image` and the
    explorer."""
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(to_rgb_uint8(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"Cannot encode an image as {suffix!r}: unknown image format.")
    return encoded.tobytes()


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Convert an image array to RGB uint8 ``(height, width, 3)``.

    Grayscale ``(h, w)`` or ``(h, w, 1)`` is repeated over three channels; RGBA is composited
    over white; uint16 is scaled by 1/257; floats are read as [0, 1] when their maximum is at
    most 1, else as [0, 255]; booleans become 0 / 255.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(
            f"An image must have shape (height, width), (height, width, 1), (height, width, 3) "
            f"or (height, width, 4); got {a.shape}."
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"The image is empty (shape {a.shape}).")
    a = _to_unit_float(a) if a.dtype != np.uint8 else a
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:  # composite over white, in [0, 1]
        f = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a
        a = f[:, :, :3] * f[:, :, 3:] + (1.0 - f[:, :, 3:])
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _to_unit_float(a: np.ndarray) -> np.ndarray:
    """Any non-uint8 image as float32 in [0, 1]."""
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.float32) / 255.0
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ValueError("The image contains NaN or infinite values.")
        a = a.astype(np.float32)
        return np.clip(a if a.max(initial=0.0) <= 1.0 else a / 255.0, 0.0, 1.0)
    raise ValueError(f"Cannot read an image of dtype {a.dtype}.")


def as_batch(images) -> np.ndarray:
    """One image or many (paths, arrays, sample names) as a list of RGB uint8 images.

    A 4-D array is taken as a batch; a 2-D or 3-D array, a path or a name as one image.
    Images may differ in size, so the result is a list, not an array.
    """
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [to_rgb_uint8(im) for im in images]
    if isinstance(images, (np.ndarray, str, os.PathLike)):
        return [load_image(images)]
    images = list(images)
    if not images:
        raise ValueError("No images were given (an empty batch).")
    return [load_image(im) for im in images]


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"A size must be positive (height, width); got {tuple(size)}.")
    return h, w


def resize(image: np.ndarray, size: int | tuple[int, int], interpolation: str = "auto") -> np.ndarray:
    """Resize an image or a map to ``size = (height, width)``.

    ``interpolation`` is ``"auto"`` (area when shrinking, bicubic when enlarging an image,
    bilinear for float maps), ``"nearest"``, ``"bilinear"``, ``"bicubic"`` or ``"area"``.
    """
    h, w = _size(size)
    a = np.asarray(image)
    if a.shape[:2] == (h, w):
        return a.copy()
    modes = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR,
             "bicubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
    if interpolation == "auto":
        if a.shape[0] * a.shape[1] > h * w:
            flag = cv2.INTER_AREA
        else:
            flag = cv2.INTER_CUBIC if a.dtype == np.uint8 else cv2.INTER_LINEAR
    elif interpolation in modes:
        flag = modes[interpolation]
    else:
        raise ValueError(f"Unknown interpolation {interpolation!r}; use one of auto, {', '.join(modes)}.")
    if a.dtype == bool:
        return cv2.resize(a.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    # OpenCV takes (width, height): the one place in camutils where that order appears.
    return cv2.resize(a, (w, h), interpolation=flag)


def center_crop(image: np.ndarray, fraction: float = 1.0, aspect: float = 1.0) -> np.ndarray:
    """The central region of ``image``: the largest one whose width / height is ``aspect``
    (a square by default), scaled by ``fraction`` (its side is then ``fraction`` of the
    image's shorter side, for a square).

    The one crop of camutils: `center_crop_resize` (the zoo's ImageNet view) and `collage`
    use it.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}.")
    h, w = image.shape[:2]
    ch, cw = (h, h * aspect) if w / h > aspect else (w / aspect, w)
    ch, cw = min(h, max(1, round(ch * fraction))), min(w, max(1, round(cw * fraction)))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top:top + ch, left:left + cw]


def center_crop_resize(images, size: tuple[int, int], crop_fraction: float = 0.875) -> np.ndarray:
    """The usual ImageNet evaluation view: a central crop, resized (bicubic) to ``size``.

    For each image, the largest central region with the aspect ratio of ``size`` is scaled by
    ``crop_fraction`` (224/256 = 0.875 by default; for a square ``size``, a square whose side
    is that fraction of the shorter side) and resized to ``size = (height, width)``.

    Returns the RGB uint8 batch ``(n, height, width, 3)``.
    """
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1]; got {crop_fraction}.")
    height, width = _size(size)
    return np.stack([
        resize(center_crop(image, crop_fraction, width / height), (height, width),
               interpolation="bicubic")
        for image in as_batch(images)
    ])


def _grid(count: int, cols: int | None) -> tuple[int, int]:
    if count == 0:
        raise ValueError("A collage needs at least one image.")
    cols = positive_int(cols, "cols", none=True) or int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / cols)), cols


def collage_boxes(count: int, tile_size: tuple[int, int], cols: int | None = None,
                  pad: int = 0) -> list[tuple[int, int, int, int]]:
    """The box ``(x0, y0, x1, y1)`` of each tile of a `collage` with the same arguments."""
    th, tw = _size(tile_size)
    _, cols = _grid(count, cols)
    boxes = []
    for i in range(count):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (tw + pad), pad + r * (th + pad)
        boxes.append((x0, y0, x0 + tw, y0 + th))
    return boxes


def collage(images: Iterable, tile_size: int | tuple[int, int] | None = None,
            cols: int | None = None, pad: int = 0, background: int = 255) -> np.ndarray:
    """Tile images into one RGB uint8 image, row by row.

    Each image is centre-cropped to the tile's aspect ratio and resized to ``tile_size`` (default: the
    smallest image's shorter side, at most 224). Use `collage_boxes` for where each tile lies,
    e.g. to check that a class's map peaks on the right photo.
    """
    tiles = as_batch(images)
    if tile_size is None:
        side = min(224, min(min(t.shape[:2]) for t in tiles))
        tile_size = (side, side)
    th, tw = _size(tile_size)
    rows, cols = _grid(len(tiles), cols)
    canvas = np.full((pad + rows * (th + pad), pad + cols * (tw + pad), 3), background, np.uint8)
    for tile, (x0, y0, x1, y1) in zip(tiles, collage_boxes(len(tiles), (th, tw), cols, pad)):
        canvas[y0:y1, x0:x1] = resize(center_crop(tile, 1.0, tw / th), (th, tw))
    return canvas


def save_image(path, image: np.ndarray) -> Path:
    """Write an RGB image (any form `to_rgb_uint8` accepts) to ``path`` (PNG, JPEG, ...).

    The file is written under a temporary name and then renamed (`camutils.atomic`): a run
    that is interrupted never leaves a truncated image under ``path``."""
    path = Path(path)
    try:
        encoded = encode_image(image, path.suffix or ".png")
    except (ValueError, cv2.error):
        raise ValueError(f"Cannot write {str(path)!r}: unknown image format {path.suffix!r}.") from None
    from .atomic import atomic_write_bytes

    return atomic_write_bytes(path, encoded)
