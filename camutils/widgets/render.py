"""What the explorer shows, as plain data: PNG bytes, a colour bar, the top-k table.

Nothing here needs a browser or a kernel, so all of it is tested with numpy alone.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from ..images import decode_image, encode_image

__all__ = ["png_bytes", "decode_image", "colorbar_image", "blank_image", "top_k_html",
           "status_html"]


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as PNG bytes (what an ``ipywidgets.Image`` displays)."""
    return encode_image(image, ".png")


def colorbar_image(cmap, height: int = 224, bar_width: int = 16,
                   label_width: int = 40) -> np.ndarray:
    """A vertical colour bar for maps in [0, 1]: 1 at the top, 0 at the bottom, with ticks.

    Returns RGB uint8 ``(height, bar_width + label_width, 3)`` on a white background.
    """
    import cv2

    from ..plot import colorize

    if height < 16:
        raise ValueError(f"A colour bar needs a height of at least 16 pixels; got {height}.")
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(bar_width, axis=1)
    canvas = np.full((height, bar_width + label_width, 3), 255, np.uint8)
    canvas[:, :bar_width] = colorize(ramp, cmap)
    for value in (1.0, 0.5, 0.0):
        y = int(round((1.0 - value) * (height - 1)))
        canvas[y, bar_width:bar_width + 4] = 0
        baseline = min(max(y + 4, 9), height - 2)
        cv2.putText(canvas, f"{value:.1f}", (bar_width + 6, baseline), cv2.FONT_HERSHEY_SIMPLEX,
                    0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def blank_image(size: tuple[int, int], shade: int = 235) -> np.ndarray:
    """A flat grey RGB uint8 image of ``size = (height, width)``: shown where a map failed."""
    height, width = (int(s) for s in size)
    return np.full((height, width, 3), shade, np.uint8)


def top_k_html(rows: Sequence[tuple[int, str, float]], target: int | None = None,
               percent: bool = True) -> str:
    """An HTML table of ``(index, name, probability)`` rows with bars; ``target`` is bold.
    ``percent=False``: the values are not fractions (a regression's output), shown as they
    are, without bars."""
    if not rows:
        return "<i>no scores yet</i>"
    lines = ['<table class="camutils-top-k" style="border-collapse:collapse;font-size:12px">']
    for index, name, value in rows:
        share = 100.0 * float(value)
        weight = "bold" if target is not None and int(index) == int(target) else "normal"
        shown = f"{share:5.1f}%" if percent else f"{float(value):.3f}"
        bar = (f'<div style="background:#6a51a3;height:9px;width:{max(1.0, share):.0f}px">'
               "</div>" if percent else "")
        lines.append(
            f'<tr style="font-weight:{weight}"><td style="padding:1px 6px">'
            f"{html.escape(str(name))}</td>"
            f'<td style="padding:1px 6px;text-align:right">{shown}</td>'
            f'<td style="padding:1px 6px">{bar}</td></tr>'
        )
    lines.append("</table>")
    return "".join(lines)


_LEVEL_COLOURS = {"ready": "#1b7837", "busy": "#8c6d00", "error": "#b2182b"}


def status_html(message: str, level: str) -> str:
    """The status line: ``message`` coloured by ``level`` (``ready``, ``busy`` or ``error``)."""
    if level not in _LEVEL_COLOURS:
        raise ValueError(f"Unknown status level {level!r}; use one of {', '.join(_LEVEL_COLOURS)}.")
    icon = {"ready": "&#10003;", "busy": "&#8987;", "error": "&#9888;"}[level]
    return (f'<div class="camutils-status camutils-status-{level}" '
            f'style="color:{_LEVEL_COLOURS[level]};white-space:pre-wrap">{icon} '
            f"{html.escape(message)}</div>")
