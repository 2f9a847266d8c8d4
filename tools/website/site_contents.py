"""What the course's website contains, worked out from the repository (no Sphinx needed, so the
unit tests read it too): the notebooks in course order, the reference pages, the tables of
contents, the learner-edition links, and the repository's and the site's addresses.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from notebook_template import launch_urls, repository_slug, repository_url  # noqa: E402

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
# The reference pages in reading order; any other page in docs/ follows, by name.
DOCS_ORDER = ("instructor_guide", "cheatsheet", "solutions", "datasets", "platforms",
              "benchmarks", "architecture")


REPOSITORY = repository_url()
SLUG = repository_slug()  # owner/name


def site_url(slug: str = SLUG) -> str:
    """Where GitHub Pages publishes the site of the GitHub repository ``owner/name``."""
    owner, name = slug.split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def course_notebooks(root: Path = ROOT) -> list[Path]:
    """The course's notebooks in course order: notebooks/NN_*.ipynb sorted by file name."""
    return sorted((root / "notebooks").glob(NOTEBOOK_PATTERN))


def reference_pages(root: Path = ROOT) -> list[str]:
    """docs/*.md as page names, in DOCS_ORDER, then any other by file name."""
    names = sorted(p.stem for p in (root / "docs").glob("*.md"))
    ordered = [n for n in DOCS_ORDER if n in names]
    return [f"docs/{n}" for n in ordered + [n for n in names if n not in ordered]]


def toctree_source(root: Path = ROOT) -> str:
    """The hidden tables of contents appended to the home page's source (MyST)."""
    notebooks = "\n".join(f"notebooks/{p.stem}" for p in course_notebooks(root))
    docs = "\n".join(reference_pages(root))
    return (f"\n\n```{{toctree}}\n:hidden:\n:caption: The notebooks\n\n{notebooks}\n```\n"
            f"\n```{{toctree}}\n:hidden:\n:caption: Teaching and reference\n\n{docs}\n```\n")


def learner_edition_cell(notebook: str) -> dict:
    """A markdown cell that links a notebook's learner edition (``notebook``: its file name)."""
    path = f"notebooks/learner/{notebook}"
    colab, binder = launch_urls(path)
    text = (":::{admonition} Learner edition\n:class: tip\n"
            "The same notebook with each exercise's answer left for you to write "
            "(this page shows the complete edition, answers in): "
            f"[open in Colab]({colab}) · [launch on Binder]({binder}) · "
            f"[view on GitHub]({REPOSITORY}/blob/main/{path}) · "
            f"[download](learner/{notebook}).\n:::")
    return {"cell_type": "markdown", "id": "course-site-learner-edition", "metadata": {},
            "source": text}
