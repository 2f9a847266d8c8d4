"""Sanity checks: does the map change when the model's weights are destroyed?

    result = cascading_randomisation(model, inputs, method="gradcam")
    result["layers"]             # the layers randomised, top (the logits) first
    result["mean_correlation"]   # Spearman correlation with the original maps, per step

Adebayo et al. showed that some saliency methods produce nearly the same map for a trained
network and for one whose weights are random: such a map shows the image, not the model.
The model parameter randomisation test re-initialises the weights layer by layer, from the
top (the logits) down, and compares each new map with the original one. A method that
depends on what the model learned gives maps whose rank correlation with the originals
falls as more layers are randomised.

How it is done here
    * On a copy: the model is cloned (``keras.models.clone_model``, nested models too) and
      given the original weights (``set_weights``). The user's model is never touched; the
      copy's variables are re-assigned in place, so the explanation pipeline is compiled
      once for the copy and reused at every step (and by later checks of the same model:
      the copy is kept while the model lives, and reset to its weights at each call).
    * Re-initialisation, ``init="initializers"`` (the default): every weight of a layer,
      trainable or not, is drawn again from the layer's own initializer (``kernel_initializer``,
      ``bias_initializer``, ``gamma_initializer``, ``moving_variance_initializer``, ...), with a
      new seed derived from ``seed``: so a zero-initialised bias becomes zeros, a Dense kernel
      Glorot-uniform, BatchNorm statistics 0 and 1. A weight whose initializer cannot be
      found falls back to the ``"normal"`` rule (so a non-trainable one is then kept).
      ``init="normal"``: every trainable weight is drawn from a seeded normal distribution
      with mean 0 and the standard deviation of the original weight (0.01 for a constant
      weight); non-trainable weights (BatchNorm moving statistics) are kept. Both are
      deterministic for a given ``seed``; weights that are not floats (counters, random
      generator states) are never changed.
    * The target class: after randomisation the top class usually changes, so every step
      explains the class explained originally (``target`` or, by default, the original
      model's top class), never the randomised model's own top class.
    * Cascading (``mode="cascading"``, the paper's main test): randomisation accumulates,
      step ``i`` has the top ``i + 1`` layers (or groups) random. Independent
      (``mode="independent"``): step ``i`` has only layer (group) ``i`` random, every other
      layer keeps its trained weights. Both cost one explanation per step.
    * Similarity, per image and step, as the paper measures it (sec. 3, fig. 4): the Spearman
      rank correlation (`rank_correlation`) and the structural similarity (`ssim`) of the
      original and the new *signed* maps, with and without absolute values. Without them,
      a map whose sign flipped (evidence for the class turned into evidence against it)
      scores about -1; with them it counts as unchanged, which is the paper's main measure:
      it asks whether the map still shows the same places, whatever their sign. The signed
      map of Grad-CAM is its weighted sum before the ReLU (`signed_maps`), of guided
      backpropagation and Guided Grad-CAM the input gradients summed over the colours;
      other methods' maps are non-negative, so they are their own signed maps. The maps as
      drawn (after the ReLU, normalised) are compared too (``"correlation"``): an inverted
      Grad-CAM map then lights the background instead of the object.

Paper: J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks
for Saliency Maps", NeurIPS 2018, sec. 3.
"""

from __future__ import annotations

import zlib
from typing import Callable, Sequence

import numpy as np

from ..model_cache import model_cache

__all__ = [
    "rank_correlation", "ssim", "signed_maps", "randomisable_layers", "randomised_copy",
    "cascading_randomisation", "independent_randomisation", "SIMILARITIES",
]

#: The similarities `cascading_randomisation` reports per step and image, as Adebayo et al.
#: (sec. 3): rank correlation and SSIM of the signed maps, with and without absolute values.
SIMILARITIES = {
    "rank_abs": "Spearman rank correlation of the absolute values of the signed maps",
    "rank_no_abs": "Spearman rank correlation of the signed maps",
    "ssim_abs": "SSIM of the absolute values, each divided by its maximum",
    "ssim_no_abs": "SSIM of the signed maps, each min-max scaled to [0, 1] (a flipped sign "
                   "gives the complement 1 - m)",
}


def rank_correlation(maps_a, maps_b) -> np.ndarray:
    """Spearman rank correlation of each pair of maps, float32 ``(n,)`` in [-1, 1].

    The Pearson correlation of the pixels' ranks (ties get their average rank), per image.
    Identical maps give 1. A constant map has no ranking: when exactly one of a pair is
    constant, or both are constant but different, the correlation is reported as 0 (no
    agreement) rather than undefined, never NaN.
    """
    from scipy.stats import rankdata

    a = np.asarray(maps_a, dtype=np.float64)
    b = np.asarray(maps_b, dtype=np.float64)
    if a.ndim == 2 and b.ndim == 2:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(
            f"rank_correlation compares maps of the same shape (n, H, W); got {a.shape} and {b.shape}."
        )
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    correlation = np.divide((ra * rb).sum(axis=1), norm, out=np.zeros(len(a)), where=norm > 0)
    correlation[(a == b).all(axis=1)] = 1.0
    return np.clip(correlation, -1.0, 1.0).astype(np.float32)


def ssim(maps_a, maps_b, signed: bool = False) -> np.ndarray:
    """The structural similarity (Wang et al. 2004) of each pair of maps, float32 ``(n,)``.

    Each map is first scaled to [0, 1], so that the comparison ignores the maps' overall
    scale, as the rank correlation does: non-negative maps (``signed=False``, e.g. absolute
    values) are divided by their maximum; signed maps (``signed=True``) are min-max scaled,
    so that a map whose sign flipped becomes its complement ``1 - m`` (SSIM of two maps
    whose local means and structure both change sign is close to +1, so signed values
    cannot be compared as they are). A constant map becomes all zeros. scikit-image's
    ``structural_similarity`` with its defaults (a 7 x 7 uniform window) and data range 1.
    """
    from skimage.metrics import structural_similarity

    a = np.asarray(maps_a, dtype=np.float64)
    b = np.asarray(maps_b, dtype=np.float64)
    if a.ndim == 2 and b.ndim == 2:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim compares maps of the same shape (n, H, W); got {a.shape} and {b.shape}.")
    if not signed and (a.min(initial=0) < 0 or b.min(initial=0) < 0):
        raise ValueError("ssim(signed=False) takes non-negative maps; pass signed=True, or the "
                         "absolute values.")

    def scaled(m):
        low = m.min(axis=(1, 2), keepdims=True) if signed else np.zeros((len(m), 1, 1))
        span = m.max(axis=(1, 2), keepdims=True) - low
        return np.divide(m - low, span, out=np.zeros_like(m), where=span > 0)

    a, b = scaled(a), scaled(b)
    side = min(a.shape[1:])
    window = 7 if side >= 7 else (side if side % 2 else side - 1)  # odd, at most the map
    return np.array([1.0 if np.array_equal(x, y) else
                     structural_similarity(x, y, data_range=1.0, win_size=window)
                     for x, y in zip(a, b)], dtype=np.float32)


def _upsample(raw, size):
    import tensorflow as tf

    raw = np.asarray(raw, np.float32)
    if raw.shape[1:] == tuple(size):
        return raw
    return tf.image.resize(raw[..., None], size, method="bilinear")[..., 0].numpy()


def signed_maps(explanation, model=None, inputs=None, method=None, layer=None,
                explainer: Callable | None = None, **options) -> np.ndarray:
    """The signed maps behind ``explanation``, at its maps' resolution, float32 ``(n, H, W)``.

    * Grad-CAM (a method whose row has a ``counterfactual`` option): ``sum_k w_k A^k``
      before the ReLU, upsampled bilinearly as the pipeline upsamples. camutils keeps only
      its positive part (``raw``); the negative part is the counterfactual map (negated
      weights), so one more call with ``counterfactual=True`` gives it, and ``signed = raw -
      counterfactual raw`` (needs ``model``, ``inputs``, ``method``, ``layer`` and the
      options of the first call).
    * Guided backpropagation, Guided Grad-CAM (rows that give values per pixel): the
      per-colour input gradients (``extras["gradients"]``) summed over the colours.
    * An explanation with a ``signed_maps`` attribute (a custom explainer's): that.
    * Anything else (CAM, the other methods): the maps themselves, which are non-negative.
    """
    size = np.asarray(explanation.maps).shape[1:]
    custom = getattr(explanation, "signed_maps", None)
    if custom is not None:
        return np.asarray(custom, np.float32)
    row = _row(getattr(explanation, "method", None))
    extras = getattr(explanation, "extras", None) or {}
    if row is not None and row.gives == "pixels" and "gradients" in extras:
        return np.asarray(extras["gradients"], np.float32).sum(axis=-1)
    if row is not None and "counterfactual" in row.option_names and \
            not options.get("counterfactual") and model is not None:
        if explainer is None:
            from ..methods import explain as explainer
        against = explainer(model, inputs, method=method, target=explanation.class_index,
                            layer=layer, counterfactual=True, **options)
        return _upsample(np.asarray(explanation.raw) - np.asarray(against.raw), size)
    return np.asarray(explanation.maps, np.float32)


def _row(name):
    """The method table's row of ``name`` (None for a custom explainer's method)."""
    from ..methods.registry import method_info

    try:
        return method_info(name) if isinstance(name, str) else None
    except ValueError:
        return None


def _similarities(original, new) -> dict:
    """Every measure of `SIMILARITIES` for two batches of signed maps, ``(n,)`` each."""
    return {
        "rank_abs": rank_correlation(np.abs(original), np.abs(new)),
        "rank_no_abs": rank_correlation(original, new),
        "ssim_abs": ssim(np.abs(original), np.abs(new)),
        "ssim_no_abs": ssim(original, new, signed=True),
    }


# --------------------------------------------------------------------------- layers


def _is_graph_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model) and hasattr(layer, "layers")


def _walk(model, prefix: str = ""):
    """Every leaf layer as ``(path, layer)``, in the model's order, nested models expanded."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if _is_graph_model(layer):
            yield from _walk(layer, path + "/")
        else:
            yield path, layer


def randomisable_layers(model) -> list[str]:
    """The paths of the layers that have weights, from the top (the logits) down.

    Paths are layer names, or ``"outer/inner"`` inside nested models (the same paths
    `camutils.explain` takes as ``layer``). This is the default order of the cascade.
    """
    model = getattr(model, "model", model) if not hasattr(model, "layers") else model
    return [path for path, layer in reversed(list(_walk(model))) if layer.weights]


def _layer_at(model, path: str):
    layer = model
    for name in path.split("/"):
        try:
            layer = layer.get_layer(name)
        except ValueError:
            raise ValueError(
                f"The model has no layer {path!r}. Layers with weights, top first: "
                f"{', '.join(randomisable_layers(model)[:12])}"
                f"{' ...' if len(randomisable_layers(model)) > 12 else ''}."
            ) from None
    return layer


def randomised_copy(model):
    """A copy of ``model`` with the same weights and its own variables (the model is untouched).

    Raises a ValueError for subclassed models, which Keras cannot clone.
    """
    import keras

    try:
        copy = keras.models.clone_model(model, recursive=True)
    except Exception as error:
        raise ValueError(
            f"Cannot copy model {model.name!r} to randomise it ({type(error).__name__}: {error}). "
            "The sanity checks need a Sequential or functional model (subclassed models "
            "cannot be cloned)."
        ) from None
    copy.set_weights(model.get_weights())
    original = {id(v) for v in model.weights}
    if any(id(v) in original for v in copy.weights):
        raise RuntimeError("The model's copy shares variables with the model: refusing to randomise it.")
    return copy


def _working_copy(model):
    """The model's copy for randomisation, reset to the model's current weights.

    One copy is kept per model, in the model's cache (`camutils.model_cache`: it goes with
    the model; the copy shares nothing with it), so that repeated checks (other seeds, the
    independent variant) reuse the explanation pipeline compiled for it instead of tracing
    a new one each time.
    """
    cache = model_cache(model)
    if "sanity working copy" not in cache:
        cache["sanity working copy"] = randomised_copy(model)
        return cache["sanity working copy"]
    copy = cache["sanity working copy"]
    copy.set_weights(model.get_weights())
    return copy


def _initializer_for(layer, variable):
    """The layer's initializer for ``variable`` (by Keras naming conventions), or None."""
    name = variable.name.split("/")[-1].split(":")[0]
    candidates = [f"{name}_initializer"]
    if name.endswith("_kernel"):
        candidates.append(name[: -len("_kernel")] + "_initializer")
    if name == "kernel":
        candidates += ["depthwise_initializer"]
    for attribute in candidates:
        initializer = getattr(layer, attribute, None)
        if initializer is not None and callable(initializer):
            return initializer
    return None


def _reseeded(initializer, seed: int):
    config = initializer.get_config() if hasattr(initializer, "get_config") else None
    if config is None:
        return None
    if "seed" in config:
        config["seed"] = int(seed)
    try:
        return initializer.__class__.from_config(config)
    except Exception:
        return None


def _randomise_layer(layer, init: str, rng_key: Sequence[int]) -> None:
    """Re-initialise every float weight of ``layer`` in place (see the module's notes)."""
    for index, variable in enumerate(layer.weights):
        if "float" not in str(variable.dtype):  # counters, seed states: not weights
            continue
        seed_sequence = np.random.SeedSequence([*rng_key, index])
        value = None
        if init == "initializers":
            initializer = _initializer_for(layer, variable)
            seeded = None if initializer is None else _reseeded(
                initializer, int(seed_sequence.generate_state(1)[0] % (2 ** 31)))
            if seeded is not None:
                value = np.asarray(seeded(tuple(variable.shape), dtype=variable.dtype))
        if value is None:  # the "normal" rule, also the fallback without an initializer
            if not variable.trainable:
                continue
            original = np.asarray(variable.numpy(), dtype=np.float64)
            scale = float(original.std()) or 0.01
            value = np.random.default_rng(seed_sequence).normal(0.0, scale, original.shape)
        variable.assign(np.asarray(value).astype(variable.dtype))


# --------------------------------------------------------------------------- the tests


def _steps(model, layers) -> list[list[str]]:
    if layers is None:
        layers = randomisable_layers(model)
    elif isinstance(layers, str):
        layers = [layers]
    steps = [[item] if isinstance(item, str) else list(item) for item in layers]
    if not steps or not all(steps):
        raise ValueError("layers must name at least one layer per step (a name or a list of names).")
    for group in steps:
        for path in group:
            if not _layer_at(model, path).weights:
                raise ValueError(f"Layer {path!r} has no weights to randomise.")
    return steps


def _model_and_inputs(model, inputs, layer):
    """A zoo model's Keras model, normalised inputs, default layer and class names."""
    from ..zoo.model import ZooModel

    if isinstance(model, ZooModel):
        from ._scoring import _zoo_images

        pixels = _zoo_images(model, inputs).astype(np.uint8)
        return (model.model, np.asarray(model.normalize(pixels), np.float32),
                model.cam_layer if layer is None else layer, model.class_names)
    if not hasattr(model, "layers"):
        raise TypeError(
            f"model must be a Keras model or a camutils.zoo.ZooModel; got {type(model).__name__}."
        )
    return model, inputs, layer, None


def cascading_randomisation(model, inputs, method: str = "gradcam", target=None, layer=None, *,
                            layers=None, mode: str = "cascading", init: str = "initializers",
                            seed: int = 0, keep_maps: bool = False, progress: bool = True,
                            explainer: Callable | None = None, **options) -> dict:
    """The model parameter randomisation test of Adebayo et al. (2018), cascading by default.

    Args:
        model: a Keras Sequential or functional model (``inputs``: its float input batch),
            or a `camutils.zoo.ZooModel` (``inputs``: uint8 images as the network sees them;
            ``layer`` defaults to its CAM layer).
        method, target, layer, options: what to explain, as for `camutils.explain`. The
            target classes of the original explanation are kept at every step.
        layers: the steps, top first: layer paths, or lists of paths randomised together
            as one step (a block). Default: every layer with weights, top down
            (`randomisable_layers`).
        mode: ``"cascading"`` (randomisation accumulates) or ``"independent"`` (one layer or
            group at a time, the rest trained).
        init: ``"initializers"`` or ``"normal"`` (see the module's notes).
        seed: seeds the new weights (the same seed gives the same result).
        keep_maps: also return every step's maps.
        progress: show a progress bar over the steps.
        explainer: the explanation function, ``explainer(model, inputs, method=..., target=...,
            layer=..., **options)`` returning an object with ``.maps`` ``(n, H, W)`` and
            ``.class_index``; default `camutils.explain`.

    Returns:
        A dict: ``"layers"``, the step labels (a group's paths joined by ``"+"``);
        ``"correlation"`` float32 ``(steps, n)``, Spearman per step and image, of the maps as
        drawn; ``"rank_abs"``, ``"rank_no_abs"``, ``"ssim_abs"``, ``"ssim_no_abs"`` float32
        ``(steps, n)``, the paper's similarities of the signed maps (`SIMILARITIES`);
        ``"mean_correlation"`` and ``"std_correlation"`` ``(steps,)``; ``"target"`` ``(n,)``;
        ``"original_maps"`` ``(n, H, W)``; with ``keep_maps``, ``"maps"`` ``(steps, n, H, W)``
        and the signed maps the similarities compare, ``"signed_maps"`` ``(steps, n, H, W)``
        and ``"original_signed_maps"`` ``(n, H, W)``.
    """
    from tqdm.auto import tqdm

    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode must be 'cascading' or 'independent'; got {mode!r}.")
    if init not in ("initializers", "normal"):
        raise ValueError(f"init must be 'initializers' or 'normal'; got {init!r}.")
    if explainer is None:
        from ..methods import explain as explainer
    keras_model, inputs, layer, class_names = _model_and_inputs(model, inputs, layer)
    if class_names is not None:
        options.setdefault("class_names", class_names)
    steps = _steps(keras_model, layers)

    original = explainer(keras_model, inputs, method=method, target=target, layer=layer, **options)
    original_maps = np.asarray(original.maps, dtype=np.float32)
    if original_maps.ndim != 3:
        raise ValueError(
            f"The sanity check compares one map per image, (n, H, W); the explanation's maps "
            f"have shape {original_maps.shape}. Give one target per image (not TopK)."
        )
    classes = np.asarray(original.class_index, dtype=np.int64)
    original_signed = signed_maps(original, keras_model, inputs, method, layer, explainer,
                                  **options)

    copy = _working_copy(keras_model)
    saved: dict = {}
    records: dict[str, list] = {"correlation": [], "maps": [], "signed_maps": [],
                                **{name: [] for name in SIMILARITIES}}
    for step, group in enumerate(tqdm(steps, desc=f"{mode} randomisation", unit="step",
                                      disable=not progress, leave=False)):
        _randomise_step(copy, group, step, mode, init, seed, saved)
        explanation = explainer(copy, inputs, method=method, target=classes, layer=layer, **options)
        maps = np.asarray(explanation.maps, dtype=np.float32)
        records["correlation"].append(rank_correlation(original_maps, maps))
        signed = signed_maps(explanation, copy, inputs, method, layer, explainer, **options)
        for name, values in _similarities(original_signed, signed).items():
            records[name].append(values)
        if keep_maps:
            records["maps"].append(maps)
            records["signed_maps"].append(signed)
    return _randomisation_result(steps, records, classes, original_maps,
                                 original_signed if keep_maps else None)


def _randomise_step(model, group: list[str], step: int, mode: str, init: str, seed: int,
                    saved: dict) -> None:
    """Randomise one step's layers of ``model`` (a working copy). In the independent mode,
    first put back the trained weights of the previous step's layers (kept in ``saved``)."""
    if mode == "independent":
        for path, weights in saved.items():
            _layer_at(model, path).set_weights(weights)
        saved.clear()
    for path in group:
        target_layer = _layer_at(model, path)
        if mode == "independent":
            saved[path] = target_layer.get_weights()
        _randomise_layer(target_layer, init, (int(seed), step, zlib.crc32(path.encode())))


def _randomisation_result(steps, records: dict, classes, original_maps,
                          original_signed=None) -> dict:
    """`cascading_randomisation`'s dict from what each step recorded (the maps too when
    ``original_signed`` is given: ``keep_maps``)."""
    correlation = np.stack(records["correlation"]).astype(np.float32)
    result = {
        "layers": ["+".join(group) for group in steps],
        "correlation": correlation,
        "mean_correlation": correlation.mean(axis=1),
        "std_correlation": correlation.std(axis=1),
        "target": classes,
        "original_maps": original_maps,
        **{name: np.stack(records[name]).astype(np.float32) for name in SIMILARITIES},
    }
    if original_signed is not None:
        result["maps"] = np.stack(records["maps"])
        result["signed_maps"] = np.stack(records["signed_maps"]).astype(np.float32)
        result["original_signed_maps"] = np.asarray(original_signed, np.float32)
    return result


def independent_randomisation(model, inputs, method: str = "gradcam", target=None, layer=None,
                              **kwargs) -> dict:
    """The independent variant: each step randomises one layer (or group) only.

    The same as ``cascading_randomisation(..., mode="independent")``.
    """
    return cascading_randomisation(model, inputs, method, target, layer, mode="independent", **kwargs)
