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
that they agree. Instructor notes and the self-check's answers (cells that only the complete
edition shows) are not counted.

The same rates, section by section (`section_counts`), size the workshop plans of the guide
(`PLANS`: a 3-hour plan and a 2 x 3-hour one): each part teaches a notebook's header and
setup and the sections it names, and does the exercises it names in class.

    python tools/course_minutes.py --sections     # every section's minutes
    python tools/course_minutes.py --plans        # the plans' tables, as the guide quotes them
    python tools/course_minutes.py --notes        # write each instructor note's first line
    python tools/course_minutes.py --write-guide  # put the tables into docs/instructor_guide.md
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 15
FIGURE_MINUTES = 0.5
RUN_MINUTES = 1.5

_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_DRAWS = re.compile(r"plt\.show\(\)|show_as_jpeg\(|display\(Image\(|show_saved\(")


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


HEADING = re.compile(r"^(?=## )", re.M)
HEADER = "header"          # the title, objectives and setup cell: everything before the first `## `


def _words(text: str) -> int:
    text = re.sub(r"\$[^$]*\$|\]\([^)]*\)|`[^`]*`", " x ", text)   # a formula, link or code: one word
    return len(_WORD.findall(text))


def _code_lines(text: str) -> int:
    from learner_editions import BEGIN, END

    inside, count = False, 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped in (BEGIN, END):
            inside = stripped == BEGIN
            continue
        if stripped and not stripped.startswith("#") and not inside:
            count += 1
    return count


def section_key(title: str) -> str:
    """How a plan names a section: its number ("4" for "## 4. CAM by hand"), else its title."""
    match = re.match(r"(\d+)\.\s", title)
    return match.group(1) if match else title.strip()


def section_counts(path: Path) -> list[dict]:
    """The notebook's sections in order, each with what the estimate counts: the header and
    setup (key `HEADER`), then one per `## ` heading (its key: `section_key`). An exercise
    belongs to the section of the cell that gets it; instructor notes and self-check answers
    are not counted."""
    import nbformat

    from learner_editions import ANSWERS, EXERCISE_KEY, INSTRUCTOR, notebook_regions, tags

    nb = nbformat.read(path, as_version=4)
    answered = {index: region.key for index, region in notebook_regions(nb, path.name)}
    current = {"key": HEADER, "title": "header and setup", "words": 0, "code_lines": 0,
               "figures": 0, "exercises": [], "cells": []}
    sections = [current]
    for index, cell in enumerate(nb.cells):
        if {INSTRUCTOR, ANSWERS} & set(tags(cell)):
            current["cells"].append(index)
            continue
        text = _source(cell)
        if cell.cell_type == "markdown":
            for part in HEADING.split(text):
                if part.startswith("## "):
                    title = part.split("\n", 1)[0][3:].strip()
                    current = {"key": section_key(title), "title": title, "words": 0,
                               "code_lines": 0, "figures": 0, "exercises": [], "cells": []}
                    sections.append(current)
                if current["key"] != "Further reading" and part.strip():
                    current["words"] += _words(part)
            current["cells"].append(index)
            continue
        current["cells"].append(index)
        current["code_lines"] += _code_lines(text)
        current["figures"] += len(_DRAWS.findall(text))
        if index in answered:
            current["exercises"].append(answered[index])
    # an exercise without an answer region belongs where the notebook first gets it
    for key in dict.fromkeys(EXERCISE_KEY.findall("\n".join(_source(c) for c in nb.cells))):
        if key not in answered.values():
            first = next(s for s in sections if any(key in _source(nb.cells[i]) for i in s["cells"]))
            first["exercises"].append(key)
    return sections


def reading_minutes(section: dict) -> float:
    """A section's minutes at the rates, its exercises aside."""
    return (section["words"] / WORDS_PER_MINUTE + section["code_lines"] / CODE_LINES_PER_MINUTE
            + section["figures"] * FIGURE_MINUTES)


def notebook_counts(path: Path) -> dict:
    """What the estimate counts in one complete notebook."""
    from camutils.course import exercises

    sections = section_counts(path)
    keys = list(dict.fromkeys(k for s in sections for k in s["exercises"]))
    return {"words": sum(s["words"] for s in sections),
            "code_lines": sum(s["code_lines"] for s in sections),
            "figures": sum(s["figures"] for s in sections), "exercises": len(keys),
            "exercise_minutes": sum(exercises.get(k).minutes for k in keys)}


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


# --------------------------------------------------------------------------- workshop plans


@dataclass(frozen=True)
class Part:
    """One notebook in a workshop plan: the sections taught (`section_key`s; the header and
    setup always), the exercises done in class, and whether the notebook is run top to bottom
    before teaching (``run_all``: a taught section reads something only a skipped one makes;
    without it, tests/ runs the taught sections alone to show that they stand on their own)."""

    notebook: str
    sections: tuple[str, ...]
    exercises: tuple[str, ...] = ()
    run_all: bool = False


BREAK, CLOSING, WORKSHOP_MINUTES = 10, 5, 180

#: The workshop plans of docs/instructor_guide.md: a 3-hour one, and one of two 3-hour days.
PLANS: dict[str, tuple] = {
    "3-hour": (
        Part("00", ("What this course is", "How exercises work", "Key points"), ("00.safe_normalise",)),
        Part("01", ("1", "2", "3", "4", "Key points"), ("01.cam_by_hand",)),
        Part("02", ("1", "2", "3", "4", "5", "Key points"), ("02.cam_by_hand",)),
        "break",
        Part("03", ("1", "2", "4", "Key points"), ("03.gradcam_tape",)),
        Part("04", ("1", "2", "3", "Key points"), ("04.class_agnostic",)),
        Part("05", ("1", "2", "4", "8", "Key points")),
        Part("06", ("1", "2", "3", "4", "6", "Key points")),
        Part("07", ("What we will build", "1", "3")),
    ),
    "2 x 3-hour, day 1": (
        Part("00", ("What this course is", "How exercises work"), ("00.safe_normalise",)),
        Part("01", ("1", "2", "3", "4", "5", "6", "7", "Key points"), ("01.cam_by_hand",)),
        Part("02", ("1", "2", "3", "4", "5", "6", "Key points"), ("02.cam_by_hand",)),
        "break",
        Part("03", ("1", "2", "3", "4", "5", "Key points"), ("03.gradcam_tape",)),
        Part("04", ("1", "2", "3", "Key points"), ("04.class_agnostic",)),
    ),
    "2 x 3-hour, day 2": (
        Part("05", ("1", "2", "3", "4", "5", "6", "7", "8", "Key points"), ("05.pointing_hit",)),
        Part("06", ("1", "2", "3", "4", "5", "6", "7", "8", "9", "Key points"), ("06.partial_leak",)),
        "break",
        Part("07", ("What we will build", "1", "2", "3", "6", "Key points"), ("07.what_needs_recomputing",)),
        Part("08", ("1", "2", "3", "4", "5", "Key points")),
    ),
}


def notebook_path(prefix: str) -> Path:
    return next((ROOT / "notebooks").glob(f"{prefix}_*.ipynb"))


def part_minutes(part: Part) -> dict:
    """A part's teaching minutes (header, setup and the taught sections, at the rates) and
    in-class exercise minutes, each rounded up to a whole minute; the sections left out."""
    from camutils.course import exercises

    sections = section_counts(notebook_path(part.notebook))
    keys = {s["key"] for s in sections}
    unknown = set(part.sections) - keys
    if unknown:
        raise ValueError(f"Notebook {part.notebook} has no section {sorted(unknown)}; its sections: "
                         f"{[s['key'] for s in sections]}")
    taught = [s for s in sections if s["key"] == HEADER or s["key"] in part.sections]
    skipped = [s for s in sections if s not in taught and s["key"] != "Further reading"]
    return {"teach": math.ceil(sum(reading_minutes(s) for s in taught)),
            "exercises": sum(exercises.get(k).minutes for k in part.exercises),
            "skipped": [s["key"] for s in skipped], "sections": taught,
            "skips_code": any(s["code_lines"] for s in skipped)}


def plan_rows(name: str) -> list[dict]:
    """The plan's rows with their start times (minutes from the start)."""
    rows, start = [], 0
    for item in PLANS[name]:
        if item == "break":
            row = {"part": "break", "minutes": BREAK}
        else:
            m = part_minutes(item)
            row = {"part": item, **m, "minutes": m["teach"] + m["exercises"]}
        rows.append({"start": start, **row})
        start += row["minutes"]
    rows.append({"start": start, "part": "questions, homework", "minutes": CLOSING})
    return rows


def plan_total(name: str) -> int:
    last = plan_rows(name)[-1]
    return last["start"] + last["minutes"]


def _clock(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _sections(keys) -> str:
    return ", ".join(k if k.isdigit() else k.lower() for k in keys) or "-"


def plan_table(name: str) -> str:
    """The plan as the guide shows it, in markdown."""
    lines = ["| start | part | teach | exercises in class | sections taught | left for homework |",
             "|---|---|---|---|---|---|"]
    for row in plan_rows(name):
        part = row["part"]
        if not isinstance(part, Part):
            lines.append(f"| {_clock(row['start'])} | {part} | {row['minutes']} | | | |")
            continue
        title = TITLES.get(part.notebook, part.notebook) + (" (Run All first)" if part.run_all else "")
        exercises = "; ".join(f"`{k}`" for k in part.exercises)
        done = f"{row['exercises']}: {exercises}" if exercises else "none"
        lines.append(f"| {_clock(row['start'])} | {title} | {row['teach']} | {done} | "
                     f"header, {_sections(part.sections)} | {_sections(row['skipped'])} |")
    lines.append(f"| {_clock(plan_total(name))} | end | | | | |")
    return "\n".join(lines)


def note_line(notebook: str, key: str) -> str:
    """The first line of a section's instructor note: its minutes, and its place in each plan."""
    sections = {s["key"]: s for s in section_counts(notebook_path(notebook))}
    places = []
    for name, plan in PLANS.items():
        part = next((p for p in plan if isinstance(p, Part) and p.notebook == notebook), None)
        if part is not None:
            places.append(f"{name} plan: {'taught' if key in part.sections else 'homework'}")
    where = "; ".join(places) or "homework in every plan"
    return (f"**Instructor note** · about {reading_minutes(sections[key]):.0f} min at the course's "
            f"rates · {where}")


def instructor_notes() -> dict:
    """Every instructor note of the course: (notebook path, cell index) -> (section key, the
    first line it should have). A note belongs to the section whose heading precedes it."""
    import nbformat

    from learner_editions import INSTRUCTOR, tags

    notes = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        key = HEADER
        for index, cell in enumerate(nb.cells):
            if INSTRUCTOR in tags(cell):
                notes[path, index] = (key, note_line(path.name[:2], key))
            elif cell.cell_type == "markdown":
                titles = re.findall(r"^## (.+)$", _source(cell), re.M)
                key = section_key(titles[-1]) if titles else key
    return notes


def write_note_lines() -> int:
    """Rewrite each instructor note's first line from `note_line`; the number of notes changed."""
    import nbformat

    changed = 0
    by_path: dict = {}
    for (path, index), (_, line) in instructor_notes().items():
        by_path.setdefault(path, []).append((index, line))
    for path, notes in by_path.items():
        nb = nbformat.read(path, as_version=4)
        for index, line in notes:
            text = _source(nb.cells[index])
            body = text.split("\n", 1)[1] if "\n" in text else ""
            new = line + "\n" + body
            if new != text:
                nb.cells[index].source = new
                changed += 1
        nbformat.write(nb, path)
    return changed


TITLES = {"00": "00 start here", "01": "01 CAM from scratch", "02": "02 CAM on real photos",
          "03": "03 Grad-CAM", "04": "04 beyond Grad-CAM", "05": "05 evaluating explanations",
          "06": "06 case study: shortcut learning", "07": "07 explorer, your own model",
          "08": "08 auditing a dataset", "09": "09 beyond one label",
          "10": "10 CAM on vision transformers"}


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


def write_guide(path: Path = ROOT / "docs" / "instructor_guide.md") -> None:
    """Put the estimates' table, the course's total and each plan's table into the guide: the
    tables whose first rows are those `guide_table` and `plan_table` write, in order."""
    rows = course_estimates()
    text = path.read_text(encoding="utf-8")
    blocks = re.split(r"(\n(?:\|[^\n]*\n)+)", text)
    tables = [guide_table(rows)] + [plan_table(name) for name in PLANS]
    found = 0
    for i, block in enumerate(blocks):
        starts = block.lstrip("\n")
        if starts.startswith(("| notebook | words |", "| start | part |")) and found < len(tables):
            blocks[i] = "\n" + tables[found] + "\n"
            found += 1
    if found != len(tables):
        raise ValueError(f"{path} holds {found} of the {len(tables)} tables to write")
    total = sum(r["total"] for r in rows.values())
    text = re.sub(r"takes about \*\*([\d.]+) hours\*\* \(\d+\s+minutes\)",
                  lambda m: f"takes about **{m.group(1)} hours** ({total}\nminutes)", "".join(blocks))
    path.write_text(text, encoding="utf-8")


def main() -> int:
    if "--guide-table" in sys.argv[1:]:
        print(guide_table())
        return 0
    if "--plans" in sys.argv[1:]:
        for name in PLANS:
            print(f"{name}: {plan_total(name)} minutes\n\n{plan_table(name)}\n")
        return 0
    if "--write-guide" in sys.argv[1:]:
        write_guide()
        return 0
    if "--notes" in sys.argv[1:]:
        print(f"{write_note_lines()} instructor notes rewritten")
        return 0
    if "--sections" in sys.argv[1:]:
        for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            print(path.name)
            for section in section_counts(path):
                print(f"  {reading_minutes(section):5.1f}  {section['key']:<40}{' '.join(section['exercises'])}")
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
