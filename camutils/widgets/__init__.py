"""Interactive tools for notebooks: the CAM explorer.

    explorer = camutils.widgets.Explorer()   # then display it: the last line of a cell
    explorer.method_select.value = "scorecam"
    explorer.overlay_image                   # what the explorer shows, as an RGB array

See `camutils.widgets.explorer` for how it is built, and notebook 07 for a walk-through.
"""

from .classes import find_class
from .explorer import COLOUR_MAPS, Explorer, default_images, method_labels, slow_methods
from .render import colorbar_image, png_bytes, top_k_html
from .timing import Debouncer, LRUCache

__all__ = ["Explorer", "METHOD_LABELS", "COLOUR_MAPS", "SLOW_METHODS", "method_labels",
           "slow_methods", "default_images",
           "find_class", "colorbar_image", "png_bytes", "top_k_html", "Debouncer", "LRUCache"]


def __getattr__(name: str):
    # METHOD_LABELS and SLOW_METHODS are read from the method table when asked for.
    if name in ("METHOD_LABELS", "SLOW_METHODS"):
        from . import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
