"""Write the learner editions of the notebooks, and the solutions page, from the complete ones.

    python tools/learner_editions.py            # notebooks/learner/*.ipynb and docs/solutions.md
    python tools/learner_editions.py --check    # exit 1 if they are not what the notebooks give

Run it through `make student` (``python course.py student``), which uses the project's .venv;
`make notebooks` runs it too, after re-executing the notebooks.

One source, two editions. In a complete notebook (notebooks/NN_*.ipynb) each exercise's answer
is marked in its code cell, as nbgrader marks solutions:

    ### BEGIN SOLUTION
    def normalise(x):
        ...the working answer...
    ### END SOLUTION
    assert ex.check(normalise)

In the learner edition (notebooks/learner/NN_*.ipynb) that region becomes a placeholder with
the task's title and a first hint in comments: a function keeps its signature and gets the
body ``...``; a value becomes ``name = ...`` (only the names that the rest of the cell reads:
the answer, not the steps towards it). ``assert ex.check(...)`` becomes ``ex.check(...)``, so
an unattempted exercise prints "not attempted yet" and the notebook runs on. Every other cell
is copied with its outputs and execution count (they do not depend on any answer: nbval
compares the learner edition's checked outputs with these, and refuses outputs on a cell
without an execution count); the answer cells lose both. The header says which edition this is and links the other.

The rules that keep a wrong answer from changing anything downstream are checked here
(a learner edition cannot be written otherwise) and again by tests/test_learner_editions.py:
the rest of an answer cell reads only the answer names and the exercise; no later cell reads
a name that an answer region defines; an answer cell's output is never compared by nbval.

And no answer can be read before the learner has tried (tools/learner_leaks.py says how each
kind of leak is found): the edition is refused when a visible cell shows the answer's code,
defines a function the checker accepts, or says the answer in words where it must not; a
stored output that prints a number the checker accepted is cleared (with its nbval mark).

Two kinds of cells reach only the complete edition: instructor notes (a markdown cell tagged
``instructor``: timing and pitfalls at a section, as the Carpentries put them) and the answers
to the end-of-notebook self-check (tagged ``self-check-answers``), which docs/solutions.md
lists. Links to the course's notebooks point to the learner editions there.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import learner_leaks as leaks  # noqa: E402
from notebook_template import repository_url  # noqa: E402
NOTEBOOKS = ROOT / "notebooks"
LEARNER = NOTEBOOKS / "learner"
SOLUTIONS = ROOT / "docs" / "solutions.md"

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECKED = "# NBVAL_CHECK_OUTPUT"
EXERCISE_KEY = re.compile(r"""exercises\.get\(\s*["']([\w.]+)["']\s*\)""")
INSTRUCTOR, ANSWERS = "instructor", "self-check-answers"
EDITION_NOTE = ("> **Learner edition.** Each exercise's answer is a `...` for you to replace; "
                "`ex.check(...)` says whether it is right, `ex.hint()` helps, `ex.solution()` "
                "shows one. The complete notebook, with the answers: [{name}]({url}).")


class EditionError(ValueError):
    """A complete notebook breaks a rule that the learner edition relies on."""


@dataclass
class Region:
    """One answer region of a code cell."""

    key: str                # the exercise, e.g. "01.cam_by_hand"
    before: list[str]       # the cell's lines before the BEGIN marker
    answer: list[str]       # the lines between the markers
    after: list[str]        # the lines after the END marker
    defined: set[str]       # names the answer defines (functions, assignments, imports)
    placeholder: list[str]  # what replaces it in the learner edition


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _names_read(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _names_defined(statements) -> set[str]:
    names = set()
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
        else:
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
    return names


def _placeholder(key: str, answer: list[str], after: list[str], title: str, hint: str) -> list[str]:
    """The learner's lines: the task in comments, the answer's signatures or names, ``...``."""
    tree = ast.parse("\n".join(answer))
    read_after = _names_read(ast.parse("\n".join(after))) if after else set()
    lines = [f"# {title}",
             "# Replace each ... with your answer, then run the cell; ex.hint() gives more hints.",
             f"# Hint: {hint}"]
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines += [f"def {statement.name}({ast.unparse(statement.args)}):",
                      "    ...  # your code here", ""]
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            lines.append(ast.unparse(statement))
    for name in sorted(_names_defined(tree.body) & read_after, key=lambda n: "\n".join(answer).find(n)):
        if not any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name
                   for s in tree.body):
            lines.append(f"{name} = ...")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def find_region(source: str, key: str | None, where: str) -> Region | None:
    """The answer region of one code cell, checked; None if the cell has none."""
    lines = source.split("\n")
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise EditionError(f"{where}: one {BEGIN!r} and then one {END!r} per cell.")
    if key is None:
        raise EditionError(f"{where}: an answer region before any "
                           "camutils.course.exercises.get(...).")
    if lines and lines[0].strip() == CHECKED:
        raise EditionError(f"{where}: an answer cell's output cannot be compared by nbval "
                           "(it differs between the editions); move the printed result to the "
                           "next cell.")
    before, answer, after = lines[:begins[0]], lines[begins[0] + 1:ends[0]], lines[ends[0] + 1:]
    if any(line.startswith((" ", "\t")) for line in (answer[:1] or [""])):
        raise EditionError(f"{where}: the answer region must start at the cell's top level.")
    tree = ast.parse("\n".join(answer))
    defined = _names_defined(tree.body)
    after_tree = ast.parse("\n".join(after))
    checks = [s for s in after_tree.body if "ex.check(" in ast.unparse(s)]
    if not checks:
        raise EditionError(f"{where}: no ex.check(...) after the answer region.")
    for statement in after_tree.body:
        if statement in checks:
            continue
        leaked = _names_read(statement) & defined
        if leaked:
            raise EditionError(
                f"{where}: after the check, `{ast.unparse(statement)[:60]}` reads the answer "
                f"({', '.join(sorted(leaked))}); a wrong answer would change it. Use camutils' "
                "reference there, in a later cell.")
    return Region(key, before, answer, after, defined, [])


def _learner_after(after: list[str]) -> list[str]:
    return [re.sub(r"^(\s*)assert (ex\.check\(.*)$", r"\1\2", line) for line in after]


def notebook_regions(nb, name: str) -> list[tuple[int, Region]]:
    """Every answer region of a notebook, with its cell's index; the notebook's rules checked."""
    from camutils.course import exercises

    key, regions = None, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = _source(cell)
        keys = EXERCISE_KEY.findall(source)
        key = keys[-1] if keys else key            # `ex = camutils.course.exercises.get(...)`
        region = find_region(source, key, f"{name} cell {index}")
        if region is None:
            continue
        ex = exercises.get(region.key)
        region.placeholder = _placeholder(region.key, region.answer, region.after, ex.heading,
                                          ex.hints[0] if ex.hints else "see ex.solution()")
        regions.append((index, region))
    defined_so_far: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        mine = dict(regions).get(index)
        body = "\n".join(mine.before) if mine else _source(cell)
        try:
            read = _names_read(ast.parse(_strip_magics(body)))
        except SyntaxError as error:
            raise EditionError(f"{name} cell {index}: {error}") from None
        leaked = read & set(defined_so_far)
        if leaked:
            where = ", ".join(f"{n} ({defined_so_far[n]})" for n in sorted(leaked))
            raise EditionError(f"{name} cell {index} reads an earlier exercise's answer: {where}. "
                               "Downstream cells must use camutils' reference, not the answer.")
        if mine:
            defined_so_far.update({n: f"answer of {mine.key}" for n in mine.defined})
    return regions


def _strip_magics(source: str) -> str:
    """IPython's ``%magic`` and ``!shell`` lines as ``pass``, so that the cell parses."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in source.split("\n"))


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def notebook_url(name: str, learner: bool = False) -> str:
    """A notebook's address in the repository: a link that works wherever the notebook is
    opened (Colab included, where a relative link leads nowhere)."""
    return f"{repository_url()}/blob/main/notebooks/{'learner/' if learner else ''}{name}"


_NOTEBOOK_LINK = re.compile(r"(?P<base>/blob/main/notebooks/)(?P<name>\d\d_\w+\.ipynb)")


def _accepted_values(cells, regions: dict) -> dict[str, list[float]]:
    """Each value exercise's accepted numbers, as the complete edition's verdict printed them."""
    values = {}
    for index, region in regions.items():
        text = leaks.output_text(cells[index])
        found = [float(v) for v in leaks.accepted_numbers(text)]
        verdict = next((line for line in text.split("\n") if f"{region.key}: correct" in line), "")
        if not any(line.lstrip().startswith("def ") for line in region.answer):
            for match in leaks.NUMBER.finditer(verdict.split(". ", 1)[-1]):   # older verdicts
                value = float(match.group(0).rstrip("%")) / (100 if match.group(2) else 1)
                if len(match.group(1).replace(".", "").lstrip("0")) >= 3:
                    found.append(value)
        if found:
            values[region.key] = found
    return values


def _clear(cell) -> None:
    cell.outputs = []
    cell.execution_count = None   # unrun: nbval neither compares nor refuses it
    cell.source = "\n".join(line for line in _source(cell).split("\n") if line.strip() != CHECKED)


def learner_notebook(nb, name: str, common: set[str] | None = None, earlier=()):
    """The learner edition of the complete notebook ``nb`` (named ``name``).

    ``common``: the course's idioms (`course_idioms`); ``earlier``: the learner editions of the
    notebooks before this one, searched for the answers in words. Raises `EditionError` when
    the edition would leak an answer.
    """
    regions = dict(notebook_regions(nb, name))
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out.cells):
        if index in regions:
            region = regions[index]
            cell.source = "\n".join(region.before + region.placeholder + _learner_after(region.after))
            _clear(cell)
        elif cell.cell_type == "markdown":
            cell.source = _NOTEBOOK_LINK.sub(r"\g<base>learner/\g<name>", _source(cell))
    accepted = _accepted_values(nb.cells, regions)
    answer_ids = {nb.cells[i].get("id") for i in regions}
    for cell in out.cells:
        if cell.get("id") in answer_ids:
            continue
        text = leaks.visible_text(cell)
        if any(leaks.printed(text, v) for values in accepted.values() for v in values) \
                and cell.cell_type == "code":
            _clear(cell)
    out.cells = [c for c in out.cells if not {INSTRUCTOR, ANSWERS} & set(tags(c))]
    header = out.cells[0]
    text = _source(header).replace(f"notebooks/{name}", f"notebooks/learner/{name}")
    lines = text.split("\n")
    lines[1:1] = ["", EDITION_NOTE.format(name=name, url=notebook_url(name))]
    header.source = "\n".join(lines)
    found = find_leaks(out, nb, name, common if common is not None else set(), earlier, accepted)
    if found:
        raise EditionError(f"{name}: the learner edition would show answers before the learner "
                           "has tried:\n  " + "\n  ".join(map(str, found)))
    return out


def find_leaks(learner, complete, name: str, common: set[str], earlier=(), accepted=None):
    """Every answer that ``learner`` (the learner edition of ``complete``) shows before its
    exercise: the kinds of tools/learner_leaks.py. ``earlier``: (name, learner edition) of the
    notebooks before this one."""
    from camutils.course import exercises

    regions = dict(notebook_regions(complete, name))
    if accepted is None:
        accepted = _accepted_values(complete.cells, regions)
    position = {cell.get("id"): i for i, cell in enumerate(learner.cells)}
    answer_cells = {position[complete.cells[i].get("id")] for i in regions}
    found = []
    for index, region in regions.items():
        ex = exercises.get(region.key)
        at = position[complete.cells[index].get("id")]
        found += leaks.code_leaks(name, learner.cells, at, region, ex, common)
        found += leaks.drop_in_leaks(name, learner.cells, at, region, ex)
        found += leaks.output_leaks(name, learner.cells, answer_cells, region.key,
                                    accepted.get(region.key, []))
        found += leaks.text_leaks(name, learner.cells, at, region.key, ex.giveaways)
        for other_name, other in earlier:
            found += leaks.text_leaks(other_name, other.cells, None, region.key, ex.giveaways)
    return found


def course_idioms(notebooks: list[tuple[str, object]]) -> set[str]:
    """The code fragments that are idioms of the course: found in
    `learner_leaks.IDIOM_CELLS` or more code cells (answer regions left out). An exercise's
    answer may share them with the cells around it."""
    cells: list[str] = []
    for name, nb in notebooks:
        regions = dict(notebook_regions(nb, name))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                region = regions.get(index)
                cells.append("\n".join(region.before + region.after) if region else _source(cell))
    return leaks.idioms(cells, set())


def _numbered(text: str) -> dict[str, str]:
    """The numbered items of a markdown list: number -> text (indented continuation lines
    joined; any other line ends an item)."""
    items, current = {}, None
    for line in text.split("\n"):
        match = re.match(r"(\d+)\. (.*)", line)
        if match:
            current = match.group(1)
            items[current] = match.group(2)
        elif current and line.startswith(("  ", "\t")) and line.strip():    # an indented continuation
            items[current] += " " + line.strip()
        elif line.strip():
            current = None
    return items


def self_check_answers(nb) -> str:
    """The notebook's self-check, each question with its answer (from the cell tagged
    ``self-check-answers``), as markdown; empty without a self-check."""
    answers = [c for c in nb.cells if ANSWERS in tags(c)]
    questions = [c for c in nb.cells if c.cell_type == "markdown"
                 and _source(c).startswith("## Self-check")]
    if not answers or not questions:
        return ""
    asked, answered = _numbered(_source(questions[0])), _numbered(_source(answers[0]))
    return "\n".join(f"{n}. **{asked.get(n, '')}** {answer}" for n, answer in answered.items())


def solutions_page(notebooks: list[tuple[str, object]]) -> str:
    """docs/solutions.md: every answer region, by notebook and exercise, and the answers to
    each notebook's self-check."""
    from camutils.course import exercises

    parts = ["# Solutions to the exercises and the self-checks", "",
             "The answers of the learner editions (`notebooks/learner/`), exactly as the complete "
             "notebooks (`notebooks/`) give them, and the answers to the self-check that ends "
             "each notebook. Written by `make student` from the notebooks; do not edit by hand. "
             "In a notebook, `ex.solution()` prints another reference solution, and "
             "`ex.check(answer)` accepts any correct one.", ""]
    for name, nb in notebooks:
        regions = notebook_regions(nb, name)
        answers = self_check_answers(nb)
        if not regions and not answers:
            continue
        parts += [f"## [{name[:-6]}]({notebook_url(name)})", ""]
        for _, region in regions:
            ex = exercises.get(region.key)
            parts += [f"### {region.key}: {ex.title}", "", f"About {ex.minutes} minutes.", "",
                      "```python", *region.answer, "```", ""]
        if answers:
            parts += [f"### Self-check, {name[:2]}", "", answers, ""]
    return "\n".join(parts).rstrip() + "\n"


def complete_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def editions() -> dict[Path, str]:
    """Every file this script writes, and its text."""
    loaded = [(path.name, nbformat.read(path, as_version=4)) for path in complete_notebooks()]
    common = course_idioms(loaded)
    files, written = {}, []
    for name, nb in loaded:
        learner = learner_notebook(nb, name, common, earlier=list(written))
        written.append((name, learner))
        files[LEARNER / name] = nbformat.writes(learner) + "\n"
    files[SOLUTIONS] = solutions_page(loaded)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file differs from what it should be")
    args = parser.parse_args(argv)
    try:
        files = editions()
    except EditionError as error:
        print(f"Cannot write the learner editions: {error}", file=sys.stderr)
        return 2
    stale = [path for path, text in files.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run `make student`)")
        return 1 if stale else 0
    LEARNER.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(files[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    known = set(files)
    for path in LEARNER.glob("*.ipynb"):
        if path not in known:
            path.unlink()
            print(f"removed {path.relative_to(ROOT)} (no complete notebook of that name)")
    print(f"{len(files) - 1} learner editions and docs/solutions.md are up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
