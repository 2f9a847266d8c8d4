"""Notebook 07 in a real browser: JupyterLab, headless Chromium, the explorer's overlay.

The test copies the notebook into a scratch folder (so that nothing the browser saves
touches the repository), serves it with JupyterLab on a free local port, opens it in
headless Debian Chromium, runs every cell from the Run menu, then changes the explorer's
method in its drop-down and checks that the overlay's pixels change. Screenshots are kept
under artifacts/browser/ (git-ignored). Every wait is an explicit condition with a timeout.

Without chromium, chromedriver or selenium the test is skipped, with the command that
enables it: ``apt-get install chromium chromium-driver``.
"""

from __future__ import annotations

import shutil
import time

import pytest

from browser_support import (ARTIFACTS, IMAGE_DIGEST_JS, ROOT, chromium, jupyter_lab,
                             missing_browser)

pytestmark = pytest.mark.browser

NOTEBOOK = "07_explorer.ipynb"
RUN_ALL_TIMEOUT = 150  # seconds for the whole notebook, kernel start included
CHANGE_TIMEOUT = 60


@pytest.fixture(scope="module")
def browser_skip_reason():
    return missing_browser()


def _screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def _overlay_digest(driver):
    """``[width, height, hash, mean]`` of the explorer's overlay, or None until it shows."""
    from selenium.webdriver.common.by import By

    images = driver.find_elements(By.CSS_SELECTOR, "img.camutils-overlay")
    return driver.execute_script(IMAGE_DIGEST_JS, images[-1]) if images else None


def _status_text(driver) -> str:
    from selenium.webdriver.common.by import By

    lines = driver.find_elements(By.CSS_SELECTOR, ".camutils-status-line")
    return lines[-1].text if lines else ""


def _all_cells_ran(driver) -> bool:
    """Every code cell shows an execution count, and none is queued or running."""
    prompts = driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))"
        ".map(e => e.textContent.trim());")
    return bool(prompts) and all(p.startswith("[") and p[1:-2].isdigit() for p in prompts)


def _error_outputs(driver) -> list[str]:
    """The text of every traceback shown in the notebook (a line that starts with an
    exception's name; an error message quoted inside a printed line, as 07 prints the Keras
    recipe's errors, is not one)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
        ".map(e => e.textContent)"
        ".filter(t => /Traceback \\(most recent call last\\)|(^|\\n)\\w*(Error|Exception): /.test(t))"
        ".map(t => t.slice(-1500));")


def _finished_or_failed(driver):
    """True when the explorer shows and every cell ran; raises at the first traceback."""
    errors = _error_outputs(driver)
    assert not errors, "a cell failed in the browser:\n" + "\n---\n".join(errors)
    return _overlay_digest(driver) is not None and _all_cells_ran(driver)


def _kernel_ready(driver, base: str, token: str) -> bool:
    """The server has an idle kernel for the notebook, and the page says it is connected.

    A "Select Kernel" dialog (shown when the page asks before the session exists) is
    answered with the notebook's own kernel.
    """
    import json
    import urllib.request

    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
        button.click()
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
        sessions = json.load(response)
    idle = any(s.get("path", "").endswith(NOTEBOOK) and s.get("kernel", {}).get(
        "execution_state") == "idle" for s in sessions)
    status = driver.execute_script(
        "const s = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');"
        "return s && s.getAttribute('data-status');")
    return idle and status == "idle"


def _click_menu(driver, wait, menu: str, label: str) -> None:
    """Open ``menu`` in JupyterLab's menu bar and click its item ``label``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    entry = wait.until(EC.element_to_be_clickable((
        By.XPATH, f"//li[contains(@class, 'lm-MenuBar-item')][.//div[text()='{menu}']]")))
    entry.click()
    item = wait.until(EC.element_to_be_clickable((
        By.XPATH, f"//ul[contains(@class, 'lm-Menu-content')]/li[contains(@class, "
                  f"'lm-Menu-item')][.//div[contains(@class, 'lm-Menu-itemLabel')]"
                  f"[normalize-space()='{label}']]")))
    item.click()


def test_explorer_overlay_changes_with_the_method_in_chromium(browser_skip_reason, tmp_path):
    if browser_skip_reason:
        pytest.skip(browser_skip_reason)
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    started = time.monotonic()
    served = tmp_path / "notebooks"
    served.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, served / NOTEBOOK)

    with jupyter_lab(served, tmp_path) as (base, token), \
            chromium(tmp_path / "chromium-profile") as driver:
        wait = WebDriverWait(driver, 60)
        try:
            driver.get(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel")))
            WebDriverWait(driver, 90).until(
                lambda d: _kernel_ready(d, base, token),
                "JupyterLab did not start a kernel for the notebook")
            _click_menu(driver, wait, "Run", "Run All Cells")

            # the explorer appears, and the notebook runs to its end
            WebDriverWait(driver, RUN_ALL_TIMEOUT).until(
                _finished_or_failed,
                "the notebook did not finish running with the explorer on screen")
            WebDriverWait(driver, CHANGE_TIMEOUT).until(
                lambda d: "(logit" in _status_text(d), "the explorer never reported a result")
            overlay = driver.find_elements(By.CSS_SELECTOR, "img.camutils-overlay")[-1]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", overlay)
            before = _overlay_digest(driver)
            status_before = _status_text(driver)
            _screenshot(driver, "07_explorer_before.png")
            assert before[:2] == [224, 224] and before[3] > 0, before

            # change the method in the explorer's drop-down, as a person would
            method = driver.find_elements(By.CSS_SELECTOR, ".camutils-method select")[-1]
            current = Select(method).first_selected_option.text
            choice = "Eigen-CAM" if current != "Eigen-CAM" else "Grad-CAM"
            Select(method).select_by_visible_text(choice)
            WebDriverWait(driver, CHANGE_TIMEOUT).until(
                lambda d: _status_text(d).startswith(f"✓ {choice}") and _overlay_digest(d) != before,
                f"the overlay did not change after choosing {choice}")
            after = _overlay_digest(driver)
            _screenshot(driver, "07_explorer_after.png")
        except (TimeoutException, AssertionError):
            _screenshot(driver, "07_explorer_failure.png")
            raise

    assert after[:2] == before[:2] == [224, 224]
    assert after[2] != before[2]  # different pixels, not just a new blob URL
    assert choice in _plain(status_before + " -> " + choice)
    assert time.monotonic() - started < 120, "the browser test took over 2 minutes"


def _plain(text: str) -> str:
    return " ".join(text.split())
