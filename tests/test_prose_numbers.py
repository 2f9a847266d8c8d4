"""tools/prose_numbers.py finds prose that a notebook's numbers do not back."""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import prose_numbers as P  # noqa: E402


def _notebook():
    nb = nbformat.v4.new_notebook()
    table = nbformat.v4.new_code_cell("print(table)")
    table.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                            text="image  IoU\na      0.62\nb      0.20\nc      0.55\n")]
    note = nbformat.v4.new_markdown_cell("**Instructor note**: almost never 0.99", metadata={"tags": ["instructor"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\nNothing measured yet, almost nothing."),
                table,
                nbformat.v4.new_markdown_cell("The box almost never reaches an IoU of 0.5. Two boxes "
                                              "are shown. The mean is 0.46, about 46%, and `code 0.7` "
                                              "is not prose.\n\n## Further reading\n\n- 0.33 times"),
                note]
    return nb


def test_a_comparative_sentence_is_listed_beside_the_values_before_it():
    found = P.comparative_sentences(_notebook())
    assert [(sentence, values) for _, sentence, values in found] == [
        ("The box almost never reaches an IoU of 0.5.", ["a      0.62", "b      0.20", "c      0.55"])]


def test_a_decimal_that_no_output_holds_is_listed():
    found = [(number, sentence) for _, number, sentence in P.unmatched_decimals(_notebook())]
    assert [number for number, _ in found] == ["0.5", "0.46", "46%"]


def test_the_tool_runs_on_the_course(capsys):
    assert P.main(["--decimals", "00_start"]) == 0
    assert P.main(["--comparatives", "00_start"]) == 0
