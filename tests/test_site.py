"""The course's website, built, in a real browser (`make site-test`).

`python course.py site-test` builds the site with `python course.py site` (the command the
Pages workflow runs) and points these tests at it through $COURSE_SITE_DIR; without it they
build one into a scratch folder. The site is served on a free local port and opened in
headless Debian Chromium (the browser test's set-up, tests/browser_support.py): every notebook
page loads without a console error and with every figure drawn, no request leaves the machine,
and the site's search finds "Grad-CAM" on the notebook pages. LinkChecker is shown to name the
page and the target of a broken link. Screenshots are kept under artifacts/browser/.

Needs the `site` extra (course.py site-test installs it) and, for the browser, chromium and
chromedriver (`apt-get install chromium chromium-driver`); without them the browser test is
skipped with that command.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import os
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("sphinx", reason="the site's tools are not installed: make site-test")
pytest.importorskip("linkcheck", reason="the site's tools are not installed: make site-test")

from browser_support import ARTIFACTS, ROOT, chromium, missing_browser  # noqa: E402

sys.path.insert(0, str(ROOT / "tools" / "website"))
import build_site  # noqa: E402
from site_contents import course_notebooks, reference_pages  # noqa: E402

pytestmark = pytest.mark.site

SCREENSHOT_PAGE = "notebooks/03_grad_cam.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    built = os.environ.get("COURSE_SITE_DIR")
    if built:
        return Path(built)
    out = tmp_path_factory.mktemp("website") / "site"
    figures = build_site.build(out)
    print(f"site built in {figures['build_s']} s: {figures['bytes'] / 2**20:.1f} MiB")
    return out


def _outputs(notebook: Path) -> list[dict]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _figures(notebook: Path) -> int:
    return sum(bool({"image/png", "image/jpeg"} & set(o.get("data", {})))
               for o in _outputs(notebook))


def test_every_notebook_and_doc_is_a_page_in_course_order(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    positions = [home.find(f'href="notebooks/{p.stem}.html"') for p in course_notebooks()]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    for page in reference_pages():
        assert (site / f"{page}.html").is_file(), page
    assert "Citing the methods" in home  # the README, with the papers' citations, is home


def test_learner_editions_are_linked_downloads_not_pages(site):
    assert not (site / "notebooks" / "learner").exists()
    downloads = {p.name: p for p in (site / "_downloads").rglob("*.ipynb")}
    for notebook in course_notebooks():
        learner = notebook.parent / "learner" / notebook.name
        assert downloads[notebook.name].read_bytes() == learner.read_bytes()
        page = (site / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
        assert f"notebooks/learner/{notebook.name}" in page  # Colab, Binder and GitHub links


def test_pages_show_the_committed_outputs(site):
    """Every figure of a notebook is on its page, and its printed text as committed (the site
    never re-executes a notebook)."""
    for notebook in course_notebooks():
        page = (site / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
        assert page.count('<img alt="../_images/') >= _figures(notebook), notebook.name
        printed = [o["text"] if isinstance(o["text"], str) else "".join(o["text"])
                   for o in _outputs(notebook) if o["output_type"] == "stream"]
        lines = [line for text in printed for line in text.splitlines() if line.strip()]
        assert lines, notebook.name
        assert html.escape(lines[0].strip(), quote=False) in page, (notebook.name, lines[0])


def test_the_link_checker_names_the_page_and_target_of_a_broken_link(site, tmp_path):
    copy = tmp_path / "site"  # (the site itself passed this check when it was built)
    shutil.copytree(site, copy)
    page = copy / "notebooks" / "03_grad_cam.html"
    text = page.read_text(encoding="utf-8")
    assert 'href="01_cam_from_scratch.html"' in text
    page.write_text(text.replace('href="01_cam_from_scratch.html"',
                                 'href="01_cam_from_scrach.html"'), encoding="utf-8")
    broken = build_site.broken_links(copy)
    assert {(b.page, b.target) for b in broken} == {
        ("notebooks/03_grad_cam.html", "01_cam_from_scrach.html")}, broken


# --------------------------------------------------------------------------- in the browser


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def _served(folder: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Resolves when MathJax has typeset the page (if it has maths) and its fonts have loaded.
SETTLED_JS = """
const done = arguments[arguments.length - 1];
const typeset = (window.MathJax && MathJax.startup) ? MathJax.startup.promise : Promise.resolve();
typeset.then(() => document.fonts.ready).then(() => done(true), (e) => done(String(e)));
"""
# Every <img> on the page: [src, loaded with a size].
IMAGES_JS = """
return Array.from(document.images).map(i => [i.getAttribute('src'),
                                             i.complete && i.naturalWidth > 0]);
"""


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_pages_load_offline_with_their_figures_and_search_finds_grad_cam(site, tmp_path):
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    pages = ["index.html", *(f"notebooks/{p.stem}.html" for p in course_notebooks()),
             *(f"{p}.html" for p in reference_pages())]
    with _served(site) as base, chromium(tmp_path / "chromium-profile", logs=True) as driver:
        driver.set_script_timeout(60)
        problems, requests = [], []
        for page in pages:
            driver.get(f"{base}/{page}")
            settled = driver.execute_async_script(SETTLED_JS)
            if settled is not True:
                problems.append(f"{page}: MathJax failed ({settled})")
            images = driver.execute_script(IMAGES_JS)
            problems += [f"{page}: image {src} not drawn" for src, drawn in images if not drawn]
            problems += [f"{page}: console error {e}" for e in _console_errors(driver)]
            requests += [(page, url) for url in _requests(driver)]
            if page.startswith("notebooks/"):
                notebook = ROOT / "notebooks" / page.replace(".html", ".ipynb").split("/")[1]
                drawn = sum(1 for src, ok in images if ok and "_images/" in (src or ""))
                if drawn < _figures(notebook):
                    problems.append(f"{page}: {drawn} figures drawn, the notebook has "
                                    f"{_figures(notebook)}")
            if page == SCREENSHOT_PAGE:  # its first figure, with the text around it
                driver.execute_script("document.querySelector('.cell_output img')"
                                      ".scrollIntoView({block: 'center'});")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(ARTIFACTS / "site-03_grad_cam.png"))
        assert not problems, "\n".join(problems)
        # (data:, blob: and the browser's own chrome:// pages never leave the machine)
        elsewhere = [(page, url) for page, url in requests
                     if urlsplit(url).scheme in ("http", "https", "ws", "wss", "ftp")
                     and urlsplit(url).hostname != "127.0.0.1"]
        assert not elsewhere, f"requests that left the machine: {elsewhere[:10]}"
        assert len({url for _, url in requests}) > len(pages)  # the log did record requests

        driver.get(f"{base}/search.html?q=Grad-CAM")
        WebDriverWait(driver, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li a"),
            "the site's search found nothing for Grad-CAM")
        WebDriverWait(driver, 30).until(
            lambda d: "Search finished" in d.find_element(By.ID, "search-results").text
            or d.find_elements(By.CSS_SELECTOR, "#search-results p.search-summary"))
        found = {urlsplit(a.get_attribute("href")).path.split("/")[-1]
                 for a in driver.find_elements(By.CSS_SELECTOR, "#search-results li a")}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "site-search.png"))
        assert not _console_errors(driver)
    notebooks_found = {name for name in found if name[:2].isdigit()}
    assert {"03_grad_cam.html", "04_beyond_grad_cam.html"} <= notebooks_found, found
