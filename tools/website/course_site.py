"""The course's additions to Sphinx, for its website (tools/website/conf.py loads them).

- The table of contents: the README (the home page), then every notebook in notebooks/ in
  file name order (new notebooks appear without an edit), then docs/.
- Each notebook page links its learner edition (Colab, Binder, GitHub, download) instead of
  duplicating it as a page.
- Links to repository files that are not pages (LICENSE, data/README.md) point at GitHub; a
  notebook (the learner editions) is offered as a download.
- Nothing on a page is fetched from another site: remote images (the Colab, Binder and CI badges)
  become their text, ipywidgets outputs (which need a live kernel) become a note, a Mermaid
  diagram shows its source (GitHub draws it), and MathJax is served from the site.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from site_contents import REPOSITORY, learner_edition_cell, toctree_source  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _add_contents_and_learner_links(app, docname: str, source: list[str]) -> None:
    """source-read: the home page gets the tables of contents, each notebook its learner
    edition's links (after its header cell)."""
    if docname == app.config.root_doc:
        source[0] += toctree_source(Path(app.srcdir))
    elif docname.startswith("notebooks/"):
        notebook = json.loads(source[0])
        name = docname.split("/", 1)[1] + ".ipynb"
        if (Path(app.srcdir) / "notebooks" / "learner" / name).is_file():
            first = next((i for i, c in enumerate(notebook["cells"])
                          if c["cell_type"] == "markdown"), -1)
            notebook["cells"].insert(first + 1, learner_edition_cell(name))
            source[0] = json.dumps(notebook)


class RemoteImagesAsText(SphinxTransform):
    """A remote image (a Colab, Binder or CI badge) would be fetched from its site by every
    reader: the site shows its alternative text instead (the link around it stays)."""

    default_priority = 400

    def apply(self, **kwargs) -> None:
        for image in list(self.document.findall(nodes.image)):
            if re.match(r"https?://", image.get("uri", "")):
                text = image.get("alt") or "image"
                image.replace_self(nodes.inline(text, text, classes=["course-badge-text"]))


class MermaidAsSource(SphinxTransform):
    """A Mermaid diagram (docs/architecture.md) is drawn by GitHub; Mermaid's script would come
    from a CDN, so the site shows the diagram's source, with a link to the drawn one."""

    default_priority = 400

    def apply(self, **kwargs) -> None:
        for block in list(self.document.findall(nodes.literal_block)):
            if block.get("language") == "mermaid":
                source = Path(self.env.doc2path(self.env.docname)).relative_to(
                    Path(self.env.srcdir)).as_posix()
                note = nodes.paragraph("", "", classes=["course-note"])
                note += nodes.Text("A Mermaid diagram, shown here as its source: ")
                link = nodes.reference("", "see it drawn on GitHub",
                                       refuri=f"{REPOSITORY}/blob/main/{source}", internal=False)
                note += link
                note += nodes.Text(".")
                block.parent.insert(block.parent.index(block), note)


class RepositoryFileLinks(SphinxTransform):
    """A link to a repository file that is not a page: a notebook (a learner edition) becomes
    a download, anything else (LICENSE, data/README.md) a link to the file on GitHub. A link to
    a file that does not exist is left to MyST, whose warning (an error here) names the page
    and the target."""

    default_priority = 400

    def apply(self, **kwargs) -> None:
        srcdir = Path(self.env.srcdir).resolve()
        for node in list(self.document.findall(addnodes.pending_xref)):
            if (node.get("refdomain") == "doc" and node.get("reftype") == "myst"
                    and node["reftarget"] not in self.env.found_docs):
                found = [srcdir / f"{node['reftarget']}{suffix}"
                         for suffix in ("", *self.config.source_suffix)]
                found = [p for p in found if p.is_file()]
                if found:
                    self._replace(node, found[0], srcdir, node.get("reftargetid"))
        source = Path(self.env.doc2path(self.env.docname)).parent
        for node in list(self.document.findall(addnodes.download_reference)):
            target = (source / node["reftarget"]).resolve()
            if target.is_file() and target.suffix != ".ipynb":
                self._replace(node, target, srcdir, None)

    @staticmethod
    def _replace(node, target: Path, srcdir: Path, anchor: str | None) -> None:
        try:
            relative = target.relative_to(srcdir).as_posix()
        except ValueError:
            return
        if target.suffix == ".ipynb":
            link = addnodes.download_reference(
                "", "", refdomain=None, reftype="myst", reftarget=f"/{relative}",
                refdoc=node.get("refdoc"), refexplicit=True)
        else:
            address = f"{REPOSITORY}/blob/main/{relative}" + (f"#{anchor}" if anchor else "")
            link = nodes.reference("", "", refuri=address, internal=False)
        link += node.children
        node.replace_self(link)


class WidgetsAsNotes(SphinxPostTransform):
    """ipywidgets outputs need a live kernel: a note says where they run (no widget manager
    is loaded from a CDN)."""

    default_priority = 5  # after MyST-NB has chosen each output's MIME type (priority 4)
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for raw in list(self.document.findall(nodes.raw)):
            if f'type="{WIDGET_VIEW}"' in raw.astext():
                note = nodes.paragraph(
                    "", "An interactive widget was here: it runs in a live notebook. Open "
                        "this notebook in Colab or on Binder (the rocket button at the top of "
                        "the page) or in JupyterLab (make lab) to use it.",
                    classes=["course-note"])
                raw.replace_self(note)


# MathJax 3 as the PyPI package sphinx-mathjax-offline ships it; only what a page loads (the
# TeX-to-HTML bundle, its fonts, the TeX extensions it loads on demand, the menu).
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui",
                 "a11y/assistive-mml.js")


def mathjax_folder() -> Path:
    distribution = metadata.distribution("sphinx-mathjax-offline")
    folder = Path(str(distribution.locate_file("sphinx-mathjax-offline/static/mathjax")))
    if not (folder / "tex-chtml.js").is_file():
        raise RuntimeError(f"MathJax is missing from sphinx-mathjax-offline ({folder}): "
                           "reinstall it with `python course.py site`")
    return folder


def _copy_mathjax_and_home(app, exception) -> None:
    """build-finished: MathJax into _static/mathjax, and index.html (the home page)."""
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_folder(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)
    home = Path(app.outdir) / f"{app.config.root_doc}.html"
    if home.is_file():
        shutil.copy2(home, Path(app.outdir) / "index.html")


def setup(app):
    from pygments.lexers.special import TextLexer

    app.connect("source-read", _add_contents_and_learner_links)
    app.connect("build-finished", _copy_mathjax_and_home)
    app.add_transform(RemoteImagesAsText)
    app.add_transform(RepositoryFileLinks)
    app.add_transform(MermaidAsSource)
    app.add_post_transform(WidgetsAsNotes)
    # Mermaid's source is shown as plain text (MermaidAsSource)
    app.add_lexer("mermaid", TextLexer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
