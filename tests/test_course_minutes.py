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
        row = re.search(rf"\| \[{name[:-6]}\]\({name}\) \|[^\n]*\| (\d+) \|", text)
        assert row and int(row.group(1)) == r["total"], name
    total = sum(r["total"] for r in ESTIMATES.values())
    hours = float(re.search(r"In all, about ([\d.]+) hours", text).group(1))
    assert abs(hours - total / 60) <= 0.25
    assert f"about **{hours:g} hours** ({total}\nminutes)" in GUIDE or \
        f"about **{hours:g} hours** ({total} minutes)" in GUIDE.replace("\n", " ")


def test_the_guide_table_is_the_tools():
    assert C.guide_table(ESTIMATES) in GUIDE


def test_the_workshop_path_takes_three_hours():
    rows = [line for line in GUIDE.split("## The 3-hour workshop")[1].split("\n## ")[0].splitlines()
            if re.match(r"\| \d:\d\d \|", line)]
    minutes = []
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        teach = int(cells[2]) if cells[2] else 0
        exercise = int(re.match(r"\d+", cells[3]).group(0)) if re.match(r"\d+", cells[3]) else 0
        start = int(cells[0][0]) * 60 + int(cells[0][2:])
        minutes.append((start, teach + exercise if cells[1] != "break" else 10))
    for (start, length), (following, _) in zip(minutes, minutes[1:]):
        assert start + length == following, (start, length, following)
    assert minutes[-1][0] + minutes[-1][1] == 180


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
