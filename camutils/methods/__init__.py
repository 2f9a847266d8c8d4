"""The CAM method family on one pipeline.

    from camutils.methods import explain, TopK
    e = explain(model, images, method="gradcam")             # maps (N, H, W) in [0, 1]
    e = explain(model, images, method="cam", target=TopK(3))  # maps (N, 3, H, W)

Every method is also a plain function with the same signature (`cam`, `gradcam`, ...), and
`METHODS` maps each canonical name to its function. The pipeline and its conventions
(upsampling, normalisation, caching) are described in `camutils.methods.pipeline`; the layer
resolution in `camutils.targets`.
"""

from .gradient_free import cam, eigencam
from .explanation import Explanation, TopK
from .gradient import gradcam, gradcam_plus_plus, hirescam, layercam, xgradcam
from .guided import guided_backprop, guided_gradcam
from .perturbation import ablationcam, scorecam
from .registry import METHODS, canonical_name, explain, method_function

__all__ = [
    "explain", "Explanation", "TopK", "METHODS", "canonical_name", "method_function",
    "cam", "gradcam", "gradcam_plus_plus", "xgradcam", "hirescam", "layercam", "scorecam",
    "ablationcam", "eigencam", "guided_backprop", "guided_gradcam",
]
