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


def _by_id(nb) -> dict:
    return {cell.get("id"): cell for cell in nb.cells}


@pytest.mark.parametrize("path", COMPLETE, ids=lambda p: p.stem)
def test_a_learner_edition_holds_no_answer(path):
    complete = nbformat.read(path, as_version=4)
    learner = nbformat.read(ROOT / "notebooks" / "learner" / path.name, as_version=4)
    text = json.dumps([c.source for c in learner.cells if c.cell_type == "code"])
    assert L.BEGIN not in text and L.END not in text
    shown = _by_id(learner)
    for index, region in L.notebook_regions(complete, path.name):
        cell = shown[complete.cells[index].get("id")]
        body = [line.strip() for line in region.answer
                if line.strip() and not line.lstrip().startswith(("def ", "#", "return None"))]
        code = [line.strip() for line in cell.source.split("\n")
                if not line.lstrip().startswith("#")]                # the hint comments aside
        assert not set(body) & set(code), (region.key, body)
        assert cell.outputs == [] and cell.execution_count is None
    for reference in complete.cells:
        cell = shown.get(reference.get("id"))
        hidden = {L.INSTRUCTOR, L.ANSWERS} & set(L.tags(reference))
        assert (cell is None) == bool(hidden)       # instructor notes and self-check answers go
        if cell is not None and cell.cell_type == "code" and cell.execution_count is not None:
            assert cell.execution_count == reference.execution_count   # nbval compares these
            assert cell.outputs == reference.outputs
    assert learner.cells[0].source.count(f"notebooks/learner/{path.name}") == 2   # both badges


@pytest.fixture(scope="module")
def course():
    """Every complete notebook and its committed learner edition, and the course's idioms."""
    loaded = [(p.name, nbformat.read(p, as_version=4)) for p in COMPLETE]
    editions = {name: nbformat.read(ROOT / "notebooks" / "learner" / name, as_version=4)
                for name, _ in loaded}
    return loaded, editions, L.course_idioms(loaded)


@pytest.mark.parametrize("path", COMPLETE, ids=lambda p: p.stem)
def test_a_learner_edition_shows_no_answer_before_the_learner_has_tried(path, course):
    """No leak of any kind (tools/learner_leaks.py) in the committed learner edition: every
    notebook in notebooks/ is searched, new ones included."""
    loaded, editions, idioms = course
    names = [name for name, _ in loaded]
    earlier = [(name, editions[name]) for name in names[:names.index(path.name)]]
    complete = dict(loaded)[path.name]
    found = L.find_leaks(editions[path.name], complete, path.name, idioms, earlier)
    assert found == [], "\n".join(map(str, found))


# --------------------------------------------------------------------------- a wrong answer, executed


def _wrong_answers(learner, complete, name):
    """The learner edition with every placeholder replaced by a wrong answer that runs."""
    nb = copy.deepcopy(learner)
    shown = _by_id(nb)
    for index, region in L.notebook_regions(complete, name):
        cell = shown[complete.cells[index].get("id")]
        wrong = []
        for line in cell.source.split("\n"):
            if line.strip() == "...  # your code here":
                wrong.append(line.replace("...  # your code here", "return 0"))
            elif re.fullmatch(r"\w+ = \.\.\.", line):
                wrong.append(line.replace("...", "0"))
            else:
                wrong.append(line)
        cell.source = "\n".join(wrong)
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


def _with_ids(nb):
    for number, cell in enumerate(nb.cells):
        cell["id"] = f"cell{number}"
    return nb


CAM_SETUP = 'import numpy as np\nex = camutils.course.exercises.get("01.logits_from_maps")'
CAM_ANSWER = """### BEGIN SOLUTION
logits_from_maps = all_maps.mean(axis=(2, 3)) + b
### END SOLUTION

assert ex.check(logits_from_maps, maps=all_maps, bias=b)"""


@pytest.mark.parametrize("shown", [
    "print(all_maps.mean(axis=(2, 3)) + b)",                        # verbatim
    "z = gmp_maps.mean(axis=(2, 3)) + b_max",                       # other names
    "pooled = gmp_maps.mean(axis=(2, 3))\nprint(pooled + b_max)",   # in named steps
])
def test_the_answers_code_in_another_cell_is_refused(shown):
    for cells in ([CAM_SETUP, CAM_ANSWER, shown], [CAM_SETUP, shown, CAM_ANSWER]):  # after, before
        with pytest.raises(L.EditionError, match="code leak of 01.logits_from_maps"):
            L.learner_notebook(_with_ids(_notebook(*cells)), "99_test.ipynb")


def test_code_that_the_task_gives_or_an_idiom_is_not_a_leak():
    given = "first = maps.reshape(len(maps), -1).argmax(axis=1)"   # 05.pointing_hit's first hint
    setup = 'import numpy as np\nex = camutils.course.exercises.get("05.pointing_hit")'
    answer = """### BEGIN SOLUTION
def pointing_hits(maps, masks):
    n, h, w = maps.shape
    ys, xs = np.unravel_index(maps.reshape(n, -1).argmax(axis=1), (h, w))
    return masks[np.arange(n), ys, xs]
### END SOLUTION

assert ex.check(pointing_hits)"""
    L.learner_notebook(_with_ids(_notebook(setup, answer, given)), "99_test.ipynb")
    idiom = "print(all_maps.mean(axis=(2, 3)) + b)"
    common = L.course_idioms([("98_other.ipynb", _with_ids(_notebook(idiom, idiom, idiom)))])
    L.learner_notebook(_with_ids(_notebook(CAM_SETUP, CAM_ANSWER, idiom)), "99_test.ipynb", common)


def test_a_function_that_the_checker_accepts_is_refused():
    drop_in = """def safe(values):
    values = np.array(values, dtype=float)
    span = np.ptp(values)
    return np.full(values.shape, 0.0) if span == 0 else (values - np.min(values)) / span"""
    with pytest.raises(L.EditionError, match="drop-in leak of 00.safe_normalise: defines `safe`"):
        L.learner_notebook(_with_ids(_notebook(SETUP, ANSWER, drop_in)), "99_test.ipynb")
    wrong = drop_in.replace("(values - np.min(values)) / span", "values / span")
    L.learner_notebook(_with_ids(_notebook(SETUP, ANSWER, wrong)), "99_test.ipynb")


def test_an_output_that_prints_an_accepted_number_is_cleared_in_the_learner_edition():
    setup = 'import numpy as np\nex = camutils.course.exercises.get("06.partial_leak")'
    answer = """### BEGIN SOLUTION
predicted = fraction * np.mean(np.diag(rates)) + (1 - fraction) / K
### END SOLUTION

assert ex.check(predicted, confusion=confusion, fraction=fraction)"""
    printing = "# NBVAL_CHECK_OUTPUT\nprint(f'measured {measured:.3f}')"
    complete = _with_ids(_notebook(setup, answer, printing, "print(1)"))
    complete.cells[2].outputs = [nbformat.v4.new_output(
        "stream", name="stdout",
        text="Exercise 06.partial_leak: correct (your answer: 0.583333). About 58.3%: ...\n")]
    complete.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="measured 0.583\n")]
    complete.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="measured 0.571\n")]
    complete.cells[3].execution_count, complete.cells[4].execution_count = 3, 4
    found = L.find_leaks(complete, complete, "99_test.ipynb", set())   # outputs kept: a leak
    assert [(f.kind, f.cell) for f in found] == [("output", "cell3")]
    learner = L.learner_notebook(complete, "99_test.ipynb")
    assert learner.cells[3].outputs == [] and learner.cells[3].execution_count is None
    assert L.CHECKED not in learner.cells[3].source          # nbval no longer compares it
    assert learner.cells[4].outputs == complete.cells[4].outputs   # 0.571 is another number


AGNOSTIC = ['import numpy as np\nex = camutils.course.exercises.get("04.class_agnostic")', """### BEGIN SOLUTION
agnostic = {"eigencam"}
### END SOLUTION

assert ex.check(agnostic, maps=maps)"""]


def _with_markdown(cells, position, text):
    nb = _notebook(*cells)
    nb.cells.insert(position, nbformat.v4.new_markdown_cell(text))
    return _with_ids(nb)


def test_the_answer_in_words_before_the_exercise_or_in_the_key_points_is_refused():
    said = "Eigen-CAM draws the same map whatever the class."
    with pytest.raises(L.EditionError, match="text leak of 04.class_agnostic"):      # before
        L.learner_notebook(_with_markdown(AGNOSTIC, 1, said), "99_test.ipynb")
    with pytest.raises(L.EditionError, match="text leak of 04.class_agnostic"):      # key points
        L.learner_notebook(_with_markdown(AGNOSTIC, 3, "## Key points\n\n- " + said), "99_test.ipynb")
    L.learner_notebook(_with_markdown(AGNOSTIC, 3, said), "99_test.ipynb")          # after: fine
    earlier = _with_ids(_notebook("print(1)", first_markdown="# 00\n\n" + said))
    with pytest.raises(L.EditionError, match="98_earlier.ipynb .*text leak of 04.class_agnostic"):
        L.learner_notebook(_with_ids(_notebook(*AGNOSTIC)), "99_test.ipynb",
                           earlier=[("98_earlier.ipynb", earlier)])


def test_instructor_notes_and_self_check_answers_stay_in_the_complete_edition():
    nb = _notebook(SETUP, ANSWER)
    note = nbformat.v4.new_markdown_cell("**Instructor note.** Pitfall: ...")
    note.metadata["tags"] = [L.INSTRUCTOR]
    questions = nbformat.v4.new_markdown_cell(
        "## Self-check\n\n1. Why guard the division?\n\n"
        "[Notebook 01](https://github.com/cam-course/cam-course/blob/main/notebooks/01_cam_from_scratch.ipynb)")
    answers = nbformat.v4.new_markdown_cell("### Answers\n\n1. A constant map has a range of 0.")
    answers.metadata["tags"] = [L.ANSWERS]
    nb.cells[1:1] = [note]
    nb.cells += [questions, answers]
    learner = L.learner_notebook(_with_ids(nb), "99_test.ipynb")
    sources = [c.source for c in learner.cells]
    assert not any("Instructor note" in s or "range of 0" in s for s in sources)
    assert "blob/main/notebooks/learner/01_cam_from_scratch.ipynb" in sources[-1]
    page = L.solutions_page([("99_test.ipynb", nb)])
    assert "### Self-check, 99" in page
    assert "1. **Why guard the division?** A constant map has a range of 0." in page


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
    shown = _by_id(nb)
    for index, region in regions.items():
        out = _text(shown[complete.cells[index].get("id")].outputs)
        assert f"Exercise {region.key}: not yet." in out, (region.key, out)
    compared = 0
    reference_of = _by_id(complete)
    for cell in nb.cells:
        reference = reference_of[cell.get("id")]
        if cell.cell_type != "code":
            continue
        assert not any(o.get("output_type") == "error" for o in cell.outputs), index
        if cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            compared += 1
            assert numbers_agree(_text(reference.outputs), _text(cell.outputs)), index
    assert compared >= 3
