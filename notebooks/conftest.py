"""nbval, with printed numbers compared to one unit of their last printed digit.

Cells marked ``# NBVAL_CHECK_OUTPUT`` print key results, rounded. The same computation on
another CPU, with another thread count, with oneDNN on or off, or with another TensorFlow
build differs in the last bits, and a value that sits on a rounding boundary then prints one
unit apart (0.224 instead of 0.225; 0.200 instead of 0.199). So a compared output passes when
its text is the stored text except for numbers, and every number agrees with the stored one
to within one unit of the stored number's last printed digit. Whole numbers (counts, shapes,
class indices) must match exactly, as must every word.

This file is picked up by pytest for every notebook under notebooks/ (``make test``).
"""

from __future__ import annotations

import re

NUMBER = re.compile(r"[-+]?(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _unit(text: str) -> float:
    """One unit in the last printed place of a number as printed (0 for a whole number)."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    if decimals == 0 and not exponent:
        return 0.0
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(reference: str, actual: str) -> bool:
    """Whether ``actual`` is ``reference`` up to printed numbers within one last-digit unit."""
    if reference == actual:
        return True
    ref_words, act_words = NUMBER.split(reference), NUMBER.split(actual)
    if ref_words != act_words:
        return False
    for ref, act in zip(NUMBER.findall(reference), NUMBER.findall(actual)):
        if ref == act:
            continue
        unit = _unit(ref)
        if unit == 0.0 or _unit(act) != unit:
            return False  # whole numbers exactly; the same number of printed digits
        if abs(float(act) - float(ref)) > unit * (1 + 1e-9):
            return False
    return True


def _align(reference_outputs, test_outputs):
    """Test outputs where every text agreeing with its reference is replaced by the reference."""
    aligned = []
    for ref, test in zip(reference_outputs, test_outputs):
        test = type(test)(test)  # a shallow copy that keeps nbformat's attribute access
        if ref.get("output_type") == test.get("output_type") == "stream":
            if ref.get("name") == test.get("name") and numbers_agree(ref["text"], test["text"]):
                test["text"] = ref["text"]
        elif "data" in ref and "data" in test and "text/plain" in ref["data"]:
            ref_text, test_text = ref["data"]["text/plain"], test["data"].get("text/plain")
            if isinstance(test_text, str) and numbers_agree(ref_text, test_text):
                data = type(test["data"])(test["data"])
                data["text/plain"] = ref_text
                test["data"] = data
        aligned.append(test)
    return aligned + list(test_outputs[len(aligned):])


def pytest_configure(config):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to compare
        return
    if getattr(IPyNbCell.compare_outputs, "_tolerant", False):
        return
    compare = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        # nbval has coalesced both sides' streams; align, then let nbval compare and report.
        return compare(self, _align(ref, test), ref, skip_compare)

    compare_outputs._tolerant = True
    IPyNbCell.compare_outputs = compare_outputs
