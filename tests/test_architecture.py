"""The package's shape: no import cycles, one method table that everything reads, the Keras
internals in one module (with a canary). One import path per module: tests/test_import_paths.py."""

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
               "._call_has_training_arg", "._outputs_struct", "._keras_history", "._omit_frequent_tracing_warning",
               "._flatten_layers", "._flash_attention")
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
