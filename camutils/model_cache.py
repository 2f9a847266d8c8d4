"""One cache per model for everything camutils compiles or derives from it; it dies with the model.

    cache = model_cache(model)                  # a dict that lives exactly as long as the model
    value = cached(model, key, build)           # build() once per (model, key)
    forward = compiled_forward(model)           # model(x, training=False) as one tf.function

Every module that compiles a function of a model keeps it here: the explanation pipeline (its
layer analysis, feature models and compiled rules), the metrics, the zoo's forward pass, the
course models' evaluation and the benchmarks' references. The cache is a
``WeakKeyDictionary`` keyed by the model, so an entry goes when its model goes, provided the
entry never holds the model strongly: a value that did (a ``tf.function`` closing over the
model, say) would keep its own key alive forever. Compiled functions therefore reach the
model through a weak reference (`compiled_forward` shows how), and a test checks that
explaining, scoring and loading leave no model behind.

A model that cannot be weakly referenced gets a fresh, empty dict each time (no caching).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Hashable

__all__ = ["model_cache", "cached", "compiled_forward", "cache_size"]

_CACHES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def model_cache(model) -> dict:
    """The dict that belongs to ``model`` (created on first use, dropped with the model).

    Whatever is stored in it must not hold a strong reference to the model itself.
    """
    try:
        return _CACHES.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return {}


def cached(model, key: Hashable, build: Callable[[], Any]):
    """``model_cache(model)[key]``, built by ``build()`` the first time it is asked for."""
    cache = model_cache(model)
    if key not in cache:
        cache[key] = build()
    return cache[key]


def cache_size() -> int:
    """How many models have a cache now (for tests: it must fall when models are deleted)."""
    return len(_CACHES)


def compiled_forward(model):
    """``model(x, training=False)`` compiled once per model with ``tf.function``.

    The batch axis is left open (one trace for every batch size) when the model has one
    input of known rank; otherwise TensorFlow traces as it needs (``reduce_retracing``). The
    function reaches the model through a weak reference, so the cache entry does not keep
    the model alive.
    """

    def build():
        import tensorflow as tf

        reference = weakref.ref(model)

        def forward(x):
            return reference()(x, training=False)

        try:
            inputs = model.inputs
        except (AttributeError, ValueError):  # a subclassed model that has not been built
            inputs = None
        if inputs and len(inputs) == 1 and len(inputs[0].shape) > 0:
            spec = tf.TensorSpec((None, *inputs[0].shape[1:]), inputs[0].dtype)
            function = tf.function(forward, input_signature=[spec], autograph=False)
        else:
            function = tf.function(forward, reduce_retracing=True, autograph=False)
        return function

    return cached(model, "forward", build)
