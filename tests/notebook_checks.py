"""What every course notebook must have; used by test_notebook_structure.py."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from notebook_template import repository_slug, repository_url  # noqa: E402

MAX_BYTES = 1_500_000
MACHINE_PATHS = re.compile(r"(/root/|/home/\w|/Users/\w|/tmp/|/work/|[A-Z]:\\\\|site-packages)")
HEADER_FIELDS = {
    "title": re.compile(r"^# \S", re.M),
    "learning objectives": re.compile(r"learning objectives", re.I),
    "prerequisites": re.compile(r"prerequisites", re.I),
    "estimated minutes": re.compile(r"estimated time[^\n]*\d+\s*min", re.I),
}


def _source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _self_check_problems(cells) -> list[str]:
    """An end-of-notebook self-check: a `## Self-check` cell with 5 to 10 numbered questions,
    followed by a cell tagged ``self-check-answers`` with one answer per question."""
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown" and re.match(r"## Self-check", _source(cell)):
            questions = re.findall(r"^\d+\. ", _source(cell), re.M)
            after = cells[index + 1] if index + 1 < len(cells) else {}
            if "self-check-answers" not in after.get("metadata", {}).get("tags", []):
                return ["its self-check is not followed by its answers (a cell tagged "
                        "self-check-answers)"]
            answers = re.findall(r"^\d+\. ", _source(after), re.M)
            if not 5 <= len(questions) <= 10:
                return [f"its self-check has {len(questions)} questions; 5 to 10 expected"]
            if len(answers) != len(questions):
                return [f"its self-check has {len(questions)} questions but {len(answers)} answers"]
            return []
    return ["has no self-check (5 to 10 questions, then their answers)"]


def _figure_problems(code) -> list[str]:
    """Stored figures must be sharp (drawn at twice the pixels they are shown at) and no wider
    than a notebook (camutils.plot.use_course_style does both)."""
    widest = 9.4 * 96
    for cell in code:
        for out in cell.get("outputs", []):
            for mime in ("image/png", "image/jpeg"):
                if mime not in out.get("data", {}):
                    continue
                shown = out.get("metadata", {}).get(mime, {}).get("width")
                if shown is None:
                    return [f"cell {cell.get('id')} stores a figure not drawn at twice its size "
                            "(no width to show it at): is camutils.setup_notebook() run?"]
                if shown > widest:
                    return [f"cell {cell.get('id')} shows a figure {shown} pixels wide, wider than "
                            f"a notebook ({widest:.0f})"]
                import base64
                import io

                from PIL import Image

                with Image.open(io.BytesIO(base64.b64decode(out["data"][mime]))) as picture:
                    if abs(picture.size[0] - 2 * shown) > 2:
                        return [f"cell {cell.get('id')} stores a figure not drawn at twice the "
                                f"pixels it is shown at ({picture.size[0]} for {shown})"]
    return []


def notebook_problems(path: Path) -> list[str]:
    """Every way in which the notebook at ``path`` breaks the course's conventions."""
    path = Path(path)
    problems: list[str] = []
    size = path.stat().st_size
    if size > MAX_BYTES:
        problems.append(f"is {size / 1e6:.2f} MB; the limit is {MAX_BYTES / 1e6} MB")
    text = path.read_text()
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as error:
        return problems + [f"is not valid JSON ({error})"]
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "markdown":
        return problems + ["does not start with a markdown header cell"]

    header = _source(cells[0])
    for field, pattern in HEADER_FIELDS.items():
        if not pattern.search(header):
            problems.append(f"header has no {field}")

    code = [c for c in cells if c.get("cell_type") == "code" and _source(c).strip()]
    if not code:
        return problems + ["has no code cells"]
    setup = _source(code[0])
    for needed in ("google.colab", f'REPOSITORY = "{repository_url()}"', "setup_notebook(",
                   '"numpy=={numpy.__version__}"'):  # Colab's TensorFlow keeps its NumPy
        if needed not in setup:
            problems.append(f"first code cell is not the setup cell (missing {needed!r})")

    markdown = "\n".join(_source(c) for c in cells if c.get("cell_type") == "markdown")
    if not re.search(r"^#+\s*Key points", markdown, re.M | re.I):
        problems.append("has no 'Key points' section")
    problems += _self_check_problems(cells)
    for target in re.findall(r"\]\(([^)\s]+)\)", markdown):
        if not re.match(r"(https?://|#|mailto:)", target):
            problems.append(f"has a relative link ({target}): it leads nowhere on Colab; link "
                            f"{repository_url()}/blob/main/... instead")

    counts = [c.get("execution_count") for c in code]
    if any(n is None for n in counts):
        missing = sum(n is None for n in counts)
        problems.append(f"is not executed ({missing} of {len(counts)} code cells have no "
                        "execution count): run `make notebooks`")
    elif counts != list(range(1, len(counts) + 1)):
        problems.append(f"was not executed in order from a fresh kernel (counts {counts[:12]}...)")
    if not any(c.get("outputs") for c in code):
        problems.append("has no outputs")
    for c in code:
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"has an error output ({out.get('ename')})")

    draws = any(re.search(r"plt\.show\(\)|\bgallery\(|show_overlay\(", _source(c)) for c in code)
    pictures = sum("image/png" in out.get("data", {}) or "image/jpeg" in out.get("data", {})
                   for c in code for out in c.get("outputs", []))
    if draws and not pictures:
        problems.append("draws figures but stores none (was it run with a non-inline "
                        "matplotlib backend, e.g. MPLBACKEND=Agg?)")

    problems += _figure_problems(code)

    match = MACHINE_PATHS.search(text)
    if match:
        problems.append(f"contains a machine path ({match.group(0)!r})")

    slug = repository_slug()
    for link in re.findall(r"(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh|github\.com)/([\w.-]+/[\w.-]+)", text):
        if link.rstrip(".") != slug:
            problems.append(f"links to repository {link!r}, not {slug!r} (pyproject.toml)")
    return problems
