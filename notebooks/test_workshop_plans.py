"""The workshop plans of docs/instructor_guide.md, run as they are taught.

For each part of a plan (tools/course_minutes.py, `PLANS`) that skips a section and is not
marked "Run All first", the learner edition's header, setup and taught sections run alone, in
order, in a fresh kernel: a taught section must never read what only a skipped one makes.
A part that skips no code (only the self-check, say) is the whole notebook, which nbval
runs already.

Runs apart from the notebooks (``make workshop-test``, which .ci/run calls): each part starts
a kernel, and together they would take ``make test`` past its time budget.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.workshop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import course_minutes as C  # noqa: E402


def _parts() -> list[tuple[str, tuple[str, ...]]]:
    parts = {}
    for plan in C.PLANS.values():
        for part in plan:
            if isinstance(part, C.Part) and not part.run_all and C.part_minutes(part)["skips_code"]:
                parts[part.notebook, part.sections] = None
    return sorted(parts)


def taught_cells(notebook: str, sections: tuple[str, ...]):
    """The learner edition's header, setup and taught sections, in order."""
    complete = C.notebook_path(notebook)
    cells = nbformat.read(complete, as_version=4).cells
    taught = {cells[i].get("id") for s in C.section_counts(complete)
              if s["key"] == C.HEADER or s["key"] in sections for i in s["cells"]}
    learner = nbformat.read(ROOT / "notebooks" / "learner" / complete.name, as_version=4)
    nb = copy.deepcopy(learner)
    nb.cells = [c for c in nb.cells if c.get("id") in taught]
    return nb


@pytest.mark.parametrize("notebook, sections", _parts(),
                         ids=lambda v: v if isinstance(v, str) else "+".join(v))
def test_the_taught_sections_run_alone(notebook, sections):
    from nbclient import NotebookClient

    nb = taught_cells(notebook, sections)
    assert any(c.cell_type == "code" for c in nb.cells[2:])
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks" / "learner")}}).execute()
