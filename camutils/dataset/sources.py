"""Where a dataset run's images come from, and the tf.data pipeline that decodes them.

    source = collect(folder_or_paths_or_dataset, labels=..., exclude=out)
    source.ids, source.labels, source.fingerprint()
    dataset = image_pipeline(source, indices, view, batch_size)   # batches of model inputs

A source is a folder (searched recursively, in sorted order, for `IMAGE_SUFFIXES`), a list
of image paths, or a ``tf.data.Dataset``. Files are decoded by `camutils.images.load_image`,
the one decoder, inside the tf.data pipeline (``tf.numpy_function`` in a parallel map): the
same pixels as everywhere in camutils (the pixel limit, regular files only, the EXIF
orientation), and a file that cannot be read becomes a row marked unreadable, never an error
that stops the run. OpenCV and Pillow release Python's lock while they decode, so the
parallel map overlaps decoding with the explanation of the batch before.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..images import IMAGE_SUFFIXES

__all__ = ["Source", "collect", "View", "image_pipeline", "folder_files"]


@dataclass
class Source:
    """The images of a run, in order.

    Attributes:
        kind: ``"folder"``, ``"files"`` or ``"dataset"``.
        ids: one id per image (the relative path, the path as given, or the element's id).
        paths: the files to read (None for a dataset).
        labels: int64 ``(n,)``, -1 where unknown (None: no labels at all).
        label_names: the names the labels index (None: the model's class names, or none).
        root: the source folder (``"folder"`` only).
        dataset: the ``tf.data.Dataset`` (``"dataset"`` only), elements normalised to dicts
            with ``"image"`` and optionally ``"label"`` and ``"id"``.
    """

    kind: str
    ids: list[str]
    paths: list[str] | None = None
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    root: str | None = None
    dataset: Any = None
    description: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        """A sha256 of what the run reads: every file's id, size and modification time (a
        changed, added or removed file changes it), or the dataset's ids and element spec."""
        digest = hashlib.sha256()
        if self.paths is not None:
            for ident, path in zip(self.ids, self.paths):
                try:
                    info = os.stat(path)
                    stamp = f"{info.st_size}\t{info.st_mtime_ns}"
                except OSError:
                    stamp = "missing"
                digest.update(f"{ident}\t{stamp}\n".encode("utf-8", "surrogateescape"))
        else:
            digest.update(repr(self.description.get("element_spec")).encode())
            for ident in self.ids:
                digest.update(f"{ident}\n".encode("utf-8", "surrogateescape"))
        if self.labels is not None:
            digest.update(np.ascontiguousarray(self.labels, np.int64).tobytes())
        return digest.hexdigest()


def folder_files(root: Path, exclude: Path | None = None) -> list[Path]:
    """The image files under ``root``, recursively, sorted by relative path (hidden files
    and folders, and the folder ``exclude`` with everything in it, left out)."""
    root = Path(root)
    exclude = None if exclude is None else os.path.realpath(exclude)
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".")
            and (exclude is None or os.path.realpath(os.path.join(folder, d)) != exclude))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = Path(folder) / name
            if path.is_file():  # regular files (and links to them); a FIFO is left out
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _is_dataset(value) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def collect(source, labels=None, class_names=None, exclude=None) -> Source:
    """A `Source` from a folder, a list of paths or a ``tf.data.Dataset``.

    Args:
        source: a folder (recursively), a list of image paths, or a ``tf.data.Dataset`` whose
            elements are an image, ``(image, label)``, or a dict with ``"image"`` and
            optionally ``"label"`` and ``"id"``.
        labels: None; ``"folders"`` (a folder source: each image's label is the name of the
            first folder under the source folder that holds it); or one label per image (a
            class index or class name). A dataset brings its own labels.
        class_names: the model's class names: label names that are all among them become
            the model's class indices (so that accuracy can be measured).
        exclude: a folder to leave out of a folder source (the run's own output).

    Raises:
        FileNotFoundError: a folder or file that does not exist.
        ValueError: an empty folder or list, or labels that do not fit.
    """
    if _is_dataset(source):
        if labels is not None:
            raise ValueError("A tf.data.Dataset brings its own labels (elements (image, label) "
                             "or dicts with 'label'); labels= is for folders and lists of paths.")
        return _dataset_source(source)
    if isinstance(source, (str, os.PathLike)):
        root = Path(source).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"No folder at {str(root)!r}: it does not exist.")
        if not root.is_dir():
            raise ValueError(f"{str(root)!r} is a file; pass a folder, a list of image paths or "
                             "a tf.data.Dataset.")
        files = folder_files(root, exclude)
        if not files:
            raise ValueError(f"The folder {str(root)!r} has no image files (looked, in every "
                             f"subfolder, for {', '.join(IMAGE_SUFFIXES)}).")
        ids = [p.relative_to(root).as_posix() for p in files]
        found = Source("folder", ids, [str(p) for p in files], root=str(root.resolve()))
        if isinstance(labels, str) and labels == "folders":
            return _folder_labels(found, class_names)
    else:
        try:
            paths = [os.fspath(p) for p in source]
        except TypeError:
            raise TypeError(f"source must be a folder, a list of image paths or a "
                            f"tf.data.Dataset, not {type(source).__name__}.") from None
        if not paths:
            raise ValueError("The list of images is empty.")
        found = Source("files", list(paths), list(paths))
        if isinstance(labels, str) and labels == "folders":
            raise ValueError("labels='folders' needs a folder source; for a list of paths pass "
                             "one label per image.")
    if labels is not None:
        found.labels, found.label_names = _given_labels(labels, len(found), class_names)
    return found


def _folder_labels(found: Source, class_names) -> Source:
    tops = [ident.split("/", 1)[0] if "/" in ident else None for ident in found.ids]
    loose = [ident for ident, top in zip(found.ids, tops) if top is None]
    if loose:
        raise ValueError(f"labels='folders' takes each image's label from its folder, but "
                         f"{len(loose)} image(s) lie directly in the source folder (e.g. "
                         f"{loose[0]!r}): put them in a folder named after their class.")
    names = sorted(set(tops))
    found.labels, found.label_names = _given_labels(tops, len(found), class_names, names)
    return found


def _given_labels(labels, count: int, class_names, names=None):
    values = list(labels)
    if len(values) != count:
        raise ValueError(f"Got {len(values)} labels for {count} images: pass one per image.")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        array = np.asarray(values, np.int64)
        if class_names is not None and ((array < -1) | (array >= len(class_names))).any():
            raise ValueError(f"Labels must be class indices from 0 to {len(class_names) - 1} "
                             "(or -1 for none).")
        return array, None
    if not all(isinstance(v, str) for v in values):
        raise TypeError("Labels must all be class indices or all be class names.")
    if class_names is not None:
        lookup = {str(n).lower(): i for i, n in enumerate(class_names)}
        if all(v.lower() in lookup for v in values):
            return np.asarray([lookup[v.lower()] for v in values], np.int64), None
    names = sorted(set(values)) if names is None else names
    position = {n: i for i, n in enumerate(names)}
    return np.asarray([position[v] for v in values], np.int64), list(names)


def _dataset_source(dataset) -> Source:
    """Normalise a dataset's elements to dicts and read its ids and labels (one pass over
    everything but the images: ids and labels are small)."""
    import tensorflow as tf

    spec = dataset.element_spec
    if isinstance(spec, dict):
        if "image" not in spec:
            raise ValueError(f"A dataset of dicts needs an 'image' entry; it has "
                             f"{sorted(spec)}.")
        normalised = dataset.map(lambda e: {k: e[k] for k in ("image", "label", "id") if k in e})
    elif isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError("A dataset of tuples must give (image, label) pairs.")
        normalised = dataset.map(lambda image, label: {"image": image, "label": label})
    elif isinstance(spec, tf.TensorSpec):
        normalised = dataset.map(lambda image: {"image": image})
    else:
        raise TypeError(f"Cannot read images from a dataset whose elements are {spec}.")
    image_spec = normalised.element_spec["image"]
    if image_spec.shape.rank != 3:
        raise ValueError(f"A dataset's images must be single images (height, width, channels), "
                         f"unbatched; its elements have shape {image_spec.shape} (unbatch it).")
    small = normalised.map(lambda e: {"_position": tf.constant(0),
                                      **{k: v for k, v in e.items() if k != "image"}})
    ids, labels = [], []
    for position, element in enumerate(small.as_numpy_iterator()):
        ident = element.get("id", position)
        ids.append(ident.decode("utf-8", "replace") if isinstance(ident, bytes) else str(ident))
        if "label" in element:
            labels.append(int(element["label"]))
    if not ids:
        raise ValueError("The dataset is empty.")
    found = Source("dataset", ids, dataset=normalised,
                   description={"element_spec": repr(normalised.element_spec)})
    if labels:
        found.labels = np.asarray(labels, np.int64)
    return found


# --------------------------------------------------------------------------- the pipeline


@dataclass
class View:
    """How an RGB uint8 image becomes the model's input.

    Attributes:
        input_shape: ``(height, width, channels)`` of the model's input.
        prepare: one RGB uint8 image -> the uint8 image the network sees (crop, resize), or
            None when ``to_input`` takes the decoded image itself.
        to_input: the prepared uint8 image -> float32 model input ``input_shape``.
    """

    input_shape: tuple
    prepare: Callable | None
    to_input: Callable


class _Failures:
    """The messages of unreadable images, by index, filled by the decoding threads."""

    def __init__(self):
        self._messages: dict[int, str] = {}
        self._lock = threading.Lock()

    def add(self, index: int, message: str) -> None:
        with self._lock:
            self._messages[int(index)] = " ".join(message.split())

    def pop(self, index: int) -> str:
        with self._lock:
            return self._messages.pop(int(index), "the image could not be read")


def _loader(view: View, failures: _Failures, keep_seen: bool):
    from ..images import load_image

    shape = tuple(view.input_shape)
    seen_shape = shape[:2] + (3,)

    def load(index, path):
        try:
            image = load_image(os.fsdecode(path))
            seen = image if view.prepare is None else np.asarray(view.prepare(image))
            array = np.asarray(view.to_input(seen), np.float32)
            if array.shape != shape:
                raise ValueError(f"the preprocessing gave an input of shape {array.shape}, "
                                 f"not the model's {shape}")
            ok = True
        except Exception as error:  # noqa: BLE001 - any file may be broken in any way
            failures.add(index, str(error) or type(error).__name__)
            array, seen, ok = np.zeros(shape, np.float32), None, False
        if not keep_seen:
            return array, np.zeros((0, 0, 3), np.uint8), ok
        if seen is None or seen.shape != seen_shape or seen.dtype != np.uint8:
            seen = np.zeros(seen_shape, np.uint8)
        return array, seen, ok

    return load


def image_pipeline(source: Source, indices: np.ndarray, view: View, batch_size: int,
                   failures: _Failures, keep_seen: bool = False):
    """A ``tf.data.Dataset`` of batches ``{"index", "input", "ok", "label"}`` (and ``"seen"``,
    the uint8 images the network sees, with ``keep_seen``) for the images at ``indices``
    (increasing), decoded in a parallel map and prefetched."""
    import tensorflow as tf

    indices = np.asarray(indices, np.int64)
    labels = source.labels if source.labels is not None else np.full(len(source), -1, np.int64)
    shape = tuple(view.input_shape)
    if source.paths is not None:
        paths = tf.constant([os.fsencode(source.paths[i]) for i in indices], tf.string,
                            shape=(len(indices),))
        table = tf.data.Dataset.from_tensor_slices(
            {"index": indices, "path": paths, "label": labels[indices]})
        load = _loader(view, failures, keep_seen)

        def decode(element):
            array, seen, ok = tf.numpy_function(
                load, [element["index"], element["path"]], [tf.float32, tf.uint8, tf.bool],
                stateful=False)
            array.set_shape(shape)
            ok.set_shape(())
            seen.set_shape(shape[:2] + (3,) if keep_seen else (0, 0, 3))
            item = {"index": element["index"], "input": array, "ok": ok,
                    "label": element["label"]}
            if keep_seen:
                item["seen"] = seen
            return item

        dataset = table.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        dataset = _dataset_pipeline(source, indices, view, keep_seen)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


def _dataset_pipeline(source: Source, indices: np.ndarray, view: View, keep_seen: bool):
    import tensorflow as tf

    wanted = tf.constant(indices, tf.int64)
    shape = tuple(view.input_shape)
    numbered = source.dataset.enumerate()
    if len(indices) < len(source):
        numbered = numbered.filter(
            lambda i, e: tf.reduce_any(tf.equal(tf.cast(i, tf.int64), wanted)))
    image_spec = source.dataset.element_spec["image"]
    raw = image_spec.dtype == tf.uint8

    def prepare(image):
        from ..images import to_rgb_uint8

        image = to_rgb_uint8(image)
        seen = image if view.prepare is None else np.asarray(view.prepare(image))
        return np.asarray(view.to_input(seen), np.float32), (
            seen if keep_seen and seen.shape == shape[:2] + (3,) else
            np.zeros(shape[:2] + (3,) if keep_seen else (0, 0, 3), np.uint8))

    def convert(i, element):
        if raw:
            array, seen = tf.numpy_function(prepare, [element["image"]], [tf.float32, tf.uint8],
                                            stateful=False)
            array.set_shape(shape)
            seen.set_shape(shape[:2] + (3,) if keep_seen else (0, 0, 3))
        else:
            array = tf.ensure_shape(tf.cast(element["image"], tf.float32), shape)
            seen = tf.zeros(shape[:2] + (3,) if keep_seen else (0, 0, 3), tf.uint8)
        label = tf.cast(element["label"], tf.int64) if "label" in element else \
            tf.constant(-1, tf.int64)
        item = {"index": tf.cast(i, tf.int64), "input": array, "ok": tf.constant(True),
                "label": label}
        if keep_seen:
            item["seen"] = seen
        return item

    return numbered.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
