"""The package's shape: no import cycles, one method table that everything reads, the Keras
internals in one module (with a canary), old import paths that still work."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

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


# --------------------------------------------------------------------------- old paths


@pytest.mark.parametrize("old, new", sorted(importlib.import_module("camutils._moved").MOVED.items()))
def test_old_import_paths_give_the_moved_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)
    assert getattr(camutils, old.rpartition(".")[2]) is importlib.import_module(new)
    # The module keeps its own spec: importlib sets __spec__ on whatever a loader returns, and
    # relative imports read __spec__.parent (Python 3.13 warns when it differs from
    # __package__; later Pythons resolve ``from ..images import`` with it).
    module = importlib.import_module(new)
    assert module.__spec__.name == new and module.__spec__.parent == module.__package__


def test_old_names_still_import():
    from camutils.course_models import CAM_LAYER, TRAINING, seed_everything, train_course_model
    from camutils.datasets import MARKER_COLORS, make_shapes
    from camutils.exercises import get
    from camutils.keras_apps import WeightsUnavailableError, weights_are_cached
    from camutils.targets import (
        CamHead, FeatureModel, describe_model, feature_model, model_cache, resolve_layer,
        spatial_layers,
    )
    from camutils.methods import feature_model as new_feature_model, layers

    assert resolve_layer is layers.resolve_layer and spatial_layers is layers.spatial_layers
    assert feature_model is new_feature_model.feature_model
    assert get("01.cam_by_hand").key == "01.cam_by_hand"
    import camutils.exercises.nb01 as old_module
    import camutils.course.exercises.nb01 as new_module

    assert old_module is new_module  # one registry of exercises, not two
    assert all(callable(f) for f in (seed_everything, train_course_model, make_shapes,
                                      weights_are_cached, describe_model, model_cache))
    assert CAM_LAYER == "last_conv_relu" and "gap" in TRAINING and len(MARKER_COLORS) == 6
    assert issubclass(WeightsUnavailableError, Exception) and CamHead and FeatureModel


def test_an_old_path_still_runs_as_a_script():
    """``python -m camutils.keras_apps`` (as Binder's set-up and older notes run it) works."""
    import subprocess

    result = subprocess.run([sys.executable, "-m", "camutils.keras_apps", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "prefetch" in result.stdout and "python -m camutils.zoo.keras_apps" in result.stdout


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
