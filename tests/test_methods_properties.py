"""Properties every method keeps: finite maps in [0, 1], degenerate maps are zero, one trace
per compiled function, no Python loop over channels or images, no model kept alive."""

import gc
import weakref

import numpy as np
import pytest

import _models as M

import hypothesis  # noqa: E402
import tensorflow  # noqa: E402,F401
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from camutils import methods as cm  # noqa: E402
from camutils.model_cache import model_cache  # noqa: E402

METHODS = M.cnn_methods()
GRADIENT_METHODS = ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam",
                    "guided_gradcam"]

# Built once: hypothesis draws among them (building and tracing per example would be slow).
_POOL = {}


def _pool():
    if not _POOL:
        _POOL["relu"] = M.gap_model(channels=(3, 4), classes=3, seed=11)
        _POOL["relu6_dropout"] = M.gap_model(channels=(4,), classes=4, seed=12,
                                             activation="relu6", dropout=0.5)
        _POOL["linear_gmp"] = M.gap_model(channels=(3, 3), classes=3, seed=13, head="gmp",
                                          activation=None)
    return _POOL


def _assert_valid(e):
    for array in (e.maps, e.raw):
        assert np.isfinite(array).all()
    assert e.maps.min() >= 0.0 and e.maps.max() <= 1.0
    assert e.raw.min() >= 0.0
    assert np.isfinite(e.score).all()


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    model_name=st.sampled_from(["relu", "relu6_dropout", "linear_gmp"]),
    method=st.sampled_from(METHODS),
    top_k=st.booleans(),
    images=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.just(16), st.just(16), st.just(3)),
        elements=st.floats(-1e3, 1e3, width=32),
    ),
)
def test_every_method_gives_finite_maps_in_unit_range(model_name, method, top_k, images):
    model = _pool()[model_name]
    target = cm.TopK(2) if top_k else None
    e = cm.explain(model, images, method, target=target)
    _assert_valid(e)
    assert e.maps.shape[0] == len(images)
    assert e.maps.shape[-2:] == (16, 16)


@pytest.mark.parametrize("method", METHODS)
def test_constant_images_give_all_zero_maps(method):
    # With 'valid' padding a constant image gives constant feature maps: nothing to localise.
    # Guided methods map input gradients, which are not constant (border pixels feed fewer
    # outputs): for them only validity is required.
    model = _valid_model()
    for value in (0.0, 0.5, -3.0):
        e = cm.explain(model, np.full((2, 16, 16, 3), value, np.float32), method)
        _assert_valid(e)
        if not method.startswith("guided"):
            np.testing.assert_array_equal(e.maps, 0.0)


_VALID = {}


def _valid_model():
    if not _VALID:
        _VALID["model"] = M.gap_model(channels=(3, 4), seed=21, padding="valid")
    return _VALID["model"]


def _with_dense_kernel(kernel_fn, seed):
    model = M.gap_model(channels=(3, 4), seed=seed)
    dense = model.get_layer("logits")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel_fn(kernel), bias])
    return model


@pytest.fixture(scope="module")
def negative_weights_model():
    """ReLU features and a dense kernel < 0: every class's evidence is negative (shared by
    the methods: none changes the model)."""
    return _with_dense_kernel(lambda k: -np.abs(k) - 0.01, seed=22)


@pytest.fixture(scope="module")
def zero_weights_model():
    return _with_dense_kernel(np.zeros_like, seed=23)


@pytest.mark.parametrize("method", ["cam", "gradcam", "hirescam", "layercam", "xgradcam",
                                    "gradcam++", "ablationcam"])
def test_all_negative_maps_give_all_zero_maps(negative_weights_model, method):
    model = negative_weights_model
    x = M.images(2)
    e = cm.explain(model, x, method, target=0)
    _assert_valid(e)
    np.testing.assert_array_equal(e.maps, 0.0)
    np.testing.assert_array_equal(e.raw, 0.0)


@pytest.mark.parametrize("method", ["cam"] + GRADIENT_METHODS)
def test_zero_gradients_give_all_zero_maps(zero_weights_model, method):
    model = zero_weights_model
    e = cm.explain(model, M.images(2), method)
    _assert_valid(e)
    np.testing.assert_array_equal(e.maps, 0.0)


@pytest.mark.parametrize("method", METHODS)
def test_same_call_twice_gives_identical_maps(method):
    model = _pool()["relu"]
    x = M.images(3, seed=5)
    first = cm.explain(model, x, method, target=cm.TopK(2))
    second = cm.explain(model, x, method, target=cm.TopK(2))
    np.testing.assert_array_equal(first.maps, second.maps)
    np.testing.assert_array_equal(first.raw, second.raw)
    np.testing.assert_array_equal(first.class_index, second.class_index)


def _compiled(model):
    return {key: value for key, value in model_cache(model).items()
            if key[0] == "compiled"}


@pytest.fixture(scope="module")
def traced_at_every_batch_size():
    """A model explained by every method at batch sizes 1, 2, 5 and 3 (shared: tracing
    every method is the slow part of the two tests below)."""
    model = M.gap_model(channels=(3, 4), seed=24)
    for n in (1, 2, 5, 3):
        for method in METHODS:
            cm.explain(model, M.images(n, seed=n), method)
    return model


def test_one_trace_per_function_whatever_the_batch_size(traced_at_every_batch_size):
    functions = _compiled(traced_at_every_batch_size)
    # one pass per kind (forward, layer gradient, input gradient), one block function per
    # per-channel rule: every method ran on one of them
    assert len(functions) == 5, sorted(functions)
    counts = {key: f.experimental_get_tracing_count() for key, f in functions.items()}
    assert set(counts.values()) == {1}, counts


def _graph_sizes(model):
    return {
        key[3:]: len(f.get_concrete_function().graph.get_operations())
        for key, f in _compiled(model).items()
    }


def test_graphs_do_not_grow_with_channels_or_images(traced_at_every_batch_size):
    # A Python loop over channels (or images) would unroll into more operations.
    large = M.gap_model(channels=(3, 24), seed=25)
    for method in METHODS:
        cm.explain(large, M.images(2), method)
    small, large = _graph_sizes(traced_at_every_batch_size), _graph_sizes(large)
    assert small.keys() == large.keys()
    assert small == large
    # reading the graphs traced nothing new
    assert {f.experimental_get_tracing_count()
            for f in _compiled(traced_at_every_batch_size).values()} == {1}


def test_explaining_does_not_keep_the_model_alive():
    model = M.gap_model(name="short_lived", seed=26)
    for method in METHODS:
        cm.explain(model, M.images(1), method)
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None
