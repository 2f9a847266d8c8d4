"""The parts every course notebook shares: the header with its badges, and the setup cell.

Authors build a new notebook with `new_notebook(...)`, then edit it in JupyterLab (the .ipynb
is the source of truth). tests/test_notebook_structure.py checks that every notebook keeps
these parts, and that the repository URL in badges and setup cells is `repository_url()`,
read from pyproject.toml, the one place it is kept.
"""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (camutils' test extra installs tomli there)
    import tomli as tomllib

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    """The project's repository, from pyproject.toml's [project.urls] Repository."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


def repository_slug() -> str:
    """``owner/name`` of the GitHub repository."""
    return repository_url().split("github.com/", 1)[1]


def launch_urls(path: str) -> tuple[str, str]:
    """Colab's and Binder's addresses of the notebook at ``path`` in the repository."""
    slug = repository_slug()
    return (f"https://colab.research.google.com/github/{slug}/blob/main/{path}",
            f"https://mybinder.org/v2/gh/{slug}/main?urlpath=lab/tree/{path}")


def badges(notebook: str) -> str:
    colab, binder = launch_urls(f"notebooks/{notebook}")
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def header(notebook: str, title: str, objectives: list[str], prerequisites: str,
           minutes: int) -> str:
    lines = [f"# {title}", "", badges(notebook), "", "**Learning objectives**", ""]
    lines += [f"- {o}" for o in objectives]
    lines += ["", f"**Prerequisites:** {prerequisites}", "",
              f"**Estimated time:** {minutes} minutes (how it is estimated, and the workshop plans: "
              f"[docs/instructor_guide.md]({repository_url()}/blob/main/docs/instructor_guide.md))"]
    return "\n".join(lines)


def setup_source(seed: int = 0) -> str:
    return f'''# Setup: run this cell first. On Colab it installs camutils from the course repository;
# everywhere it checks versions, sets the seeds and says whether the machine is online.
import sys

REPOSITORY = "{repository_url()}"
if "google.colab" in sys.modules:  # keep Colab's NumPy: its TensorFlow was built against it
    import numpy
    %pip install --quiet "camutils @ git+{{REPOSITORY}}" "numpy=={{numpy.__version__}}"

import camutils

environment = camutils.setup_notebook(seed={seed})'''


def closing_cells() -> list:
    """What every notebook ends with: its key points, a self-check of 5 to 10 questions, their
    answers (a cell tagged ``self-check-answers``: only the complete edition shows it, and
    docs/solutions.md lists it), and further reading. Each section of the notebook opens with
    an instructor note, a markdown cell tagged ``instructor`` (`python tools/course_minutes.py
    --notes` writes its first line)."""
    answers = nbformat.v4.new_markdown_cell("### Answers to the self-check\n\n1. ...",
                                            metadata={"tags": ["self-check-answers"]})
    return [nbformat.v4.new_markdown_cell("## Key points\n\n- ..."),
            nbformat.v4.new_markdown_cell(
                "## Self-check\n\nAnswer in a sentence or two, then compare with the answers in "
                f"[docs/solutions.md]({repository_url()}/blob/main/docs/solutions.md).\n\n1. ..."),
            answers,
            nbformat.v4.new_markdown_cell("## Further reading\n\n- ...")]


def new_notebook(notebook: str, title: str, objectives: list[str], prerequisites: str,
                 minutes: int, seed: int = 0) -> nbformat.NotebookNode:
    """A notebook with the header and the setup cell, ready for its sections, and the closing
    cells (`closing_cells`) to fill in."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(header(notebook, title, objectives, prerequisites, minutes)),
        nbformat.v4.new_code_cell(setup_source(seed), metadata={"tags": ["setup"]}),
        *closing_cells(),
    ]
    return nb
