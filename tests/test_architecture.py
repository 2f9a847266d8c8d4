"""The package's shape: no import cycles, one method table that everything reads, the Keras
internals in one module (with a canary). One import path per module: tests/test_import_paths.py."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import camutils

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "camutils"


# --------------------------------------------------------------------------- import cycles


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The camutils modules that ``name`` imports, anywhere in its code (function-level
    imports too: they run when the function does), plus the packages Python runs first to
    import them (importing ``a.b.c`` runs ``a.b``'s ``__init__``), except packages that
    contain ``name`` itself (they are already being imported)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if not target.startswith("camutils"):
                continue
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                ancestor = ".".join(parts[:i])
                if ancestor in known and ancestor != name and not name.startswith(ancestor + "."):
                    found.add(ancestor)
    return found


def test_no_import_cycles_in_camutils():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_walker_finds_a_cycle(tmp_path, monkeypatch):
    """The walker is able to fail: two modules that import each other (lazily) are a cycle."""
    package = tmp_path / "camutils"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .b import g\n")
    (package / "b.py").write_text("from camutils import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    with pytest.raises(AssertionError, match=r"camutils\.a -> camutils\.b -> camutils\.a"):
        test_no_import_cycles_in_camutils()


# --------------------------------------------------------------------------- the method table


# The worked example of CONTRIBUTING.md: element-wise Grad-CAM, its rule and one table row.


def elementwise_gradcam_map(p):
    """Element-wise Grad-CAM: ``M_ij = sum_k ReLU(g^k_ij A^k_ij)``, the positive part of
    each position's gradient-times-activation, summed over channels."""
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(p.gradients * p.activations[:, None]), axis=-1)


def elementwise_gradcam(model, images, target=None, layer=None, *, class_names=None,
                        output=None):
    """Element-wise Grad-CAM: gradient times activation, position by position, positive part."""
    from camutils.methods.pipeline import Rule, prepare, run_rule

    request = prepare(model, images, target, layer, class_names, output)
    return run_rule(request, Rule("elementwisegradcam", elementwise_gradcam_map, kind="map"))


@pytest.fixture
def new_method(monkeypatch):
    """One more row in the method table, for this test only."""
    from camutils.methods import registry

    row = registry.Method("elementwisegradcam", elementwise_gradcam, "Element-wise Grad-CAM",
                          ("gradcamelementwise",), "gradient", "layer gradient",
                          "pytorch-grad-cam")
    monkeypatch.setattr(registry, "METHOD_TABLE", [*registry.METHOD_TABLE, row])
    return row


def test_a_new_method_is_one_table_row_away_from_everywhere(new_method, capsys):
    """Adding a row is enough: the CLI help, the explorer's menus, the benchmarks' method
    list and budgets, the exports and `explain` all see it."""
    import _models as M

    from camutils.__main__ import main

    # the command line's help
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "elementwisegradcam" in capsys.readouterr().out
    # the explorer's menus (and its label)
    from camutils.widgets import method_labels
    from camutils.zoo import ZooModel

    model = M.gap_model(size=(16, 16), channels=(4, 6), classes=3, name="menu")
    zoo = ZooModel(name="menu", model=model, input_size=(16, 16), class_names=["a", "b", "c"],
                   cam_layer="conv2", prepare=lambda b: np.stack(b),
                   normalize=lambda b: np.asarray(b, np.float32) / 255.0)
    explorer = camutils.widgets.Explorer(
        models={"menu": zoo}, images={"noise": np.zeros((16, 16, 3), np.uint8)},
        method="Element-wise Grad-CAM", debounce=0)
    assert ("Element-wise Grad-CAM", "elementwisegradcam") in explorer.method_select.options
    assert ("Element-wise Grad-CAM", "elementwisegradcam") in explorer.compare_select.options
    assert method_labels()["elementwisegradcam"] == "Element-wise Grad-CAM"
    assert explorer.explanation.method == "elementwisegradcam" and explorer.status_level == "ready"
    # the benchmarks: timed in the single-pass block, judged by its cost class's budget
    from benchmarks import budgets, model_bench

    assert "elementwisegradcam" in model_bench.single_pass_methods()
    assert "elementwisegradcam" in model_bench.Settings().methods
    assert budgets.ratio_budgets()["elementwisegradcam"] == budgets.COST_BUDGETS["layer gradient"]
    assert budgets.display_name("elementwisegradcam") == "Element-wise Grad-CAM"
    # the exports and explain, by any of its names
    assert camutils.elementwise_gradcam is elementwise_gradcam
    assert camutils.methods.elementwise_gradcam is elementwise_gradcam
    assert "elementwise_gradcam" in camutils.__all__
    assert "elementwise_gradcam" in camutils.methods.__all__
    assert camutils.METHODS["elementwisegradcam"] is elementwise_gradcam
    images = M.images(2, size=(16, 16))
    e = camutils.explain(model, images, "GradCAM-ElementWise")
    assert e.method == "elementwisegradcam" and e.maps.shape == (2, 16, 16)
    # HiResCAM keeps the negative products that element-wise Grad-CAM drops
    hires = camutils.explain(model, images, "hirescam")
    assert np.all(e.raw >= hires.raw - 1e-6)


def test_the_table_is_read_at_every_call(new_method):
    from camutils.methods import registry

    assert "elementwisegradcam" in registry.method_names()
    registry.METHOD_TABLE.remove(new_method)  # (monkeypatch restores the table afterwards)
    assert "elementwisegradcam" not in registry.method_names()
    with pytest.raises(ValueError, match="Unknown method 'elementwisegradcam'"):
        registry.canonical_name("elementwisegradcam")


def test_every_row_is_complete_and_its_names_are_unique():
    from camutils.methods.registry import COSTS, KINDS, method_table

    rows = method_table()
    keys = [k for m in rows for k in m.keys]
    assert len(keys) == len(set(keys)), "two methods answer to the same name"
    for m in rows:
        assert m.kind in KINDS and m.cost in COSTS and m.label and m.paper and m.function.__doc__


def test_a_bad_row_is_refused():
    from camutils.methods.registry import Method

    with pytest.raises(ValueError, match="kind must be one of"):
        Method("x", elementwise_gradcam, "X", kind="magic")
    with pytest.raises(ValueError, match="cost must be one of"):
        Method("x", elementwise_gradcam, "X", cost="free")


def test_a_rule_takes_its_options_as_data_not_from_a_closure():
    """The compiled function's cache key holds the rule's options; a closure would hide one."""
    from camutils.methods.pipeline import Rule

    counterfactual = True
    with pytest.raises(TypeError, match="closes over"):
        Rule("gradcam", lambda p: elementwise_gradcam_map(p) * counterfactual)
    a = Rule.make("gradcam", elementwise_gradcam_map, scale=2)
    b = Rule.make("gradcam", elementwise_gradcam_map, scale=3)
    assert a != b and hash(a) != hash(b) and a.options == (("scale", 2),)


# --------------------------------------------------------------------------- Keras internals


def test_every_keras_internal_camutils_uses_is_there():
    """The canary of a Keras upgrade: it names each internal that moved."""
    from camutils.methods.keras_internals import check_internals

    missing = check_internals()
    assert not missing, (
        f"This Keras ({importlib.import_module('keras').__version__}) lacks internals that "
        f"camutils uses: {', '.join(missing)}. Adapt camutils/methods/keras_internals.py.")


def test_the_canary_names_a_missing_internal(monkeypatch):
    """As a Keras upgrade that dropped an internal would look to it."""
    from camutils.methods import keras_internals

    monkeypatch.setattr(keras_internals, "INTERNALS", keras_internals.INTERNALS + (
        ("Functional", "_gone_in_a_future_keras"), ("keras.src.no_such_module", "helper")))
    assert keras_internals.check_internals() == [
        "Functional._gone_in_a_future_keras", "keras.src.no_such_module.helper"]


def test_no_other_module_touches_keras_internals():
    """Private Keras (and tf.function) attributes are used in keras_internals.py alone."""
    markers = ("keras.src", "._run_through_graph", "._standardize_inputs", "._call_context_args",
               "._call_has_training_arg", "._outputs_struct", "._keras_history", "._omit_frequent_tracing_warning")
    offenders = [
        f"{path.relative_to(ROOT)}: {marker}"
        for path in PACKAGE.rglob("*.py") if path.name != "keras_internals.py"
        for marker in markers if marker in path.read_text(encoding="utf-8")
    ]
    assert not offenders, offenders


def test_training_argument_found_on_keras_before_and_after_3_10():
    """Keras 3.10+ lists call-context arguments; earlier Keras only flags `training`."""
    from types import SimpleNamespace

    from camutils.methods import keras_internals

    new = SimpleNamespace(_call_context_args={"training"}, _call_has_training_arg=False)
    old = SimpleNamespace(_call_has_training_arg=True)
    neither = SimpleNamespace(_call_context_args=set())
    assert keras_internals.takes_training(new) and keras_internals.takes_training(old)
    assert not keras_internals.takes_training(neither)
    assert not keras_internals.takes_training(SimpleNamespace())
