"""The course's time estimates: counted as tools/course_minutes.py says, and quoted the same in
every notebook's header, the course map of 00_start_here and the instructor guide; the
instructor kit is complete and linked."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import course_minutes as C  # noqa: E402

ESTIMATES = C.course_estimates()
GUIDE = (ROOT / "docs" / "instructor_guide.md").read_text(encoding="utf-8")


def test_the_estimate_counts_words_code_figures_and_exercises(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nOne two three four $x^2$ [a link](x.ipynb) `code`."
                                      "\n\n## Further reading\n\nnot counted at all"),
        nbformat.v4.new_code_cell('ex = camutils.course.exercises.get("00.safe_normalise")\n# a comment\n\nx = 1'),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\ndef normalise(x):\n    return x\n### END SOLUTION\n"
                                  "assert ex.check(normalise)\nplt.show()"),
    ]
    path = tmp_path / "99_test.ipynb"
    nbformat.write(nb, path)
    counts = C.notebook_counts(path)
    # words: Title, One..four, the formula and the code as one word each, and the link's text
    # ("a link") and its target as one word: 10
    assert counts == {"words": 10, "code_lines": 4, "figures": 1, "exercises": 1, "exercise_minutes": 5}
    parts = C.estimate(counts)
    raw = 10 / C.WORDS_PER_MINUTE + 4 / C.CODE_LINES_PER_MINUTE + C.FIGURE_MINUTES + 5 + C.RUN_MINUTES
    assert parts["total"] == 10 and 5 < raw <= 10


@pytest.mark.parametrize("name", sorted(ESTIMATES))
def test_each_header_quotes_the_estimate(name):
    header = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells[0].source
    stated = re.search(r"\*\*Estimated time:\*\* (\d+) minutes", header)
    assert stated and int(stated.group(1)) == ESTIMATES[name]["total"]


def test_the_course_map_and_the_totals_quote_the_estimates():
    text = "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb",
                                                         as_version=4).cells)
    for name, r in ESTIMATES.items():
        row = re.search(rf"\| \[{name[:-6]}\]\([^)]*/notebooks/{name}\) \|[^\n]*\| (\d+) \|", text)
        assert row and int(row.group(1)) == r["total"], name
    total = sum(r["total"] for r in ESTIMATES.values())
    hours = float(re.search(r"In all, about ([\d.]+) hours", text).group(1))
    assert abs(hours - total / 60) <= 0.25
    assert f"about **{hours:g} hours** ({total}\nminutes)" in GUIDE or \
        f"about **{hours:g} hours** ({total} minutes)" in GUIDE.replace("\n", " ")


def test_the_guide_table_is_the_tools():
    assert C.guide_table(ESTIMATES) in GUIDE


@pytest.mark.parametrize("name", sorted(C.PLANS))
def test_each_workshop_plan_fits_three_hours_at_the_guides_rates(name):
    """Each plan, summed at the guide's own rates (its header, setup and taught sections, the
    exercises in class, the break and the closing questions), is at most three hours, and the
    guide shows it as the tool computes it."""
    assert C.plan_total(name) <= C.WORKSHOP_MINUTES
    assert C.plan_table(name) in GUIDE, "run `python tools/course_minutes.py --plans`"
    for part in C.PLANS[name]:
        if isinstance(part, C.Part):
            assert all(key.startswith(part.notebook + ".") for key in part.exercises)
            taught = [s for s in C.part_minutes(part)["sections"] if s["key"] != C.HEADER]
            assert {k for s in taught for k in s["exercises"]} >= set(part.exercises)


def test_a_plan_counts_what_its_sections_hold(tmp_path):
    nb = nbformat.v4.new_notebook()
    words = " ".join(["word"] * 150)
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_markdown_cell(f"## 1. First\n\n{words}"),
                nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(15))),
                nbformat.v4.new_markdown_cell(f"**Instructor note**\n\n{words}", metadata={"tags": ["instructor"]}),
                nbformat.v4.new_markdown_cell(f"## 2. Second\n\n{words} {words}")]
    path = tmp_path / "99_test.ipynb"
    nbformat.write(nb, path)
    sections = {s["key"]: C.reading_minutes(s) for s in C.section_counts(path)}
    # a heading's title is one word ("First"); the instructor note is not counted
    assert sections == {C.HEADER: pytest.approx(1 / 150), "1": pytest.approx(1 + 1 / 150 + 1),
                        "2": pytest.approx(2 + 1 / 150)}


def test_instructor_notes_sit_at_their_sections_and_quote_the_plans():
    """Every numbered section opens with an instructor note (the complete edition only), whose
    first line gives the section's minutes and its place in each plan (`--notes` writes it)."""
    import learner_editions as L

    notes = C.instructor_notes()
    assert all(text.startswith("**Instructor note**") for _, text in notes.values())
    stale = {(p.name, i): line for (p, i), (_, line) in notes.items()
             if nbformat.read(p, as_version=4).cells[i].source.split("\n", 1)[0] != line}
    assert stale == {}, "run `python tools/course_minutes.py --notes`"
    for name in ESTIMATES:
        path = ROOT / "notebooks" / name
        noted = {key for (p, _), (key, _) in notes.items() if p == path}
        numbered = {s["key"] for s in C.section_counts(path) if s["key"].isdigit()}
        assert numbered <= noted, (name, sorted(numbered - noted))
        cells = nbformat.read(path, as_version=4).cells
        for (p, index), _ in notes.items():
            if p == path:
                assert L.INSTRUCTOR in L.tags(cells[index]) and cells[index - 1].cell_type == "markdown"
def test_the_cheat_sheet_has_every_method_of_the_table():
    from camutils.methods.registry import method_table

    sheet = (ROOT / "docs" / "cheatsheet.md").read_text(encoding="utf-8")
    missing = [m.name for m in method_table() if f"(`{m.name}`" not in sheet]
    assert missing == []


def test_the_readme_links_the_kit_and_the_learner_editions():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/instructor_guide.md", "docs/cheatsheet.md", "docs/solutions.md",
                   "notebooks/learner/00_start_here.ipynb"):
        assert f"]({target})" in readme, target
    assert "urlpath=lab/tree/notebooks/learner/00_start_here.ipynb" in readme
