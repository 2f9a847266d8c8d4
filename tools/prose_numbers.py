"""Prose against numbers: what a notebook says beside what it measured.

    python tools/prose_numbers.py                    # both lists, every notebook
    python tools/prose_numbers.py --decimals 05      # only the decimals, only notebook 05
    python tools/prose_numbers.py --comparatives     # only the comparative sentences

Two lists, for a person to read (a claim's wording cannot be judged by a program):

* **decimals**: every decimal number or percentage in a notebook's prose that appears in none
  of its code or stored outputs (section numbers, figures quoted from papers and rounded
  values are expected there; a stale number is not);
* **comparatives**: every sentence of the prose with a comparative or absolute word (more,
  less, fewer, never, always, barely, almost, nearly, far, much, twice, times, most, ...)
  that follows a measurement, printed beside the values it refers to: the numbers in the
  outputs of the code cells just before it (and its own numbers). "Almost never" beside a
  table where two of four reach the mark is what this list is for.

Instructor notes and the self-check's answers are left out (they quote the text, not the
measurements). tests/test_prose_numbers.py checks that each list finds what it should.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from learner_leaks import output_text as _outputs, source as _source  # noqa: E402

COMPARATIVES = ("more", "less", "fewer", "never", "always", "barely", "almost", "nearly",
                "hardly", "rarely", "far", "much", "twice", "times", "most", "least", "half",
                "every", "none", "only", "several", "higher", "lower", "better", "worse")
_WORDS = re.compile(r"\b(" + "|".join(COMPARATIVES) + r")\b", re.I)
DECIMAL = re.compile(r"(?<![\w.])(\d+\.\d+|\d+(?:\.\d+)?%)")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?%?")
_SKIP_TAGS = {"instructor", "self-check-answers"}


def prose(text: str) -> str:
    """Markdown without what is not prose: code, formulas, link targets, the references."""
    text = text.split("## Further reading")[0]
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.S)
    return re.sub(r"\]\([^)]*\)", "]", text)


def sentences(text: str) -> list[str]:
    pieces = re.split(r"(?<=[.!?:;])\s+(?=[A-Z*(])|\n\s*[-*\d.]+\s+|\n{2,}", prose(text))
    return [" ".join(p.split()) for p in pieces if p.strip()]


def _cells(nb):
    return [c for c in nb.cells if not _SKIP_TAGS & set(c.get("metadata", {}).get("tags", []))]


def unmatched_decimals(nb) -> list[tuple[str, str, str]]:
    """(cell id, number, sentence) for every decimal or percentage of the prose that no code
    or output of the notebook contains."""
    cells = _cells(nb)
    measured = "\n".join(_source(c) + "\n" + _outputs(c) for c in cells if c.cell_type == "code")
    found = []
    for cell in cells:
        if cell.cell_type != "markdown":
            continue
        for sentence in sentences(_source(cell)):
            for number in DECIMAL.findall(sentence):
                bare = re.escape(number.rstrip("%"))
                if not re.search(rf"(?<![\d.]){bare}(?![\d])", measured):
                    found.append((cell.get("id"), number, sentence))
    return found


def comparative_sentences(nb, look_back: int = 2, lines: int = 8) -> list[tuple[str, str, list[str]]]:
    """(cell id, sentence, the values it refers to) for every prose sentence with a
    comparative word after a measurement: the numeric output lines of the ``look_back`` code
    cells before it, and the sentence's own numbers."""
    cells = _cells(nb)
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        before = [c for c in cells[:index] if c.cell_type == "code" and _outputs(c).strip()][-look_back:]
        values = [line.strip() for c in before for line in _outputs(c).splitlines()
                  if NUMBER.search(line) and line.strip()][:lines]
        if not values:
            continue
        for sentence in sentences(_source(cell)):
            if _WORDS.search(sentence):
                found.append((cell.get("id"), sentence, values))
    return found


def notebooks(words: list[str]) -> list[Path]:
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not words or any(w in p.stem for w in words)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="words of the notebooks' names (default: all)")
    parser.add_argument("--decimals", action="store_true", help="only the unmatched decimals")
    parser.add_argument("--comparatives", action="store_true", help="only the comparatives")
    args = parser.parse_args(argv)
    both = not (args.decimals or args.comparatives)
    for path in notebooks(args.notebooks):
        nb = nbformat.read(path, as_version=4)
        if both or args.decimals:
            for cell, number, sentence in unmatched_decimals(nb):
                print(f"{path.name} {cell} decimal {number}: {sentence[:160]}")
        if both or args.comparatives:
            for cell, sentence, values in comparative_sentences(nb):
                print(f"{path.name} {cell}: {sentence}\n    values: " + " | ".join(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
