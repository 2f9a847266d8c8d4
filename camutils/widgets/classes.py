"""Finding a class by what a person types: a name, an ImageNet lemma or WordNet id, an index."""

from __future__ import annotations

from ..suggestions import did_you_mean

__all__ = ["find_class"]


def find_class(text: str, class_names) -> int:
    """The index of the class that ``text`` names among ``class_names``.

    ``text`` is a class name (exact, or ignoring case with spaces for underscores), a class
    index written as digits, or, for the 1000 ImageNet classes, any lemma or WordNet id that
    `camutils.zoo.imagenet.class_index` understands.

    Raises:
        ValueError: no class matches; the message lists the closest names (for ImageNet, the
            classes whose names contain the word), or the valid index range.
    """
    text = str(text).strip()
    names = [str(n) for n in class_names]
    if not text:
        raise ValueError("Type a class name first (e.g. 'tabby').")
    if text.isdigit():
        index = int(text)
        if index < len(names):
            return index
        raise ValueError(f"Class index {index} is out of range: the model has {len(names)} "
                         f"classes (0 to {len(names) - 1}).")
    if text in names:
        return names.index(text)
    from ..zoo import imagenet

    if len(names) == imagenet.NUM_CLASSES and names == imagenet.class_names():
        try:
            return imagenet.class_index(text)
        except ValueError as error:
            found = imagenet.search_classes(text)
            if found:
                listed = ", ".join(name for _, name in found[:8])
                more = f" and {len(found) - 8} more" if len(found) > 8 else ""
                raise ValueError(f"No class is called {text!r}; classes whose names contain "
                                 f"it: {listed}{more}.") from None
            raise error from None
    lowered = [n.lower() for n in names]
    key = text.lower().replace(" ", "_")
    if key in lowered:
        return lowered.index(key)
    hint = did_you_mean(key, names, cutoff=0.5)
    raise ValueError(f"The model has no class {text!r}.{hint} Its classes: "
                     f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}.")
