"""How long a read-through of each notebook takes, with every exercise done: an estimate.

    python tools/course_minutes.py                # a table, per notebook and in total
    python tools/course_minutes.py --guide-table  # the table of docs/instructor_guide.md

Nobody can time every learner, so the course estimates, from what each notebook contains,
at stated rates (the instructor guide, docs/instructor_guide.md, quotes them):

* prose: the words of its markdown cells (the further-reading lists excluded), at
  ``WORDS_PER_MINUTE``, a careful reading speed for technical text with formulas;
* code: the non-blank, non-comment lines of its code cells (answer regions excluded: they
  are the exercises' work), at ``CODE_LINES_PER_MINUTE``: reading each line, running the cell
  and reading its output;
* figures: ``FIGURE_MINUTES`` for each figure the notebook draws;
* exercises: the minutes each exercise declares (`camutils.course.exercises`: 5 for a line or
  two, 8 for a few lines, 10 for a short function, 15 for a whole method);
* running: ``RUN_MINUTES``, the course's budget of 90 s per notebook on a 2-core CPU (the
  measured times are lower; docs/benchmarks.md).

The total is rounded up to 5 minutes. Each notebook's header ("Estimated time: N minutes"),
the course map in 00_start_here and the guide's table quote these numbers; a test checks
that they agree.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 15
FIGURE_MINUTES = 0.5
RUN_MINUTES = 1.5

_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_DRAWS = re.compile(r"plt\.show\(\)|show_as_jpeg\(|display\(Image\(")


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def notebook_counts(path: Path) -> dict:
    """What the estimate counts in one complete notebook."""
    import nbformat

    from learner_editions import BEGIN, END, EXERCISE_KEY, notebook_regions
    from camutils.course import exercises

    nb = nbformat.read(path, as_version=4)
    words = code = figures = 0
    for cell in nb.cells:
        text = _source(cell)
        if cell.cell_type == "markdown":
            text = text.split("## Further reading")[0]
            text = re.sub(r"\$[^$]*\$|\]\([^)]*\)|`[^`]*`", " x ", text)   # a formula, link or code: one word
            words += len(_WORD.findall(text))
            continue
        inside = False
        for line in text.split("\n"):
            stripped = line.strip()
            if stripped in (BEGIN, END):
                inside = stripped == BEGIN
                continue
            if stripped and not stripped.startswith("#") and not inside:
                code += 1
        figures += len(_DRAWS.findall(text))
    keys = [region.key for _, region in notebook_regions(nb, path.name)]
    keys += [k for k in dict.fromkeys(EXERCISE_KEY.findall("\n".join(_source(c) for c in nb.cells)))
             if k not in keys]                                   # exercises without an answer region
    exercise_minutes = sum(exercises.get(k).minutes for k in keys)
    return {"words": words, "code_lines": code, "figures": figures, "exercises": len(keys),
            "exercise_minutes": exercise_minutes}


def estimate(counts: dict) -> dict:
    """Minutes per part, and the total rounded up to 5."""
    parts = {
        "reading_minutes": counts["words"] / WORDS_PER_MINUTE,
        "code_minutes": counts["code_lines"] / CODE_LINES_PER_MINUTE,
        "figure_minutes": counts["figures"] * FIGURE_MINUTES,
        "exercise_minutes": float(counts["exercise_minutes"]),
        "run_minutes": RUN_MINUTES,
    }
    parts["total"] = 5 * math.ceil(sum(parts.values()) / 5)
    return parts


def course_estimates() -> dict[str, dict]:
    """Every complete notebook's counts and estimate, by file name."""
    out = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        counts = notebook_counts(path)
        out[path.name] = {**counts, **estimate(counts)}
    return out


TITLES = {"00": "00 start here", "01": "01 CAM from scratch", "02": "02 CAM on real photos",
          "03": "03 Grad-CAM", "04": "04 beyond Grad-CAM", "05": "05 evaluating explanations",
          "06": "06 case study: shortcut learning", "07": "07 explorer, your own model",
          "08": "08 auditing a dataset"}


def guide_table(rows: dict | None = None) -> str:
    """The table of docs/instructor_guide.md, in markdown."""
    rows = course_estimates() if rows is None else rows
    lines = ["| notebook | words | code lines | figures | exercises (minutes) | estimate, minutes |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        title = TITLES.get(name[:2], name[:-6].replace("_", " "))
        lines.append(f"| {title} | {r['words']} | {r['code_lines']} | {r['figures']} | "
                     f"{r['exercises']} ({r['exercise_minutes']:.0f}) | {r['total']} |")
    total = lambda key: sum(r[key] for r in rows.values())  # noqa: E731
    lines.append(f"| **all** | {total('words')} | {total('code_lines')} | {total('figures')} | "
                 f"{total('exercises')} ({total('exercise_minutes'):.0f}) | **{total('total')}** |")
    return "\n".join(lines)


def main() -> int:
    if "--guide-table" in sys.argv[1:]:
        print(guide_table())
        return 0
    rows = course_estimates()
    print(f"{'notebook':<40}{'words':>7}{'code':>6}{'figs':>5}{'ex':>4}"
          f"{'read':>6}{'code':>6}{'figs':>6}{'ex':>5}{'run':>5}{'total':>7}")
    for name, r in rows.items():
        print(f"{name:<40}{r['words']:>7}{r['code_lines']:>6}{r['figures']:>5}{r['exercises']:>4}"
              f"{r['reading_minutes']:>6.0f}{r['code_minutes']:>6.0f}{r['figure_minutes']:>6.1f}"
              f"{r['exercise_minutes']:>5.0f}{r['run_minutes']:>5.1f}{r['total']:>7}")
    total = sum(r["total"] for r in rows.values())
    print(f"{'all notebooks':<40}{sum(r['words'] for r in rows.values()):>7}"
          f"{sum(r['code_lines'] for r in rows.values()):>6}{'':>43}{total:>7} "
          f"({total / 60:.1f} hours)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
