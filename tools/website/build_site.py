"""Build the course's website into build/site/, offline, and check it (`make site`).

    python tools/website/build_site.py [--out build/site]

1. Every notebook in notebooks/ must be committed executed: one without outputs, with a cell
   that never ran, or with an error output stops the build, named (the site is never
   published with a broken notebook). Nothing is re-executed: the site shows the outputs the
   tests check.
2. Sphinx, with MyST-NB and the book theme (tools/website/conf.py), renders the README (the home
   page), the notebooks in file name order and docs/. Any warning is an error: a link to a
   missing page names the page and the target.
3. No page loads anything from another site: a script, stylesheet, image or frame from
   another address is named, page by page.
4. LinkChecker follows every internal link, image, script and stylesheet of the built site,
   and every link into a page's section is checked against the ids of that page; a broken
   one is named with the page it is on.

Why Sphinx + MyST-NB: Jupyter Book 2 (mystmd) asks a web API for its site template when it
builds, and fails offline; Sphinx, MyST-NB, sphinx-book-theme and the MathJax files install
from PyPI alone and build without the network (CONTRIBUTING.md says more).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import posixpath
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from site_contents import course_notebooks  # noqa: E402

DEFAULT_OUT = ROOT / "build" / "site"


class SiteError(Exception):
    """The site cannot be published: the message says what is wrong, where, and what to do."""


# --------------------------------------------------------------------------- notebooks


def notebook_problems(path: Path) -> list[str]:
    """Why a committed notebook cannot go on the site (nothing when it can)."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    code = [(number, cell) for number, cell in enumerate(cells, 1)
            if cell.get("cell_type") == "code" and "".join(cell.get("source", "")).strip()]
    if code and not any(cell.get("outputs") for _, cell in code):
        return ["it has no outputs (committed without being run)"]
    problems = []
    for number, cell in code:
        if cell.get("execution_count") is None:
            problems.append(f"cell {number} has not been run")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"cell {number} has an error output "
                                f"({output.get('ename')}: {output.get('evalue', '')[:200]})")
    return problems


def check_notebooks(paths: list[Path]) -> None:
    """Raise SiteError naming every notebook that is not committed cleanly executed."""
    if not paths:
        raise SiteError("notebooks/ has no notebook named NN_*.ipynb: nothing to publish")
    found = [f"{path.parent.name}/{path.name}: {problem}"
             for path in paths for problem in notebook_problems(path)]
    if found:
        raise SiteError("The site is built from the committed, executed notebooks, and these "
                        "are not:\n  " + "\n  ".join(found) + "\nRe-execute them with `make "
                        "notebooks NOTEBOOKS=<name>` (python course.py notebooks <name>), fix "
                        "any error, and commit them with their outputs.")


# --------------------------------------------------------------------------- the built site


class _Page(HTMLParser):
    """What a page makes the browser fetch as it loads (scripts, stylesheets, images, frames),
    the links it shows, and the ids a link may point into."""

    FETCHED = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",),
               "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
               "embed": ("src",), "object": ("data",), "input": ("src",), "track": ("src",)}

    def __init__(self):
        super().__init__()
        self.fetched: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(value for name in ("id", "name") if (value := attrs.get(name)))
        names = self.FETCHED.get(tag, ())
        if tag == "link" and (attrs.get("rel") or "").lower() not in ("canonical", "alternate"):
            names = ("href",)
        for name in names:
            for value in (attrs.get(name) or "").split(","):
                if value.strip():
                    self.fetched.append(value.strip().split()[0])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def read_pages(site: Path) -> dict[str, _Page]:
    """Every HTML page of the site, parsed, by its path relative to the site."""
    pages = {}
    for path in sorted(site.rglob("*.html")):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path.relative_to(site).as_posix()] = page
    return pages


def _is_remote(address: str) -> bool:
    return bool(urlsplit(address).scheme) or address.startswith("//")


def remote_resources(pages: dict[str, _Page]) -> list[tuple[str, str]]:
    """(page, address) of everything a page would fetch from another site."""
    return [(name, address) for name, page in pages.items() for address in page.fetched
            if urlsplit(address).scheme in ("http", "https") or address.startswith("//")]


def broken_anchors(pages: dict[str, _Page]) -> list["BrokenLink"]:
    """Links into a section (page.html#id, or #id on the same page) whose id is not there.
    LinkChecker checks that the pages exist; its own anchor check re-reads a page for every
    link into it (minutes for this site), so sections are checked here, from one reading."""
    found = []
    for name, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if _is_remote(link) or not parts.fragment:
                continue
            target = (posixpath.normpath(posixpath.join(posixpath.dirname(name),
                                                        unquote(parts.path)))
                      if parts.path else name)
            if target in pages and unquote(parts.fragment) not in pages[target].ids:
                found.append(BrokenLink(name, link, f"no section #{parts.fragment} in {target}"))
    return list(dict.fromkeys(found))


# LinkChecker switches to the user nobody when it runs as root (as CI does), and nobody may not
# read a private build folder: the checker runs as the user who built the site.
_LINKCHECKER = ("import sys, linkcheck.command.linkchecker as cli\n"
                "cli.drop_privileges = lambda: None\n"
                "sys.argv[0] = 'linkchecker'\n"
                "cli.linkchecker()\n")
_LINKCHECKER_CONFIG = "[filtering]\ncheckextern=0\n"


@dataclass(frozen=True)
class BrokenLink:
    page: str     # the page that links, relative to the site
    target: str   # the link as written on the page
    reason: str

    def __str__(self) -> str:
        return f"{self.page}: {self.target} ({self.reason})"


def broken_links(site: Path, start: str = "index.html") -> list[BrokenLink]:
    """Every internal link, image, script or stylesheet of the site that does not resolve,
    found by LinkChecker from ``start``. Other sites' addresses are not visited (the check is
    offline)."""
    config = site.parent / f".{site.name}-linkcheckerrc"
    config.write_text(_LINKCHECKER_CONFIG, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LINKCHECKER, "--config", str(config), "--no-status",
             "--output", "csv", "--threads", "4", (site / start).as_uri()],
            capture_output=True, text=True, encoding="utf-8", timeout=600)
    finally:
        config.unlink(missing_ok=True)
    if done.returncode not in (0, 1):
        raise SiteError(f"LinkChecker failed (exit status {done.returncode}):\n"
                        + done.stderr[-3000:])
    rows = csv.DictReader(io.StringIO("\n".join(
        line for line in done.stdout.splitlines() if not line.startswith("#"))), delimiter=";")
    base = site.resolve().as_uri() + "/"
    found = []
    for row in rows:
        if row.get("valid") == "False" or row.get("warningstring"):
            parent = unquote(row.get("parentname") or "")
            page = parent.removeprefix(base) if parent.startswith(base) else parent
            reason = (row.get("result") if row.get("valid") == "False"
                      else row.get("warningstring")) or "broken"
            found.append(BrokenLink(page.split("#")[0] or start, row.get("urlname") or "",
                                    reason.split(" Available anchors")[0][:300]))
    return found


def site_size(site: Path) -> tuple[int, int]:
    """(bytes, files) of the built site."""
    files = [p for p in site.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


# --------------------------------------------------------------------------- the build


def sphinx_build(out: Path, doctrees: Path) -> None:
    from sphinx.cmd.build import build_main

    arguments = ["-b", "html", "-W", "--keep-going", "-q", "-c", str(HERE), "-d",
                 str(doctrees), str(ROOT), str(out)]
    if build_main(arguments) != 0:
        raise SiteError("Sphinx stopped on the warnings above (each names its page and line); "
                        "the site is built with warnings as errors so that no broken page or "
                        "link is published.")


def build(out: Path = DEFAULT_OUT, check_links: bool = True) -> dict:
    """Check the notebooks, build the site into ``out`` and check it; returns the figures."""
    start = time.perf_counter()
    notebooks = course_notebooks(ROOT)
    check_notebooks(notebooks)
    doctrees = out.parent / f".{out.name}-doctrees"
    for folder in (out, doctrees):  # a clean build: no page of a renamed notebook stays
        if folder.exists():
            if any(folder.iterdir()) and not (folder / ".buildinfo").exists() \
                    and folder is out:
                raise SiteError(f"{out} exists and is not a site built here: choose another "
                                "--out (the build empties it first)")
            shutil.rmtree(folder)
    sphinx_build(out, doctrees)
    pages = read_pages(out)
    remote = remote_resources(pages)
    if remote:
        raise SiteError("These pages would load files from other sites (the site must work "
                        "offline and fetch nothing):\n  "
                        + "\n  ".join(f"{page}: {address}" for page, address in remote))
    built = time.perf_counter() - start
    broken = (broken_links(out) + broken_anchors(pages)) if check_links else []
    if broken:
        raise SiteError("Broken links in the built site (page: target (why)):\n  "
                        + "\n  ".join(map(str, broken)))
    size, files = site_size(out)
    return {"notebooks": len(notebooks), "pages": len(pages),
            "build_s": round(built, 1), "total_s": round(time.perf_counter() - start, 1),
            "bytes": size, "files": files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the site")
    parser.add_argument("--no-link-check", action="store_true",
                        help="skip LinkChecker (the notebook and remote-resource checks stay)")
    args = parser.parse_args(argv)
    try:
        figures = build(args.out.resolve(), check_links=not args.no_link_check)
    except SiteError as error:
        print(f"\nThe site was not built: {error}", file=sys.stderr)
        return 1
    print(f"Site built in {figures['build_s']} s, checked in {figures['total_s']} s: "
          f"{figures['notebooks']} notebooks, {figures['pages']} pages, "
          f"{figures['bytes'] / 2**20:.1f} MiB in {figures['files']} files -> "
          f"{args.out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
