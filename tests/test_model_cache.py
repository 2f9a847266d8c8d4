"""The one per-model cache (camutils.model_cache): shared by every module that compiles, and
it dies with the model, whichever module filled it."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import _models as M
import camutils
from camutils.model_cache import cache_size, cached, compiled_forward, model_cache


def _dies(make_model, use) -> None:
    """``use(model)`` fills the model's cache; afterwards the model and its cache are gone."""
    model = make_model()
    use(model)
    assert model_cache(model), "the module under test cached nothing for the model"
    gc.collect()  # models of earlier tests go now, not in the count below
    reference, before = weakref.ref(model), cache_size()
    del model
    gc.collect()
    assert reference() is None, "something keeps the model alive"
    assert cache_size() <= before - 1  # its cache went with it (others may go at the same time)


def _tiny():
    return M.gap_model(size=(16, 16), channels=(4, 6), classes=3, name="short_lived")


def _zoo(model):
    from camutils.zoo import ZooModel

    return ZooModel(name="tiny", model=model, input_size=(16, 16), class_names=["a", "b", "c"],
                    cam_layer="conv2", prepare=lambda b: np.stack(b),
                    normalize=lambda b: np.asarray(b, np.float32) / 255.0)


def test_every_method_leaves_no_model_behind():
    _dies(_tiny, lambda m: [camutils.explain(m, M.images(1, size=(16, 16)), method,
                                             **({"max_channels": 2} if method == "scorecam" else {}))
                            for method in M.cnn_methods()])


def test_the_zoo_forward_leaves_no_model_behind():
    """A ZooModel owns its model; once it goes, the model and the compiled forward go."""
    zoo = _zoo(_tiny())
    zoo.top_k(np.zeros((2, 16, 16, 3), np.uint8), k=2)
    model = zoo.model
    assert "forward" in model_cache(model)
    reference = weakref.ref(model)
    del zoo, model
    gc.collect()
    assert reference() is None


def test_the_metrics_leave_no_model_behind():
    """The leak of the reliability issue: the metrics' compiled forward kept every model."""
    from camutils import metrics

    images = M.images(2, size=(16, 16))
    maps = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    _dies(_tiny, lambda m: metrics.faithfulness_scores(m, images, maps, steps=4, progress=False))


def test_the_sanity_checks_leave_no_model_behind():
    from camutils import metrics

    images = M.images(2, size=(16, 16))
    _dies(_tiny, lambda m: metrics.cascading_randomisation(m, images, "gradcam", layers=["logits"],
                                                           progress=False))


def test_the_course_evaluation_leaves_no_model_behind():
    from camutils.course import architecture, evaluation

    _dies(lambda: architecture.build_course_model("gap"),
          lambda m: evaluation.evaluate_course_model(m, "gap", n=8))


def test_the_benchmark_references_leave_no_model_behind():
    from benchmarks.references import References

    images = M.images(2, size=(16, 16))

    def use(model):
        references = References(model, "conv2")
        references.forward(images)
        references.ablationcam(images, batch_size=4)[0]()

    _dies(_tiny, use)


def test_explaining_a_dataset_leaves_no_model_behind(tmp_path):
    """explain_dataset's compiled step lives in the model's cache, and dies with it (a
    single-pass method's step, and a multi-pass method run batch by batch)."""
    import tensorflow as tf

    images = (M.images(6, size=(16, 16)) * 255).astype(np.uint8)
    runs = iter(range(100))

    def use(model):
        for method in ("gradcam", "ablationcam"):
            source = tf.data.Dataset.from_tensor_slices(images)
            camutils.explain_dataset(model, source, method, out=tmp_path / str(next(runs)),
                                     batch_size=2, shard_size=4, progress=False)

    _dies(_tiny, use)


def test_one_cache_is_shared_by_every_module():
    """The pipeline, the metrics and the zoo find the same compiled forward and analysis."""
    from camutils.methods.model_graph import describe_model
    from camutils.metrics._scoring import perturbation_space

    model = _tiny()
    zoo = _zoo(model)
    zoo.logits(np.zeros((1, 16, 16, 3), np.uint8))
    forward = compiled_forward(model)
    perturbation_space(model, M.images(1, size=(16, 16))).probabilities(M.images(1, size=(16, 16)))
    assert compiled_forward(model) is forward and model_cache(model)["forward"] is forward
    assert describe_model(model) is model_cache(model)["graph"]
    assert forward.experimental_get_tracing_count() == 1


def test_cached_builds_once_per_key():
    model = _tiny()
    calls = []
    assert cached(model, "k", lambda: calls.append(1) or "value") == "value"
    assert cached(model, "k", lambda: calls.append(1) or "other") == "value"
    assert calls == [1]


def test_a_model_that_cannot_be_weakly_referenced_is_not_cached():
    class Plain:
        __slots__ = ()

    assert model_cache(Plain()) == {} and model_cache(Plain()) is not model_cache(Plain())


@pytest.mark.parametrize("method", ["gradcam", "cam"])
def test_the_forward_of_a_softmax_model_is_its_output(method):
    """compiled_forward is the model's own output (probabilities here); explain reads logits."""
    model = M.gap_model(size=(16, 16), channels=(4, 6), classes=3, softmax="dense", name="soft")
    x = M.images(2, size=(16, 16))
    np.testing.assert_allclose(np.asarray(compiled_forward(model)(x)).sum(axis=1), 1.0, rtol=1e-5)
    assert camutils.explain(model, x, method).score.max() != pytest.approx(1.0)
