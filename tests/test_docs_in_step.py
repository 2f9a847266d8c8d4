"""The docs say what the code does: every command they show names a real command and real
options, every signature they write out is the function's, and the dependency table of
docs/platforms.md lists every requirement of pyproject.toml with its declared range."""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import io
import re
import shlex
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course  # noqa: E402

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
COURSE = re.compile(r"^(?:py(?: -3\.\d+)?|python3?|\.venv/bin/python) course\.py(?: (.*))?$")
MAKE = re.compile(r"^make ([a-z].*)$")
CLI = re.compile(r"^(?:python3?|\.venv/bin/python) -m camutils (.+)$")
PYTEST = re.compile(r"-m pytest (.*)$")
COMMENT = re.compile(r"(^|\s)#.*$")


def code_lines(text: str) -> list[str]:
    """Every line of a fenced block (a line that leaves a bracket open joined with the next)
    and every inline code span, whitespace collapsed (Markdown shows a span broken over lines
    as one), trailing comments removed."""
    lines: list[str] = []

    def fence(match):
        pending = ""
        for line in match.group(1).splitlines():
            pending = f"{pending} {COMMENT.sub('', line)}".strip()
            if pending.count("(") + pending.count("[") <= pending.count(")") + pending.count("]"):
                lines.append(pending)
                pending = ""
        lines.append(pending)
        return ""

    prose = re.sub(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", fence, text, flags=re.S | re.M)
    # indented code blocks: 4 spaces in, after a blank line or another such line
    prose = re.sub(r"(?:(?<=\n\n)|(?<=\A))((?: {4,}\S[^\n]*\n)+)", fence, prose)
    lines += [COMMENT.sub("", span) for span in re.findall(r"`([^`]+)`", prose)]
    return [" ".join(line.split()) for line in lines if line.strip()]


def doc_commands(pattern: re.Pattern) -> list[tuple[str, str]]:
    return [(doc.name, line) for doc in DOCS for line in code_lines(doc.read_text(encoding="utf-8"))
            if pattern.search(line)]


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"--[a-z][\w-]*", help_text))


def _help_of(main) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    return out.getvalue()


def _tool_options() -> dict[str, set[str]]:
    """The options of the project's own tools that course.py commands forward to."""
    from tools import learner_editions, wheelhouse

    return {"wheelhouse": _options(_help_of(wheelhouse.main)),
            "student": _options(_help_of(learner_editions.main))}


def _option_words(words: list[str]) -> list[str]:
    return [w.split("=")[0] for w in words if w.startswith("--")]


def test_code_lines_read_fences_and_spans_broken_over_lines():
    text = ("Run `make wheelhouse WHEELHOUSE_ARGS=\"--python\n   3.11\"` then:\n\n"
            "  ```\n  python course.py lab   # open it\n  ```\n")
    assert code_lines(text) == ['python course.py lab', 'make wheelhouse WHEELHOUSE_ARGS="--python 3.11"']
    text = "```python\nf(a,  # the first\n  b=1)  # a call\nx = 1\n```\n"
    assert code_lines(text) == ["f(a, b=1)", "x = 1"]
    text = "Checks:\n\n    make test  # all\n    make lab\n\n1. a list\n    not code\n"
    assert code_lines(text) == ["make test", "make lab"]


def test_course_py_commands_in_the_docs_exist_with_their_options():
    own = _options(_help_of(course.main))
    tools = _tool_options()
    found = doc_commands(COURSE)
    assert len(found) > 10, found
    for doc, line in found:
        words = shlex.split(COURSE.match(line).group(1) or "")
        if not words or words[0] in ("...", "--help"):
            continue
        command, rest = words[0], words[1:]
        assert command in course.COMMANDS, f"{doc}: `{line}`: no course.py command {command!r}"
        allowed = own | tools.get(command, set())
        if command in tools:  # forwarded to our own tool: every option must be its or ours
            unknown = [o for o in _option_words(rest) if o not in allowed]
            assert not unknown, f"{doc}: `{line}`: {unknown} are not options of {command}"


def test_make_targets_and_variables_in_the_docs_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    variables = set(re.findall(r"^([A-Z_]+) \?=", makefile, re.M))
    tools = _tool_options()
    found = doc_commands(MAKE)
    assert len(found) > 10, found
    for doc, line in found:
        target, *assignments = shlex.split(MAKE.match(line).group(1))
        assert target in targets, f"{doc}: `{line}`: no make target {target!r}"
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            assert name in variables, f"{doc}: `{line}`: the Makefile has no variable {name}"
            if name == "WHEELHOUSE_ARGS":
                unknown = [o for o in _option_words(shlex.split(value)) if o not in tools["wheelhouse"]]
                assert not unknown, f"{doc}: `{line}`: {unknown} are not options of make wheelhouse"
            if name == "ONEDNN":
                assert value in ("on", "off"), line


def test_camutils_command_lines_in_the_docs_exist_with_their_options():
    from camutils.__main__ import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    found = doc_commands(CLI)
    assert len(found) >= 5, found
    for doc, line in found:
        command, *rest = shlex.split(CLI.match(line).group(1))
        assert command in commands, f"{doc}: `{line}`: no camutils command {command!r}"
        known = set(commands[command]._option_string_actions) | {"--help", "--version"}
        unknown = [o for o in _option_words(rest) if o not in known]
        assert not unknown, f"{doc}: `{line}`: {unknown} are not options of camutils {command}"


def test_pytest_commands_in_the_docs_keep_the_retraining_out():
    """A `-m` on pytest's command line replaces pyproject's `-m 'not retrain'`: a command that
    gives one must leave the retraining out itself (or be the command that runs it)."""
    found = doc_commands(PYTEST)
    assert found
    for doc, line in found:
        words = shlex.split(PYTEST.search(line).group(1))
        markers = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-m"]
        keywords = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-k"]
        if markers and not any("retrain" in m for m in markers):
            assert any("not retrain" in k for k in keywords), (
                f"{doc}: `{line}` runs the minutes-long retraining: add `not retrain` to -m")


def documented_signatures() -> list[tuple[str, str, str]]:
    """``(doc, dotted name, parameter list)`` of each inline span that writes out a camutils
    function's whole signature (a span with a literal argument or ``...`` is a call)."""
    found = []
    for doc in DOCS:
        for line in code_lines(doc.read_text(encoding="utf-8")):
            match = re.fullmatch(r"camutils\.([\w.]+)\((.*)\)", line)
            if not match or "..." in match.group(2):
                continue
            try:
                ast.parse(f"def _({match.group(2)}): pass")
            except SyntaxError:
                continue
            found.append((doc.name, match.group(1), match.group(2)))
    return found


def _parameters_written(parameters: str) -> list[tuple[str, str, object]]:
    args = ast.parse(f"def _({parameters}): pass").body[0].args
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults))
    defaults += [ast.literal_eval(d) for d in args.defaults]
    written = [(a.arg, "positional", d) for a, d in zip(positional, defaults)]
    written += [("*" + args.vararg.arg, "", inspect.Parameter.empty)] if args.vararg else []
    written += [(a.arg, "keyword", inspect.Parameter.empty if d is None else ast.literal_eval(d))
                for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    written += [("**" + args.kwarg.arg, "", inspect.Parameter.empty)] if args.kwarg else []
    return written


def _parameters_of(function) -> list[tuple[str, str, object]]:
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [(stars[p.kind] + p.name, "", p.default) if p.kind in stars else
            (p.name, "keyword" if p.kind is p.KEYWORD_ONLY else "positional", p.default)
            for p in inspect.signature(function).parameters.values()]


def test_documented_signatures_are_the_functions():
    import camutils

    found = documented_signatures()
    assert any(name == "audit" for _, name, _ in found), found
    for doc, name, parameters in found:
        function = camutils
        for part in name.split("."):
            function = getattr(function, part)
        assert _parameters_written(parameters) == _parameters_of(function), (
            f"{doc}: camutils.{name}({parameters}) is not its signature: {inspect.signature(function)}")


def _declared_in_pyproject() -> dict[tuple[str, str], SpecifierSet]:
    """``{(name, extra or ''): specifiers}`` of every requirement, the build's included."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = config["project"]
    lines = [(line, "") for line in project["dependencies"]]
    lines += [(line, extra) for extra, group in project["optional-dependencies"].items()
              for line in group]
    lines += [(line, "build") for line in config["build-system"]["requires"]]
    declared = {("python", ""): SpecifierSet(project["requires-python"])}
    for line, extra in lines:
        req = Requirement(line)
        if canonicalize_name(req.name) == "camutils":
            continue  # an extra made of the others
        declared[(canonicalize_name(req.name), extra)] = req.specifier
    return declared


def _declared_in_the_table() -> dict[tuple[str, str], SpecifierSet]:
    text = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
    section = text.split("## Supported ranges", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[1].startswith("`") or cells[0] == "dependency":
            continue
        name = re.match(r"[\w.-]+", cells[0]).group(0)
        note = re.search(r"\((.*)\)", cells[0])
        extra = re.match(r"`(\w+)`", note.group(1)) if note else None
        extra = extra.group(1) if extra else ("build" if note and note.group(1) == "build" else "")
        rows[(canonicalize_name(name), extra)] = SpecifierSet(cells[1].strip("`"))
    return rows


def test_the_dependency_table_lists_every_requirement_with_its_range():
    declared, table = _declared_in_pyproject(), _declared_in_the_table()
    missing = sorted(set(declared) - set(table))
    assert not missing, f"docs/platforms.md's table leaves out {missing}"
    extra = sorted(set(table) - set(declared))
    assert not extra, f"docs/platforms.md's table lists {extra}, which pyproject does not declare"
    differ = {key: (str(table[key]), str(declared[key])) for key in declared
              if table[key] != declared[key]}
    assert not differ, f"the table's ranges differ from pyproject's (table, pyproject): {differ}"
