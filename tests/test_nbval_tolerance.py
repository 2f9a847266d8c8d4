"""Compared notebook outputs: words and whole numbers exact, printed decimals to one last-digit unit."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = ROOT / "notebooks" / "conftest.py"
_spec = importlib.util.spec_from_file_location("notebook_conftest", CONFTEST)
notebook_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_conftest)
numbers_agree = notebook_conftest.numbers_agree


@pytest.mark.parametrize("reference, actual", [
    ("deletion AUC 0.225", "deletion AUC 0.224"),          # a rounding boundary
    ("0.199 and 0.40", "0.200 and 0.41"),                   # a carry, and two decimals
    ("share 47.7% of 1200", "share 47.8% of 1200"),
    ("logit  -0.76", "logit  -0.75"),
    ("tiny 2.5e-06", "tiny 2.6e-06"),
    ("same\ntext 1.00", "same\ntext 1.00"),
])
def test_numbers_one_unit_apart_agree(reference, actual):
    assert numbers_agree(reference, actual)


@pytest.mark.parametrize("reference, actual", [
    ("deletion AUC 0.225", "deletion AUC 0.227"),          # two units: a real change
    ("32/32 hits", "31/32 hits"),                           # counts are exact
    ("(224, 224, 3)", "(224, 223, 3)"),
    ("tiger_cat 0.41", "tabby 0.41"),                       # words are exact
    ("0.41", "0.4"),                                        # printed differently
    ("0.41", "0.41 0.2"),                                   # an extra number
    ("1.00", "-1.00"),
])
def test_other_differences_do_not(reference, actual):
    assert not numbers_agree(reference, actual)


def _notebook(path: Path, cells: list[tuple[str, float]]) -> None:
    """One checked cell per ``(stored output, value)``: it prints the value as the stored
    output was printed."""
    nb = nbformat.v4.new_notebook()
    for count, (stored, value) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(
            f'# NBVAL_CHECK_OUTPUT\nprint(f"AUC {{{value!r}:.3f}}, 32/32 hits")')
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
        nb.cells.append(cell)
    nbformat.write(nb, path)


@pytest.mark.slow
def test_nbval_uses_the_tolerance(tmp_path):
    """A real nbval run (one kernel, one cell per case): one-unit drift passes, a larger
    change and a count change fail."""
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    _notebook(tmp_path / "cases.ipynb", [("AUC 0.225, 32/32 hits\n", 0.2244),    # drift
                                         ("AUC 0.227, 32/32 hits\n", 0.2244),    # changed
                                         ("AUC 0.224, 31/32 hits\n", 0.2244)])   # count
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
                           "-p", "no:cacheprovider", "-rA", "-q", "."], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    report = done.stdout
    assert "PASSED cases.ipynb::Cell 0" in report, report
    assert "FAILED cases.ipynb::Cell 1" in report, report
    assert "FAILED cases.ipynb::Cell 2" in report, report
