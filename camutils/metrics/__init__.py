"""Metrics that test a heat map's claims: localisation, faithfulness and sanity checks.

    from camutils import metrics
    metrics.localisation_scores(explanation.maps, masks=data.masks)      # vs ground truth
    metrics.faithfulness_scores(model, inputs, explanation)              # deletion, insertion, drop
    metrics.cascading_randomisation(model, inputs, method="gradcam")     # Adebayo et al.

Three modules, one job each:

- `camutils.metrics.localisation`: pointing game, energy-based pointing game, the CAM
  paper's box protocol (IoU, localisation accuracy), mask IoU and coverage. Pure numpy.
- `camutils.metrics.faithfulness`: deletion and insertion curves and their AUC, average
  drop and increase in confidence, in batches through the model.
- `camutils.metrics.sanity`: cascading and independent randomisation of the weights, with
  the rank correlation of the maps at each step.

Maps are float32 ``(n, H, W)`` at input resolution (``camutils.explain(...).maps``; an
`Explanation` is accepted wherever maps are), masks bool ``(n, H, W)``, boxes int
``(n, 4)`` as ``(x0, y0, x1, y1)`` with exclusive ends. Results are numpy arrays, or dicts
of them and of floats ready to tabulate. Importing this package does not import TensorFlow.
"""

from .faithfulness import (
    BASELINES, average_drop, baseline_images, curve_auc, deletion_curve, faithfulness_scores,
    insertion_curve,
)
from .localisation import (
    box_iou, box_localisation, energy_pointing_game, largest_component_boxes,
    localisation_scores, mask_coverage, mask_iou, peak_locations, pointing_game,
    pointing_tolerance, threshold_regions,
)
from .sanity import (
    SIMILARITIES, cascading_randomisation, independent_randomisation, randomisable_layers,
    randomised_copy, rank_correlation, signed_maps, ssim,
)

__all__ = [
    # localisation
    "pointing_game", "pointing_tolerance", "peak_locations", "energy_pointing_game",
    "threshold_regions", "largest_component_boxes", "box_iou", "box_localisation",
    "mask_iou", "mask_coverage", "localisation_scores",
    # faithfulness
    "deletion_curve", "insertion_curve", "curve_auc", "average_drop", "faithfulness_scores",
    "baseline_images", "BASELINES",
    # sanity checks
    "cascading_randomisation", "independent_randomisation", "randomisable_layers",
    "randomised_copy", "rank_correlation", "ssim", "signed_maps", "SIMILARITIES",
]
