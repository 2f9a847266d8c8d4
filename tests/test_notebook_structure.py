"""Every notebook keeps the course's structure; the checker itself catches broken notebooks."""

import json
import re
import shutil
from pathlib import Path

import pytest

from notebook_checks import ROOT, notebook_problems, repository_slug

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no numbered notebook"
    assert NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    assert notebook_problems(path) == []


def _broken_copy(tmp_path: Path, edit) -> Path:
    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    edit(nb)
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_checker_catches_a_missing_header_field(tmp_path):
    def drop_prerequisites(nb):
        src = "".join(nb["cells"][0]["source"])
        nb["cells"][0]["source"] = re.sub(r".*Prerequisites.*\n?", "", src)

    problems = notebook_problems(_broken_copy(tmp_path, drop_prerequisites))
    assert problems == ["header has no prerequisites"]


def test_checker_catches_an_unexecuted_notebook(tmp_path):
    def clear(nb):
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["execution_count"], cell["outputs"] = None, []

    problems = notebook_problems(_broken_copy(tmp_path, clear))
    assert any("is not executed" in p for p in problems)
    assert any("has no outputs" in p for p in problems)


def test_checker_catches_out_of_order_execution_and_machine_paths(tmp_path):
    def shuffle(nb):
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        code[0]["execution_count"], code[1]["execution_count"] = 7, 3
        nb["cells"].append({"cell_type": "markdown", "metadata": {},
                            "source": "Saved in /home/someone/course"})

    problems = notebook_problems(_broken_copy(tmp_path, shuffle))
    assert any("not executed in order" in p for p in problems)
    assert any("machine path" in p for p in problems)


def test_checker_catches_a_foreign_repository_and_a_missing_setup_cell(tmp_path):
    def elsewhere(nb):
        for cell in nb["cells"]:
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = src.replace(repository_slug(), "somebody/else")

    problems = notebook_problems(_broken_copy(tmp_path, elsewhere))
    assert any("links to repository 'somebody/else'" in p for p in problems)
    assert any("not the setup cell" in p for p in problems)


def test_readme_badges_and_binder_agree_with_the_repository_url():
    readme = (ROOT / "README.md").read_text()
    slugs = set(re.findall(r"(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh)/([\w.-]+/[\w.-]+)", readme))
    assert slugs == {repository_slug()}
    assert "urlpath=lab/tree/notebooks/00_start_here.ipynb" in readme


def test_course_map_links_resolve():
    """00_start_here links every existing notebook, and links nothing that does not exist."""
    text = (ROOT / "notebooks" / "00_start_here.ipynb").read_text()
    linked = set(re.findall(r"\(https://github\.com/[\w.-]+/[\w.-]+/blob/main/notebooks/(\d\d_[\w]+\.ipynb)\)", text))
    existing = {p.name for p in NOTEBOOKS}
    assert existing <= linked, f"not on the course map: {sorted(existing - linked)}"
    assert linked <= existing, f"links to missing notebooks: {sorted(linked - existing)}"


def test_checker_catches_figures_that_were_not_stored(tmp_path):
    def drop_pictures(nb):
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"] = [o for o in cell["outputs"]
                                   if not {"image/png", "image/jpeg"} & set(o.get("data", {}))]

    problems = notebook_problems(_broken_copy(tmp_path, drop_pictures))
    assert any("draws figures but stores none" in p for p in problems)


def test_checker_catches_a_relative_link_and_a_blurry_or_too_wide_figure(tmp_path):
    def shown_at(width):
        def edit(nb):
            nb["cells"][0]["source"] = ("".join(nb["cells"][0]["source"])
                                        + "\n\nSee [notebook 01](01_cam_from_scratch.ipynb).")
            for cell in nb["cells"]:
                for out in cell.get("outputs", []):
                    for mime in ("image/png", "image/jpeg"):
                        if mime in out.get("data", {}):
                            out.setdefault("metadata", {})[mime] = {"width": width, "height": 100}
        return edit

    problems = notebook_problems(_broken_copy(tmp_path, shown_at(2000)))
    assert any("relative link" in p and "01_cam_from_scratch.ipynb" in p for p in problems)
    assert any("wider than a notebook" in p for p in problems)
    assert any("not drawn at twice" in p for p in notebook_problems(_broken_copy(tmp_path, shown_at(100))))


def test_checker_catches_a_missing_self_check(tmp_path):
    def drop(nb):
        nb["cells"] = [c for c in nb["cells"] if "Self-check" not in "".join(c["source"])]

    assert "has no self-check (5 to 10 questions, then their answers)" in notebook_problems(
        _broken_copy(tmp_path, drop))
