"""What differs between ipywidgets 7.7 (Colab's, preinstalled) and 8.x, in one place.

The explorer uses only core widgets, and only two of their behaviours changed between the
two majors:

- display: ipywidgets 8 widgets have ``_repr_mimebundle_``; ipywidgets 7 widgets display
  themselves through ``_ipython_display_`` and have no bundle to hand on;
- `FileUpload.value`: ipywidgets 8 gives a tuple of ``{"name", "type", "size", "content",
  "last_modified"}`` dicts and lets the kernel clear it; ipywidgets 7 gives a read-only dict
  ``{name: {"metadata": {...}, "content": bytes}}``, set by the widget itself when the
  browser's upload counter changes.

pyproject declares ``ipywidgets>=7.7,<9``: both lines are tested (tests/test_widgets.py on 8,
and on 7.7 in platform_tests/test_colab.py).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["widget_mimebundle", "uploaded_files", "clear_upload"]

#: The MIME type under which both ipywidgets 7 and 8 send a widget's view (JSON version 2.0).
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_mimebundle(widget, **kwargs) -> dict:
    """The display bundle of ``widget``, which a front end draws as the live widget."""
    if hasattr(widget, "_repr_mimebundle_"):  # ipywidgets 8
        return widget._repr_mimebundle_(**kwargs)
    # ipywidgets 7: the bundle its _ipython_display_ would send, then its on-displayed hooks
    # (called without IPython's include/exclude, which they do not take).
    bundle = {"text/plain": repr(widget)[:110],
              WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}}
    widget._handle_displayed()
    return bundle


def uploaded_files(value) -> list[tuple[str, bytes | memoryview]]:
    """``(name, content)`` of each file in a `FileUpload`'s value, on either ipywidgets."""
    if isinstance(value, Mapping):  # ipywidgets 7: {name: {"metadata": ..., "content": ...}}
        return [(name, entry["content"]) for name, entry in value.items()]
    return [(entry.get("name", "upload"), entry["content"]) for entry in value]


def clear_upload(upload) -> None:
    """Empty a `FileUpload`, ready for the next file (its value is read-only on ipywidgets 7)."""
    if isinstance(upload.value, Mapping):
        upload.set_trait("value", {})
    else:
        upload.value = ()
