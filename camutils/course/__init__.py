"""What only the course needs: the shapes world, the course's networks and the exercises.

- `camutils.course.shapes`: the synthetic shapes world (images with masks and boxes, scenes
  of several objects, and the shortcut set whose marker leaks the label);
- `camutils.course.architecture`, `camutils.course.training`, `camutils.course.evaluation`
  and `camutils.course.models`: the small shapes networks (classifiers, a multi-label model,
  a segmenter, a detector, a size regressor and a ViT), how they are built, trained
  (deterministically) and scored, and how their shipped weights are loaded;
- `camutils.course.trunk`, `camutils.course.detection` and `camutils.course.vit`: the CNNs'
  shared trunk, the detector's output format and decoding, and the ViT's layers and
  attention scores;
- `camutils.course.exercises`: each notebook's exercises (``check`` / ``hint`` /
  ``solution``);
- `camutils.course.claims`: `claim`, the notebooks' readable check of a claim against its
  numbers;

The learner editions of the notebooks (answers replaced by placeholders) are not part of the
package: ``tools/learner_editions.py`` writes them from the complete notebooks (``make
student``).

The library's core (`camutils.methods`, `camutils.metrics`, `camutils.model_cache`,
`camutils.zoo`) never imports this package: the zoo's registry names the shapes networks'
loader by its path and imports it only when one is loaded.
"""

from . import exercises
from .claims import ClaimFailed, claim
from .models import load_course_model
from .shapes import SHAPE_CLASSES, make_scenes, make_shapes, make_shortcut

__all__ = ["load_course_model", "make_shapes", "make_scenes", "make_shortcut", "SHAPE_CLASSES",
           "claim", "ClaimFailed", "exercises"]
