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

__all__ = ["Explorer", "COLOUR_MAPS", "method_labels", "slow_methods", "default_images",
           "find_class", "colorbar_image", "png_bytes", "top_k_html", "Debouncer", "LRUCache"]
