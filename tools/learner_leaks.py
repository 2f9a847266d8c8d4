"""What a learner edition must not show: an exercise's answer, before the learner has tried.

Used by tools/learner_editions.py, which refuses to write a learner edition that leaks, and by
tests/test_learner_editions.py, which looks for leaks in the committed learner editions. Four
kinds, each found in the learner edition as it would be written:

* **code**: a visible code cell holds the answer's code, the same computation whatever its
  variable names (every fragment of the answer of at least `MIN_FRAGMENT` syntax-tree nodes,
  compared with its names renamed in order of appearance, and with the steps that a cell or
  the answer names inlined; a short answer counts in full). A fragment that the task or its
  first hint gives (all but `MIN_NEW` of its nodes), or that is an idiom (in `IDIOM_CELLS` or
  more code cells of the course, answers aside), is not a leak.
* **drop-in**: a function defined in a visible cell, with the answer function's parameters
  (as many, as many required), that the
  exercise's own checker accepts on the exercise's demo context (`Exercise.demo`).
* **output**: a stored output, or prose, prints a number that the checker accepted in the
  complete edition (its verdict names it: "correct (your answer: 0.583)"), to the number's
  printed precision (at least 3 significant digits). The generator clears such outputs.
* **text**: the answer in words (`Exercise.giveaways`, regular expressions) in a cell before
  the answer cell, in the notebook's key points or self-check, or in an earlier notebook. The
  cells between the exercise and the key points discuss the result: they may name it.

A cell's instructor notes and the self-check's answers never reach the learner edition
(tools/learner_editions.py leaves them out), so they are not searched.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

MIN_FRAGMENT = 9        # syntax-tree nodes: `maps.mean(axis=(2, 3)) + b` has 9
MIN_NEW = 5             # ... of which at least this many not given by the task or first hint
IDIOM_CELLS = 3         # a fragment in this many code cells of the course is an idiom
KEY_POINTS = re.compile(r"^#+\s*(Key points|Self-check)", re.M | re.I)
NUMBER = re.compile(r"(?<![\w.])[-+]?(\d+\.\d+|\.\d+)(%?)")
ACCEPTED = re.compile(r"correct \(your answer: ([-+0-9.eE]+)\)")
_SKIP = (ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)


@dataclass(frozen=True)
class Leak:
    kind: str        # "code", "drop-in", "output" or "text"
    notebook: str
    cell: str        # the cell's id
    exercise: str
    detail: str

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.cell}: {self.kind} leak of {self.exercise}: {self.detail}"


def source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _parse(text: str):
    lines = [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
             else line for line in text.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


# --------------------------------------------------------------------------- code fragments


def fingerprint(node) -> str:
    """The fragment's structure, its names renamed in order of appearance (v0, v1, ...)."""
    names: dict[str, str] = {}

    def walk(n) -> str:
        if isinstance(n, ast.Name):
            return names.setdefault(n.id, f"v{len(names)}")
        if isinstance(n, ast.arg):
            return names.setdefault(n.arg, f"v{len(names)}")
        if isinstance(n, ast.Constant):
            return repr(n.value)
        if isinstance(n, list):
            return "[" + ",".join(walk(x) for x in n) + "]"
        if isinstance(n, ast.AST):
            fields = [walk(v) if isinstance(v, (ast.AST, list)) else repr(v)
                      for f, v in ast.iter_fields(n) if f not in ("ctx", "type_comment")]
            return f"{type(n).__name__}({' '.join(fields)})"
        return repr(n)

    return walk(node)


def size(node) -> int:
    return sum(1 for n in ast.walk(node) if not isinstance(n, _SKIP))


def _sizes(root) -> dict[int, int]:
    """Every node's `size`, computed once for the whole tree (by ``id``)."""
    sizes: dict[int, int] = {}

    def visit(node) -> int:
        total = (0 if isinstance(node, _SKIP) else 1) + sum(visit(c) for c in ast.iter_child_nodes(node))
        sizes[id(node)] = total
        return total

    visit(root)
    return sizes


class _Inline(ast.NodeTransformer):
    def __init__(self, values: dict):
        self.values = values

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return self.values[node.id]
        return node


def inlined(tree) -> list[ast.AST]:
    """Each statement with the names assigned once before it (``x = ...``, in the same body)
    replaced by their values: ``a = f(x); b = g(a)`` also reads as ``g(f(x))``, so that a
    computation is found whether its steps are named or not."""
    import copy

    out = []
    bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for body in bodies:
        assigned: dict[str, int] = {}
        for statement in body:
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    assigned[node.id] = assigned.get(node.id, 0) + 1
        values: dict[str, ast.AST] = {}
        for statement in body:
            out.append(_Inline(values).visit(copy.deepcopy(statement)))
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name) \
                    and assigned[statement.targets[0].id] == 1:
                values[statement.targets[0].id] = _Inline(values).visit(copy.deepcopy(statement.value))
    return out


def fragments(tree, minimum: int = MIN_FRAGMENT) -> dict[str, ast.AST]:
    """Every expression of ``tree`` with ``minimum`` nodes or more, as written and with its
    named steps inlined (`inlined`): fingerprint -> the node."""
    out = {}
    if tree is None:
        return out
    for root in [tree] + inlined(tree):
        sizes = _sizes(root)
        for node in ast.walk(root):
            if isinstance(node, ast.expr) and sizes[id(node)] >= minimum:
                out.setdefault(fingerprint(node), node)
    return out


_CODE_NODES = (ast.Call, ast.BinOp, ast.Compare, ast.Subscript, ast.Attribute)


def code_spans(text: str) -> list[str]:
    """The pieces of code in prose: the longest runs of words that parse as Python and hold a
    call, an operation, a comparison, an index or an attribute."""
    spans = re.findall(r"`([^`]+)`", text)
    for line in text.split("\n"):
        words = line.split()
        i = 0
        while i < len(words):
            for j in range(len(words), i, -1):
                piece = " ".join(words[i:j]).strip(".,;:")
                tree = _parse(piece)
                if tree is not None and any(isinstance(n, _CODE_NODES) for n in ast.walk(tree)):
                    spans.append(piece)
                    i = j - 1
                    break
            i += 1
    return spans


def given_fragments(exercise) -> set[str]:
    """Fingerprints of the code that the task and the first hint give (every sub-expression)."""
    text = exercise.task + "\n" + (exercise.hints[0] if exercise.hints else "")
    given = set()
    for snippet in code_spans(text):
        given |= set(fragments(_parse(snippet), 1))
    return given


def new_nodes(node, given: set[str]) -> int:
    """How many of the fragment's nodes the task and first hint do not already give (as
    sub-expressions of 3 nodes or more: a name alone gives nothing away)."""
    if size(node) >= 3 and fingerprint(node) in given:
        return 0
    own = 0 if isinstance(node, _SKIP) else 1
    return own + sum(new_nodes(child, given) for child in ast.iter_child_nodes(node))


def idioms(code_cells: list[str], answers: set[str]) -> set[str]:
    """Fingerprints found in `IDIOM_CELLS` or more of the given cells' sources."""
    counts: dict[str, int] = {}
    for text in code_cells:
        for key in set(cell_fragments(text, MIN_NEW)) - answers:
            counts[key] = counts.get(key, 0) + 1
    return {key for key, count in counts.items() if count >= IDIOM_CELLS}


# --------------------------------------------------------------------------- the four kinds


@functools.lru_cache(maxsize=4096)
def cell_fragments(text: str, minimum: int) -> dict[str, ast.AST]:
    """`fragments` of a cell's source (cached: every exercise searches every cell)."""
    return fragments(_parse(text), minimum)


def code_leaks(name, cells, answer_cell: int, region, exercise, common: set[str]) -> list[Leak]:
    tree = _parse("\n".join(region.answer))
    # a short answer (one small expression) is a fragment in full, but for a conversion around it
    largest = max((size(n) for n in ast.walk(tree) if isinstance(n, ast.expr)), default=0)
    minimum = min(MIN_FRAGMENT, max(MIN_NEW, largest - 2))
    given = given_fragments(exercise)
    wanted = {k: node for k, node in fragments(tree, minimum).items()
              if k not in common and new_nodes(node, given) >= MIN_NEW}
    leaks = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code" or index == answer_cell:
            continue
        shown = cell_fragments(source(cell), minimum)
        found = [k for k in wanted if k in shown]
        if found:
            largest = max(found, key=lambda k: size(wanted[k]))
            leaks.append(Leak("code", name, cell.get("id", str(index)), region.key,
                              f"`{ast.unparse(shown[largest])[:70]}` is the answer's "
                              f"`{ast.unparse(wanted[largest])[:70]}`"))
    return leaks


def drop_in_leaks(name, cells, answer_cell: int, region, exercise) -> list[Leak]:
    """Functions of the answer's arity, defined in visible cells, that the checker accepts."""
    answer = _parse("\n".join(region.answer))
    defined = [s for s in (answer.body if answer else []) if isinstance(s, ast.FunctionDef)]
    if not defined:
        return []
    arity = _required(defined[0])
    leaks = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code" or index == answer_cell:
            continue
        tree = _parse(source(cell))
        for node in (tree.body if tree else []):
            if isinstance(node, ast.FunctionDef) and _required(node) == arity \
                    and _accepted_by(exercise, node):
                leaks.append(Leak("drop-in", name, cell.get("id", str(index)), region.key,
                                  f"defines `{node.name}`, which the checker accepts as the answer"))
    return leaks


def _required(function: ast.FunctionDef) -> tuple[int, int]:
    """(required positional parameters, all positional parameters)."""
    count = len(function.args.args)
    return count - len(function.args.defaults), count


def _accepted_by(exercise, node) -> bool:
    import contextlib
    import io

    import numpy as np

    import camutils

    namespace = {"np": np, "camutils": camutils}
    try:
        exec(compile(ast.Module([node], []), "<cell>", "exec"), namespace)  # noqa: S102
        _, _, context = exercise.demo()
        with contextlib.redirect_stdout(io.StringIO()):
            return bool(exercise.check(namespace[node.name], **context))
    except Exception:  # noqa: BLE001 - a function that needs the notebook's state is no drop-in
        return False


def accepted_numbers(outputs_text: str) -> list[str]:
    """The numbers a checker accepted, as printed in an answer cell's verdict."""
    return ACCEPTED.findall(outputs_text)


def printed(text: str, value: float) -> str | None:
    """A number in ``text`` that prints ``value`` to its precision (3 significant digits or
    more; a percentage counts as its fraction)."""
    for match in NUMBER.finditer(text):
        digits, percent = match.group(0), match.group(2)
        shown = float(digits.rstrip("%"))
        significant = len(match.group(1).replace(".", "").lstrip("0"))
        if significant < 3:
            continue
        decimals = len(match.group(1).partition(".")[2])
        target = value * 100 if percent else value
        if abs(shown - target) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9) + 1e-12:
            return digits
    return None


def output_text(cell) -> str:
    if cell.cell_type != "code":
        return ""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            plain = out["data"].get("text/plain", "")
            parts.append(plain if isinstance(plain, str) else "".join(plain))
    return "".join(parts)


def output_leaks(name, cells, answer_cells: set[int], key: str, values: list[float]) -> list[Leak]:
    leaks = []
    for index, cell in enumerate(cells):
        if index in answer_cells:
            continue
        text = output_text(cell) + ("\n" + source(cell) if cell.cell_type == "markdown" else "")
        for value in values:
            shown = printed(text, value)
            if shown:
                leaks.append(Leak("output", name, cell.get("id", str(index)), key,
                                  f"prints {shown}, the value the checker accepted"))
                break
    return leaks


def visible_text(cell) -> str:
    """What a reader sees of a cell: its source and its outputs."""
    return source(cell) + "\n" + output_text(cell)


def text_leaks(name, cells, answer_cell: int | None, key: str, giveaways) -> list[Leak]:
    """The answer in words before the exercise, or in the key points and self-check; with
    ``answer_cell`` None (another, earlier notebook), anywhere."""
    if not giveaways:
        return []
    patterns = [re.compile(g, re.I | re.S) for g in giveaways]
    if answer_cell is None:
        answer_cell = closing = len(cells)
    else:
        closing = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                        and KEY_POINTS.search(source(c)) and i > answer_cell), len(cells))
    leaks = []
    for index, cell in enumerate(cells):
        if index == answer_cell or answer_cell < index < closing:
            continue
        text = visible_text(cell)
        if index == closing:
            text = text[KEY_POINTS.search(text).start():]
        for pattern in patterns:
            match = pattern.search(text)
            if match:
                leaks.append(Leak("text", name, cell.get("id", str(index)), key,
                                  f"says {match.group(0)[:80]!r}"))
                break
    return leaks
