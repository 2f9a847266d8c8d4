"""The 1000 ImageNet classes, offline: names, WordNet ids and lookups.

    from camutils.zoo import imagenet
    imagenet.class_names()[281]        # 'tabby'
    imagenet.class_index("Tabby Cat")  # 281 (any lemma, any case, spaces or underscores)
    imagenet.search_classes("cat")     # [(281, 'tabby'), (282, 'tiger_cat'), ...]

Keras' ``decode_predictions`` downloads its class index on first use, so it fails offline.
The same short names (the first WordNet lemma of each class, spaces as underscores) ship
here in ``data/imagenet_classes.txt``, with each class's WordNet id and all its lemmas.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from ..suggestions import closest

__all__ = [
    "NUM_CLASSES", "ImageNetClass", "classes", "class_names", "class_index", "class_info",
    "search_classes",
]

NUM_CLASSES = 1000
_DATA_FILE = "imagenet_classes.txt"


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet class: its index, WordNet id, short name and all its lemmas."""

    index: int
    wordnet_id: str
    name: str
    lemmas: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def classes() -> tuple[ImageNetClass, ...]:
    """All 1000 classes, in class-index order (read once from the data file)."""
    text = resources.files("camutils.data").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    if len(rows) != NUM_CLASSES or any(len(r) != 3 for r in rows):
        raise RuntimeError(
            f"The ImageNet class file {_DATA_FILE} is damaged: expected {NUM_CLASSES} lines of "
            "'wordnet_id<TAB>name<TAB>lemmas'. Reinstall camutils to restore it."
        )
    return tuple(
        ImageNetClass(i, wnid, name, tuple(l.strip() for l in lemmas.split(",")))
        for i, (wnid, name, lemmas) in enumerate(rows)
    )


def class_names() -> list[str]:
    """The 1000 short class names, in class-index order (``'tench'``, ``'goldfish'``, ...)."""
    return [c.name for c in classes()]


def class_info(index: int) -> ImageNetClass:
    """The class with index ``index`` (0..999)."""
    if not 0 <= int(index) < NUM_CLASSES:
        raise IndexError(f"ImageNet class indices run from 0 to {NUM_CLASSES - 1}; got {index}.")
    return classes()[int(index)]


def _key(text: str) -> str:
    """Names compare without case, and with spaces, underscores and hyphens alike."""
    return re.sub(r"[\s_\-]+", " ", text.strip()).lower()


@functools.lru_cache(maxsize=1)
def _lookup() -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """(short-name key -> indices, lemma or WordNet-id key -> indices)."""
    by_name: dict[str, list[int]] = {}
    by_lemma: dict[str, list[int]] = {}
    for c in classes():
        by_name.setdefault(_key(c.name), []).append(c.index)
        for alias in (*c.lemmas, c.wordnet_id):
            indices = by_lemma.setdefault(_key(alias), [])
            if c.index not in indices:
                indices.append(c.index)
    return by_name, by_lemma


def class_index(name: str | int) -> int:
    """The index of the class called ``name``.

    ``name`` may be a short name (``"tiger_cat"``), any of a class's lemmas (``"tabby cat"``),
    or a WordNet id (``"n02123045"``); case, spaces, underscores and hyphens do not matter.
    An int is checked and returned as it is.

    Raises:
        ValueError: no class has that name (the message suggests the closest names), or the
            name belongs to several classes (the message lists them: pass the index instead).
    """
    if isinstance(name, int):
        return class_info(name).index
    if not isinstance(name, str):
        raise TypeError(f"A class is named by a str or an int index; got {type(name).__name__}.")
    every = classes()
    exact = [c.index for c in every if c.name == name.strip()]
    if len(exact) == 1:
        return exact[0]
    by_name, by_lemma = _lookup()
    key = _key(name)
    found = by_name.get(key) or by_lemma.get(key) or []
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        options = "; ".join(f"{i} ({', '.join(every[i].lemmas)})" for i in found)
        raise ValueError(
            f"{name!r} names {len(found)} ImageNet classes: {options}. Pass the index instead."
        )
    close = closest(key, list(by_name) + list(by_lemma), n=5, cutoff=0.6)
    suggestions = []
    for k in close:
        for i in by_name.get(k) or by_lemma.get(k):
            if every[i].name not in suggestions:
                suggestions.append(every[i].name)
    hint = f" Did you mean {', '.join(repr(s) for s in suggestions[:5])}?" if suggestions else ""
    raise ValueError(
        f"No ImageNet class is called {name!r}.{hint} "
        "Use camutils.zoo.imagenet.search_classes(text) to find names that contain a word."
    )


def search_classes(text: str) -> list[tuple[int, str]]:
    """The classes with a lemma that contains ``text`` as a whole word, as ``(index, name)``.

    ``search_classes("cat")`` finds 'tabby, tabby cat', 'tiger cat', 'Egyptian cat', ... but
    not 'catamaran'.
    """
    pattern = re.compile(rf"\b{re.escape(_key(text))}\b")
    return [(c.index, c.name) for c in classes() if any(pattern.search(_key(l)) for l in c.lemmas)]
