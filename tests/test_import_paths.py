"""One import path per module: the modules that moved are importable at their new home only,
and nothing in the project (code, error messages, tests, tools, docs, notebooks) names an old
path. The package is unpublished, so no alias is kept for old code."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import camutils

ROOT = Path(__file__).resolve().parents[1]

#: old module path -> where its contents live now.
OLD_PATHS = {
    "camutils.exercises": "camutils.course.exercises",
    "camutils.imagenet": "camutils.zoo.imagenet",
    "camutils.datasets": "camutils.course.shapes",
    "camutils.efficientnet": "camutils.zoo.efficientnet",
    "camutils.keras_apps": "camutils.zoo.keras_apps",
    "camutils.torch_pickle": "camutils.zoo.torch_pickle",
    "camutils.course_models": "camutils.course.models",
}

OLD_NAMES = "|".join(re.escape(old.partition(".")[2]) for old in OLD_PATHS)
#: an old path written out, as code, in a message or in prose (``camutils.datasets``, but
#: not ``camutils.dataset``)
DOTTED = re.compile(rf"\bcamutils\.({OLD_NAMES})\b")
#: ``from camutils import a, b`` or ``from camutils import (a,\n b)``: the names imported
FROM_CAMUTILS = re.compile(r"\bfrom\s+camutils\s+import\s+(?:\(([^)]*)\)|([^\n]*))")

#: what the project consists of, besides the notebooks (read cell by cell)
SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".sh", ".html"}
NAMED_FILES = {"Makefile", "postBuild", "run"}  # run: .ci/run
SKIPPED_FOLDERS = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache",
                   ".hypothesis", "node_modules"}
THIS_FILE = Path(__file__).resolve()


# --------------------------------------------------------------------------- the modules


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_an_old_path_does_not_import(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)
    with pytest.raises(AttributeError):
        getattr(camutils, old.rpartition(".")[2])
    assert importlib.import_module(OLD_PATHS[old]).__name__ == OLD_PATHS[old]


def test_the_new_homes_are_reached_from_import_camutils():
    """What the notebooks write after ``import camutils`` works without another import."""
    assert camutils.course.exercises.get("01.cam_by_hand").key == "01.cam_by_hand"
    assert camutils.zoo.imagenet.class_index("espresso") == 967
    assert len(camutils.course.shapes.MARKER_COLORS) == 6


def test_import_camutils_loads_no_tensorflow():
    """``import camutils`` stays quick: its public names are imported on first use, and the
    packages that need no model (the dataset format and audit, the metrics, the zoo's
    registry, the course's shapes) do not import TensorFlow or Keras either."""
    code = ("import sys, camutils, camutils.dataset, camutils.metrics, camutils.zoo, "
            "camutils.course\ncamutils.load_image, camutils.audit, camutils.make_shapes\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- nobody names them


def _module_name(path: Path) -> str | None:
    """``camutils.zoo.imagenet`` for camutils/zoo/imagenet.py; None outside the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] != "camutils":
        return None
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(source: str, module: str | None, is_package: bool) -> set[str]:
    """Every module path an import statement of ``source`` may name (relative imports
    resolved against ``module``; ``from a import b`` names ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if module is None:
                    continue
                parts = module.split(".")[:len(module.split(".")) - node.level + is_package]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def _old_paths_in_text(text: str) -> list[str]:
    found = [m.group(0) for m in DOTTED.finditer(text)]
    for match in FROM_CAMUTILS.finditer(text):
        names = re.findall(r"\w+", (match.group(1) or match.group(2)).split("#")[0])
        found += [f"from camutils import {name}" for name in names
                  if f"camutils.{name}" in OLD_PATHS]
    return found


def _old_paths_in_python(source: str, module: str | None = None, is_package: bool = False):
    found = _old_paths_in_text(source)
    try:
        imported = _imported(source, module, is_package)
    except SyntaxError:  # a notebook cell with IPython magics: the text search above remains
        imported = set()
    found += sorted(name for name in imported
                    if any(name == old or name.startswith(old + ".") for old in OLD_PATHS))
    return found


def _old_paths_in_notebook(text: str):
    found = []
    for index, cell in enumerate(json.loads(text)["cells"]):
        source = "".join(cell["source"])
        hits = (_old_paths_in_python(source) if cell["cell_type"] == "code"
                else _old_paths_in_text(source))
        found += [f"cell {index}: {hit}" for hit in hits]
    return found


def _project_files():
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders
                               if d not in SKIPPED_FOLDERS and not d.endswith(".egg-info"))
        for name in sorted(names):
            path = Path(folder, name)
            if (path.suffix in SUFFIXES | {".ipynb"} or name in NAMED_FILES) and (
                    path.resolve() != THIS_FILE):
                yield path


def old_paths_in(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return _old_paths_in_notebook(text)
    if path.suffix == ".py":
        return _old_paths_in_python(text, _module_name(path), path.name == "__init__.py")
    return _old_paths_in_text(text)


def test_no_code_message_test_tool_doc_or_notebook_names_an_old_path():
    files = list(_project_files())
    folders = {path.relative_to(ROOT).parts[0] for path in files}
    assert {"camutils", "tests", "tools", "docs", "notebooks", "benchmarks"} <= folders
    assert any(path.parent.name == "learner" for path in files)
    found = [f"{path.relative_to(ROOT)}: {hit}" for path in files for hit in old_paths_in(path)]
    assert not found, "old module paths (use the new home, see OLD_PATHS):\n" + "\n".join(found)


@pytest.mark.parametrize("where, text", [
    ("notes.md", "Set `camutils.torch_pickle.MAX_PICKLE_OPS` higher."),
    ("notes.md", "```python\nfrom camutils import plot, imagenet  # the class names\n```"),
    ("tests/test_x.py", "from camutils import metrics, exercises\n"),
    ("tests/test_x.py", "from camutils import (\n    plot,\n    imagenet,\n)\n"),
    ("tests/test_x.py", "import camutils.keras_apps as apps\n"),
    ("tests/test_x.py", 'raise ValueError("see camutils.imagenet.class_index")\n'),
    ("camutils/widgets/explorer.py", "def f():\n    from ..keras_apps import KERAS_APPS\n"),
    ("camutils/course/__init__.py", "from .. import course_models\n"),
    ("notebooks/01.ipynb", json.dumps({"cells": [
        {"cell_type": "code", "source": ["import camutils\n", "ex = camutils.exercises.get('x')"]}]})),
    ("notebooks/01.ipynb", json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["Colours: `camutils.datasets.MARKER_COLORS`."]}]})),
])
def test_the_search_finds_each_way_of_naming_an_old_path(tmp_path, monkeypatch, where, text):
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert old_paths_in(path)


@pytest.mark.parametrize("text", [
    "from camutils import dataset, course\nimport camutils.zoo.imagenet\n",
    "camutils.dataset.read_manifest(path)\nfrom camutils import (\n    dataset,\n)\n",
    "from camutils.course import models as course_models, exercises\n",
])
def test_the_new_paths_are_not_mistaken_for_old_ones(tmp_path, text):
    path = tmp_path / "new.py"
    path.write_text(text, encoding="utf-8")
    assert _old_paths_in_python(text) == []
