"""The method table: a method is one row (its rule and the row, nothing else), and everything
that lists or runs methods reads the rows; the plain functions are generated from them; one
compiled pass serves every rule of its kind (a second gradient method does not retrace)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import _models as M

import camutils

# --------------------------------------------------------------------------- one rule, one row

# The worked example of CONTRIBUTING.md: element-wise Grad-CAM, its rule and one table row.


def elementwise_gradcam_map(p):
    """Element-wise Grad-CAM: ``M_ij = sum_k ReLU(g^k_ij A^k_ij)``, the positive part of
    each position's gradient-times-activation, summed over channels."""
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(p.gradients * p.activations[:, None]), axis=-1)


@pytest.fixture
def new_method(monkeypatch):
    """One more row in the method table, for this test only: the rule above and a row."""
    from camutils.methods import registry

    row = registry.Method("elementwise_gradcam", "Element-wise Grad-CAM",
                          elementwise_gradcam_map, gives="map",
                          aliases=("gradcamelementwise",), paper="pytorch-grad-cam",
                          summary="gradient times activation, position by position, positive "
                                  "part.")
    monkeypatch.setattr(registry, "METHOD_TABLE", [*registry.METHOD_TABLE, row])
    return row


def _menu_zoo():
    from camutils.zoo import ZooModel

    model = M.gap_model(size=(16, 16), channels=(4, 6), classes=3, name="menu")
    return ZooModel(name="menu", model=model, input_size=(16, 16), class_names=["a", "b", "c"],
                    cam_layer="conv2", prepare=lambda b: np.stack(b),
                    normalize=lambda b: np.asarray(b, np.float32) / 255.0)


def test_a_new_method_is_one_table_row_away_from_everywhere(new_method, capsys, tmp_path):
    """A rule and a row, nothing else: `explain`, the plain function, `explain_dataset`, the
    command line's help, the explorer's menus and the benchmarks' method list and budget all
    have the method."""
    import tensorflow as tf

    from camutils.__main__ import main

    zoo = _menu_zoo()
    model, images = zoo.model, M.images(4, size=(16, 16))
    # explain, by any of its names
    e = camutils.explain(model, images, "GradCAM-ElementWise")
    assert e.method == "elementwise_gradcam" and e.maps.shape == (4, 16, 16)
    hires = camutils.explain(model, images, "hirescam")  # keeps the negative products
    assert np.all(e.raw >= hires.raw - 1e-6) and not np.allclose(e.raw, hires.raw)
    # the plain function: generated, a real function with its name, signature and doc
    function = camutils.elementwise_gradcam
    assert function is new_method.function is camutils.METHODS["elementwise_gradcam"]
    assert function is camutils.methods.elementwise_gradcam
    assert inspect.isfunction(function) and function.__name__ == "elementwise_gradcam"
    assert list(inspect.signature(function).parameters)[:4] == ["model", "images", "target",
                                                                "layer"]
    assert "M_ij = sum_k ReLU(g^k_ij A^k_ij)" in function.__doc__
    np.testing.assert_array_equal(function(model, images).raw, e.raw)
    assert "elementwise_gradcam" in camutils.__all__
    assert "elementwise_gradcam" in camutils.methods.__all__
    # explain_dataset: compiled as a one-pass step, the same maps
    data = tf.data.Dataset.from_tensor_slices(images)
    run = camutils.explain_dataset(model, data, "Element-wise Grad-CAM", out=tmp_path / "run",
                                   batch_size=2, progress=False)
    assert run.manifest["arguments"]["method"] == "elementwise_gradcam"
    np.testing.assert_allclose(run.load()["raw"], e.raw, rtol=1e-5, atol=1e-6 * e.raw.max())
    # the command line's help
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "elementwise_gradcam" in capsys.readouterr().out
    # the explorer's menus (and its label)
    from camutils.widgets import method_labels

    explorer = camutils.widgets.Explorer(
        models={"menu": zoo}, images={"noise": np.zeros((16, 16, 3), np.uint8)},
        method="Element-wise Grad-CAM", debounce=0)
    assert ("Element-wise Grad-CAM", "elementwise_gradcam") in explorer.method_select.options
    assert ("Element-wise Grad-CAM", "elementwise_gradcam") in explorer.compare_select.options
    assert method_labels()["elementwise_gradcam"] == "Element-wise Grad-CAM"
    assert explorer.explanation.method == "elementwise_gradcam"
    assert explorer.status_level == "ready"
    # the benchmarks: timed in the single-pass block, judged by its cost class's budget
    from benchmarks import budgets, model_bench

    assert "elementwise_gradcam" in model_bench.single_pass_methods()
    assert "elementwise_gradcam" in model_bench.Settings().methods
    assert budgets.ratio_budgets()["elementwise_gradcam"] == \
        budgets.COST_BUDGETS["layer gradient"]
    assert budgets.display_name("elementwise_gradcam") == "Element-wise Grad-CAM"


def test_the_table_is_read_at_every_call(new_method):
    from camutils.methods import registry

    assert "elementwise_gradcam" in registry.method_names()
    registry.METHOD_TABLE.remove(new_method)  # (monkeypatch restores the table afterwards)
    assert "elementwise_gradcam" not in registry.method_names()
    with pytest.raises(ValueError, match="Unknown method 'elementwise_gradcam'"):
        registry.canonical_name("elementwise_gradcam")


def test_a_row_with_an_option_checks_it_and_passes_it_to_its_rule(monkeypatch):
    """An option is declared once, in the row: the plain function's signature, the check of
    its values, its default and the rule's keyword argument all come from it."""
    from camutils.methods import registry
    from camutils.methods.options import Option, positive

    def scaled_gradcam_map(p, power=1):
        """``M_ij = sum_k g^k_ij (A^k_ij)^power``."""
        import tensorflow as tf

        return tf.reduce_sum(p.gradients * p.activations[:, None] ** power, axis=-1)

    row = registry.Method("powered", "Powered", scaled_gradcam_map, gives="map",
                          options=(Option("power", 1, positive, "the activations' exponent"),),
                          summary="a test method.")
    monkeypatch.setattr(registry, "METHOD_TABLE", [*registry.METHOD_TABLE, row])
    parameter = inspect.signature(camutils.powered).parameters["power"]
    assert parameter.kind == parameter.KEYWORD_ONLY and parameter.default == 1
    assert "power: the activations' exponent (default: 1)." in camutils.powered.__doc__
    model, images = M.gap_model(), M.images(2)
    np.testing.assert_allclose(camutils.powered(model, images).raw,
                               camutils.hirescam(model, images).raw, rtol=1e-6)
    assert not np.allclose(camutils.powered(model, images, power=2).raw,
                           camutils.hirescam(model, images).raw)
    with pytest.raises(ValueError, match="power must be a positive int, got 0"):
        camutils.explain(model, images, "powered", power=0)
    with pytest.raises(TypeError, match="no option 'counterfactual'.*options are: power"):
        camutils.powered(model, images, counterfactual=True)


def test_every_row_is_complete_and_its_names_are_unique():
    from camutils.methods.passes import PASS_KINDS
    from camutils.methods.registry import COSTS, GIVES, KINDS, method_table

    rows = method_table()
    keys = [k for m in rows for k in m.keys]
    assert len(keys) == len(set(keys)), "two methods answer to the same name"
    for m in rows:
        assert m.kind in KINDS and m.cost in COSTS and m.gives in GIVES
        assert m.label and m.paper and m.summary and m.rule.__doc__
        assert m.passes in ("one", "many") and m.pass_kind in PASS_KINDS
        assert inspect.isfunction(m.function) and m.function.__name__ == m.function_name
        assert m.function.__module__ == "camutils.methods" and m.paper in m.function.__doc__
        # after model, images, target, layer, class_names, output, chunk_size, grid and
        # prefix_tokens: the row's own options
        options = list(inspect.signature(m.function).parameters)[9:]
        assert options == [o.name for o in m.options]
    assert {c.pass_kind for c in COSTS.values()} == set(PASS_KINDS)
    # the cost class says how many passes: the per-channel methods alone need many
    assert {m.name for m in rows if m.passes == "many"} == {"scorecam", "ablationcam"}


def test_a_bad_row_is_refused():
    from camutils.methods.registry import Method

    with pytest.raises(ValueError, match="kind must be one of"):
        Method("x", "X", elementwise_gradcam_map, kind="magic")
    with pytest.raises(ValueError, match="cost must be one of"):
        Method("x", "X", elementwise_gradcam_map, cost="free")
    with pytest.raises(ValueError, match="gives must be one of"):
        Method("x", "X", elementwise_gradcam_map, gives="pictures")
    with pytest.raises(ValueError, match="needs function_name="):
        Method("x++", "X", elementwise_gradcam_map)


def test_a_rule_takes_its_options_as_arguments_not_from_a_closure():
    """A compiled step's cache key holds the rule and its options; a closure would hide one."""
    from camutils.methods.registry import Method

    counterfactual = True
    with pytest.raises(TypeError, match="closes over"):
        Method("x", "X", lambda p: elementwise_gradcam_map(p) * counterfactual)


# --------------------------------------------------------------------------- one pass, many rules


GRADIENT_RULES = ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"]


def _passes(model) -> dict:
    from camutils.model_cache import model_cache

    return {key: f for key, f in model_cache(model).items() if key[0] == "compiled"}


def test_a_second_gradient_method_on_the_same_layer_does_not_retrace():
    """Every gradient rule reads the one compiled pass of its model, layer and target: after
    the first, no function is added and none is traced again (traces counted, not seconds)."""
    model, images = M.gap_model(channels=(3, 5), seed=40), M.images(3)
    camutils.explain(model, images, "gradcam")
    first = _passes(model)
    assert len(first) == 1
    (key, function), = first.items()
    assert key[3:5] == ("pass", "layer gradient")
    for method in GRADIENT_RULES[1:]:
        camutils.explain(model, images, method)
        camutils.explain(model, images[:1], method)  # another batch size: no trace either
    assert _passes(model) == first and function.experimental_get_tracing_count() == 1
    # another target kind, or another layer, is another pass
    camutils.explain(model, images, "layercam", target=2)
    camutils.explain(model, images, "gradcam", layer="conv1")
    assert len(_passes(model)) == 3


def test_the_forward_and_the_guided_passes_are_shared_too():
    """CAM, Eigen-CAM and the first pass of Score-CAM and Ablation-CAM read one forward pass;
    guided backpropagation and Guided Grad-CAM (at the default layer) one guided pass."""
    model, images = M.gap_model(channels=(3, 5), seed=41), M.images(2)
    for method in ("cam", "eigencam", "scorecam", "ablationcam"):
        camutils.explain(model, images, method)
    kinds = sorted(key[4] for key in _passes(model) if key[3] == "pass")
    assert kinds == ["forward"]
    for method in ("guided_backprop", "guided_gradcam"):
        camutils.explain(model, images, method)
    kinds = sorted(key[4] for key in _passes(model) if key[3] == "pass")
    assert kinds == ["forward", "input gradient"]
    assert all(f.experimental_get_tracing_count() == 1 for f in _passes(model).values())
