"""The learner editions: written from the complete notebooks, without answers, and a learner's
answer (none, or a wrong one) changes nothing after its exercise.

The notebook tests (nbval over notebooks/, learner/ included) run every learner edition top to
bottom with every exercise unattempted, and compare its checked outputs with the complete
edition's (the generator copies them): that is where "nothing depends on an answer" is shown
for every notebook. Here: the generator's rules, that the committed files are what it writes,
and one notebook executed with a wrong answer in every exercise.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import learner_editions as L  # noqa: E402

from camutils.course import exercises  # noqa: E402

COMPLETE = L.complete_notebooks()


def _notebook(*sources: str, first_markdown: str = "# title\n\n**Learning objectives**"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(first_markdown)]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


SETUP = 'import numpy as np\nex = camutils.course.exercises.get("00.safe_normalise")'
ANSWER = '''### BEGIN SOLUTION
def normalise(x):
    x = np.asarray(x, dtype=np.float32)
    return x
### END SOLUTION

assert ex.check(normalise)'''


# --------------------------------------------------------------------------- the generator's rules


def test_an_answer_becomes_a_placeholder_with_the_task_and_a_hint():
    learner = L.learner_notebook(_notebook(SETUP, ANSWER), "99_test.ipynb")
    source = learner.cells[2].source
    ex = exercises.get("00.safe_normalise")
    assert f"# Exercise 00.safe_normalise: {ex.title}" in source
    assert f"# Hint: {ex.hints[0]}" in source
    assert "def normalise(x):\n    ...  # your code here" in source
    assert "\nex.check(normalise)" in source and "assert ex.check" not in source
    assert "np.asarray" not in source and L.BEGIN not in source
    assert "Learner edition" in learner.cells[0].source


def test_a_value_answer_keeps_only_the_names_the_check_reads():
    answer = '''### BEGIN SOLUTION
step = np.ones(3)
result = step * 2
### END SOLUTION

assert ex.check(result)'''
    source = L.learner_notebook(_notebook(SETUP, answer), "99_test.ipynb").cells[2].source
    assert "result = ..." in source and "step" not in source


@pytest.mark.parametrize("later, message", [
    ("print(normalise(np.zeros(3)))", "reads an earlier exercise's answer: normalise"),
    (ANSWER.replace("assert ex.check(normalise)", "assert ex.check(normalise)\nprint(normalise(1))"),
     "after the check"),
    ("# NBVAL_CHECK_OUTPUT\n" + ANSWER, "cannot be compared by nbval"),
])
def test_the_rules_refuse_an_answer_that_leaks(later, message):
    cells = [SETUP, later] if later.startswith("# NBVAL") else [SETUP, ANSWER, later]
    with pytest.raises(L.EditionError, match=message):
        L.learner_notebook(_notebook(*cells), "99_test.ipynb")


def test_an_answer_region_needs_its_check():
    with pytest.raises(L.EditionError, match="no ex.check"):
        L.learner_notebook(_notebook(SETUP, ANSWER.replace("assert ex.check(normalise)", "")),
                           "99_test.ipynb")


# --------------------------------------------------------------------------- the committed files


def test_the_committed_learner_editions_and_solutions_are_what_the_notebooks_give():
    stale = [path.relative_to(ROOT).as_posix() for path, text in L.editions().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == [], "run `make student` (python course.py student)"


def test_every_exercise_has_one_answer_region_in_its_own_notebook():
    keys = {}
    for path in COMPLETE:
        for _, region in L.notebook_regions(nbformat.read(path, as_version=4), path.name):
            assert region.key.split(".")[0] == path.name[:2], (region.key, path.name)
            keys[region.key] = keys.get(region.key, 0) + 1
    assert keys == {key: 1 for key in exercises.all_exercises()}


@pytest.mark.parametrize("path", COMPLETE, ids=lambda p: p.stem)
def test_a_learner_edition_holds_no_answer(path):
    complete = nbformat.read(path, as_version=4)
    learner = nbformat.read(ROOT / "notebooks" / "learner" / path.name, as_version=4)
    text = json.dumps([c.source for c in learner.cells if c.cell_type == "code"])
    assert L.BEGIN not in text and L.END not in text
    for index, region in L.notebook_regions(complete, path.name):
        body = [line.strip() for line in region.answer
                if line.strip() and not line.lstrip().startswith(("def ", "#", "return None"))]
        code = [line.strip() for line in learner.cells[index].source.split("\n")
                if not line.lstrip().startswith("#")]                # the hint comments aside
        assert not set(body) & set(code), (region.key, body)
        assert learner.cells[index].outputs == [] and learner.cells[index].execution_count is None
    regions = dict(L.notebook_regions(complete, path.name))
    for index, (cell, reference) in enumerate(zip(learner.cells, complete.cells)):
        if cell.cell_type == "code" and index not in regions:   # nbval compares these outputs
            assert cell.execution_count == reference.execution_count
            assert cell.outputs == reference.outputs
    assert learner.cells[0].source.count(f"notebooks/learner/{path.name}") == 2   # both badges


# --------------------------------------------------------------------------- a wrong answer, executed


def _wrong_answers(learner, complete, name):
    """The learner edition with every placeholder replaced by a wrong answer that runs."""
    nb = copy.deepcopy(learner)
    for index, region in L.notebook_regions(complete, name):
        wrong = []
        for line in nb.cells[index].source.split("\n"):
            if line.strip() == "...  # your code here":
                wrong.append(line.replace("...  # your code here", "return 0"))
            elif re.fullmatch(r"\w+ = \.\.\.", line):
                wrong.append(line.replace("...", "0"))
            else:
                wrong.append(line)
        nb.cells[index].source = "\n".join(wrong)
    return nb


def _text(outputs) -> str:
    return "".join(o.get("text", "") if o.get("output_type") == "stream"
                   else o.get("data", {}).get("text/plain", "") for o in outputs)


def _numbers_agree():
    """notebooks/conftest.py's comparison, the one nbval uses for checked outputs."""
    spec = importlib.util.spec_from_file_location("notebook_conftest", ROOT / "notebooks" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.numbers_agree


def test_a_wrong_answer_is_reported_by_its_check_and_changes_nothing_downstream():
    from nbclient import NotebookClient

    numbers_agree = _numbers_agree()
    name = "01_cam_from_scratch.ipynb"
    complete = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    learner = nbformat.read(ROOT / "notebooks" / "learner" / name, as_version=4)
    nb = _wrong_answers(learner, complete, name)
    regions = dict(L.notebook_regions(complete, name))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks" / "learner")}}).execute()
    for index, region in regions.items():
        out = _text(nb.cells[index].outputs)
        assert f"Exercise {region.key}: not yet." in out, (region.key, out)
    compared = 0
    for index, (cell, reference) in enumerate(zip(nb.cells, complete.cells)):
        if cell.cell_type != "code":
            continue
        assert not any(o.get("output_type") == "error" for o in cell.outputs), index
        if cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            compared += 1
            assert numbers_agree(_text(reference.outputs), _text(cell.outputs)), index
    assert compared >= 3
