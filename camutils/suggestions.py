""""Did you mean ...?": the closest names to a misspelt one, for every error message.

    did_you_mean("gapp", ["gap", "gmp"])          # " Did you mean 'gap'?"
    ranked("gradkam", ["cam", "gradcam"])         # ["gradcam", "cam"]  (every name, closest first)

Names are compared with `difflib` (the ratio of matching characters), without case.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

__all__ = ["closest", "did_you_mean", "ranked", "similarity"]


def similarity(a: str, b: str) -> float:
    """How alike two names are, from 0 (nothing in common) to 1 (equal, ignoring case)."""
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def closest(name: str, candidates: Iterable, n: int = 3, cutoff: float = 0.6) -> list:
    """Up to ``n`` candidates at least ``cutoff`` alike to ``name``, closest first.

    Candidates are compared by ``str(candidate)`` without case, and returned as given.
    """
    by_key: dict[str, list] = {}
    for candidate in candidates:
        by_key.setdefault(str(candidate).lower(), []).append(candidate)
    keys = difflib.get_close_matches(str(name).lower(), list(by_key), n=n, cutoff=cutoff)
    return [candidate for key in keys for candidate in by_key[key]][:n]


def did_you_mean(name: str, candidates: Iterable, n: int = 3, cutoff: float = 0.6, *,
                 what: str = "", show: Callable = repr) -> str:
    """``" Did you mean 'a', 'b' or 'c'?"`` (empty when nothing is close), to append to a message.

    ``what`` names the kind of thing, as in ``" Did you mean the sample 'chelsea'?"``;
    ``show`` formats each suggestion (``repr`` by default).
    """
    found = [show(c) for c in closest(name, candidates, n, cutoff)]
    if not found:
        return ""
    listed = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}"
    return f" Did you mean {what + ' ' if what else ''}{listed}?"


def ranked(name: str, candidates: Iterable, key: Callable[[str], str] = str,
           forms: Callable[[str], Iterable[str]] = lambda c: (c,)) -> list:
    """Every candidate, the closest to ``name`` first.

    For listings that must name every choice ("Methods, closest first: ..."). A candidate's
    closeness is the best `similarity` of ``key(name)`` to ``key(form)`` over its
    ``forms(candidate)`` (e.g. a layer path and its last part). Ties keep their order.
    """
    target = key(name)
    return sorted(candidates,
                  key=lambda c: -max(similarity(target, key(f)) for f in forms(c)))
