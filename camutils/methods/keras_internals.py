"""Every Keras-internal API camutils touches, in one module (the upgrade risk, in one place).

camutils opens a user's model at any layer without rebuilding or modifying it: it *runs* the
model layer by layer through Keras' own graph runner (see `camutils.methods.model_runner`).
Public Keras API cannot do that, so a few internals are used, here and nowhere else:

=============================================== ===========================================
internal                                        what camutils uses it for
=============================================== ===========================================
``keras.src.models.functional.Functional``      telling graph models (functional and
                                                Sequential, whose inner layers can be
                                                reached) from subclassed ones
``Functional._run_through_graph``               running a functional model node by node
                                                (the runner of ``Functional.call``) with a
                                                hook around every layer call
``Functional._standardize_inputs``              putting inputs in the structure that runner
                                                expects (as ``Functional.call`` does)
``Layer._call_context_args`` (Keras 3.10+),     knowing whether a layer takes ``training``
``Layer._call_has_training_arg`` (before 3.10)  (to call it in inference mode)
``Functional._outputs_struct``                  the names of a dict-output model's outputs
``KerasTensor._keras_history``                  the layer that produces a model output
``keras.src.backend.config.keras_home``         the Keras cache folder of downloaded
                                                weights once Keras is imported (before,
                                                and when it is missing, Keras'
                                                documented rule)
``Layer._flatten_layers``                       finding MultiHeadAttention layers inside a
                                                subclassed layer, to name it in the error
                                                of a method that reads attention (rollout)
``MultiHeadAttention._flash_attention``         knowing that Keras' flash attention is on
(Keras 3.5+; absent before flash attention      for a layer (it cannot return attention
existed, read as off)                           probabilities): a clear error instead
``tf.function``'s
``_omit_frequent_tracing_warning``              (TensorFlow's) silencing the "frequent
                                                retracing" warning for functions that
                                                are traced once each by design; a no-op
                                                if TensorFlow drops it
=============================================== ===========================================

Present in every Keras minor release from 3.3 (the lower bound, 3.3.3) to 3.15; the tests
pass on 3.3.3, 3.5.0, 3.8.0, 3.10.0, 3.12.4 and 3.15.1 (docs/platforms.md). `check_internals` looks for each of them and
says which are missing; the test suite runs it (a canary: a Keras upgrade that moves one
fails that test with a message naming it, before any method fails in an obscure way).
TensorFlow's graph API (``Tensor.op``, ``Operation.inputs``, ``Operation.type``) is public
and is used in `camutils.methods.model_graph` to follow tensors through a traced graph.
"""

from __future__ import annotations

__all__ = [
    "INTERNALS", "check_internals", "functional_class", "is_graph_model", "call_layer",
    "takes_training",
    "run_graph", "output_names", "keras_home", "traced_once", "sublayers", "flash_attention_on",
]

#: ``(where, name)`` of each internal, as `check_internals` looks for it.
INTERNALS: tuple[tuple[str, str], ...] = (
    ("keras.src.models.functional", "Functional"),
    ("Functional", "_run_through_graph"),
    ("Functional", "_standardize_inputs"),
    ("Layer", "_call_context_args|_call_has_training_arg"),  # either one (3.10+ | earlier)
    ("Functional", "_outputs_struct"),
    ("KerasTensor", "_keras_history"),
    ("keras.src.backend.config", "keras_home"),
    ("Layer", "_flatten_layers"),
)


def functional_class():
    """Keras' ``Functional`` class (the type of functional and Sequential models)."""
    from keras.src.models.functional import Functional

    return Functional


def is_graph_model(layer) -> bool:
    """Functional and Sequential models: the ones whose inner layers can be reached."""
    import keras

    return isinstance(layer, (functional_class(), keras.Sequential))


def takes_training(layer) -> bool:
    """Whether ``Functional.call(training=False)`` passes ``training=False`` to ``layer``.

    Keras 3.10 and later list the arguments it passes in ``Layer._call_context_args``;
    earlier versions pass ``training`` where ``Layer._call_has_training_arg`` is set (a
    feature check, not a version check).
    """
    context = getattr(layer, "_call_context_args", None)
    if context is not None:
        return "training" in context
    return bool(getattr(layer, "_call_has_training_arg", False))


def call_layer(layer, *args, **kwargs):
    """Call one layer in inference mode, as ``Functional.call(training=False)`` does."""
    if takes_training(layer):
        kwargs["training"] = False
    return layer(*args, **kwargs)


def run_graph(model, inputs, call):
    """Run a functional ``model`` node by node; ``call(layer, *args, **kwargs)`` calls each
    layer (and returns its output). Returns the outputs in the model's own structure."""
    if hasattr(model, "_standardize_inputs"):
        inputs = model._standardize_inputs(inputs)
    return model._run_through_graph(
        inputs, operation_fn=lambda layer: (lambda *a, **k: call(layer, *a, **k))
    )


def output_names(model) -> list[list[str]]:
    """For each output (in ``model.outputs`` order) the names it may be chosen by: its key
    when the model returns a dict, and the name of the layer that produces it."""
    outputs = model.outputs
    names = [[] for _ in outputs]
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        by_id = {id(t): k for k, t in struct.items()}
        for i, t in enumerate(outputs):
            if id(t) in by_id:
                names[i].append(str(by_id[id(t)]))
    for i, t in enumerate(outputs):
        history = getattr(t, "_keras_history", None)
        if history is not None and history[0].name not in names[i]:
            names[i].append(history[0].name)
    return names


def keras_home() -> str:
    """The Keras home folder (``~/.keras`` or ``$KERAS_HOME``), as Keras itself resolves it.

    Keras is not imported for it (importing it takes seconds, and a zoo model that cannot be
    downloaded must fail before that): until Keras is imported, its documented rule is
    followed, the rule that Keras applies when it is imported.
    """
    import os
    import sys

    if sys.modules.get("keras") is not None:
        try:
            from keras.src.backend.config import keras_home as home

            return home()
        except ImportError:  # Keras moved its private helper: follow its documented rule
            pass
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def traced_once(function):
    """Mark a ``tf.function`` that is traced once per model by design, so that TensorFlow's
    "frequent retracing" warning (which counts traces per source line) does not misfire."""
    function._omit_frequent_tracing_warning = True
    return function


def sublayers(layer) -> list:
    """Every layer that ``layer`` tracks inside itself, at any depth (not itself)."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def flash_attention_on(layer) -> bool:
    """Whether Keras' flash attention is on for a MultiHeadAttention ``layer`` (then it
    cannot return its attention probabilities). Keras before 3.5 had no flash attention."""
    return bool(getattr(layer, "_flash_attention", False))


def check_internals() -> list[str]:
    """The Keras internals of `INTERNALS` that this Keras lacks (empty when all are there).

    Each missing one is described as ``"Functional._run_through_graph"``. Instance
    attributes are looked for on small models built here (a dense layer and a functional
    model with a dict output), so the check needs no user model.
    """
    import keras

    missing = []
    try:
        functional = functional_class()
    except ImportError:
        return ["keras.src.models.functional.Functional"]
    inputs = keras.Input((2,))
    layer = keras.layers.Dense(1, name="probe")
    output = layer(inputs)
    model = keras.Model(inputs, {"probe": output})
    for where, name in INTERNALS[1:]:
        if where.startswith("keras."):
            import importlib

            try:
                present = hasattr(importlib.import_module(where), name)
            except ImportError:
                present = False
        else:
            owner = {"Functional": model, "Layer": layer, "KerasTensor": output}[where]
            present = isinstance(model, functional) and any(
                hasattr(owner, alternative) for alternative in name.split("|"))
        if not present:
            missing.append(f"{where}.{name}")
    return missing
