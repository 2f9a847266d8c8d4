"""Sphinx configuration of the course's website (`make site`, `python course.py site`).

The source folder is the repository itself: the README is the home page, every notebook in
notebooks/ is a page in course order (file name order), and docs/ are the reference pages. The
notebooks are rendered with their committed outputs; nothing is executed. Everything a page
loads (theme, search, MathJax) is copied into the site: nothing is fetched when it is built or
read. The course-specific parts (the table of contents, the learner-edition links, remote badges,
widgets) are in course_site.py beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from site_contents import REPOSITORY, site_url  # noqa: E402

project = "CAM course"
copyright = "the CAM course contributors, Apache-2.0"  # noqa: A001 (Sphinx's name)
author = "the CAM course contributors"
language = "en"

extensions = ["myst_nb", "course_site"]

# The repository is the source folder: only these files are pages.
root_doc = "README"
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.ipynb", "docs/*.md"]
exclude_patterns = [".*", "build", "wheelhouse", "artifacts", "**/.ipynb_checkpoints",
                    "notebooks/learner"]
templates_path = ["_templates"]

# Notebooks: the committed outputs, never re-executed.
nb_execution_mode = "off"
nb_output_stderr = "show"
# The explorer's widgets need a live kernel; course_site.py replaces them with a note, and no
# widget manager is loaded from a CDN.
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# "Non-consecutive header level" is how a notebook's bold section labels read, not an error.
suppress_warnings = ["myst.header"]

# MathJax from the site itself (course_site.py copies it from an installed package).
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "CAM course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"  # declared, so that no browser asks for /favicon.ico
# The theme's light / dark / auto switch needs a starting mode (without one, pydata-sphinx-theme
# logs an error in the console on a reader's first visit).
html_context = {"default_mode": "auto"}
html_copy_source = True  # the theme's download button gives each notebook's .ipynb
html_show_sourcelink = False
html_last_updated_fmt = None
html_baseurl = site_url()
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "notebook_interface": "jupyterlab",
    },
}
