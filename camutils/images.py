"""Images in, RGB uint8 out: loading, resizing and collages.

Every image in camutils is a numpy array of shape ``(height, width, 3)``, dtype uint8, in RGB
order. OpenCV reads and writes BGR; the conversion happens here and nowhere else. Sizes are
always ``(height, width)``, numpy's order: the original blog post's Grad-CAM snippet resized
its heat map with ``width, height`` swapped, which only goes unnoticed on square images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

__all__ = [
    "load_image", "decode_image", "encode_image", "to_rgb_uint8", "as_batch", "resize",
    "center_crop", "center_crop_resize", "collage", "collage_boxes", "save_image",
]


def load_image(source, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Load one image as RGB uint8 of shape ``(height, width, 3)``.

    Args:
        source: a file path, a numpy array (grayscale, RGB or RGBA; uint8, uint16, bool or
            float in [0, 1]), or the name of an offline sample photo (see
            `camutils.samples.sample_names`).
        size: optional ``(height, width)`` (or one int for a square) to resize to.

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        ValueError: the file is not a readable image, or the array has an unusable shape
            or values (the message says which).
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
    if not path.exists():
        if isinstance(source, str) and source in samples.sample_names():
            return samples.load_sample(source)
        hint = samples.suggest(str(source)) if isinstance(source, str) else ""
        raise FileNotFoundError(f"No image at {str(path)!r}: the file does not exist.{hint}")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not an image file.")
    # imdecode on the file's bytes also handles paths that cv2.imread cannot (non-ASCII names).
    data = np.fromfile(str(path), dtype=np.uint8)
    return decode_image(data, repr(str(path)))


def decode_image(data, name: str = "the file") -> np.ndarray:
    """Decode the bytes of an image file (PNG, JPEG, ...) to RGB uint8 ``(H, W, 3)``.

    The one decoder of camutils: `load_image` reads files through it, and the explorer its
    uploads. ``data`` is ``bytes`` or a uint8 array of them; ``name`` says in an error what
    was read.

    Raises:
        ValueError: the bytes are not an image OpenCV can read (the message names ``name``).
    """
    array = data if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), dtype=np.uint8)
    decoded = cv2.imdecode(array, cv2.IMREAD_UNCHANGED) if array.size else None
    if decoded is None:
        raise ValueError(
            f"Cannot read {name} as an image: it is empty, damaged or not in an image format "
            "OpenCV knows (PNG, JPEG, BMP, TIFF, WebP, GIF, ...)."
        )
    if decoded.ndim == 3 and decoded.shape[2] == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    elif decoded.ndim == 3 and decoded.shape[2] == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    return to_rgb_uint8(decoded)


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
    cols = cols or int(np.ceil(np.sqrt(count)))
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
    """Write an RGB image (any form `to_rgb_uint8` accepts) to ``path`` (PNG, JPEG, ...)."""
    path = Path(path)
    try:
        encoded = encode_image(image, path.suffix or ".png")
    except (ValueError, cv2.error):
        raise ValueError(f"Cannot write {str(path)!r}: unknown image format {path.suffix!r}.") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded)
    return path
