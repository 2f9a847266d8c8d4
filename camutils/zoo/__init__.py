"""The model zoo: every model the course uses, behind one interface.

    lite0 = camutils.load_model("efficientnet_lite0")      # offline ImageNet network
    inputs, seen = lite0.preprocess(photos)                # what the network sees
    lite0.top_k(photos, k=5)                               # [(index, name, probability), ...]
    explanation = lite0.explain(photos, method="cam")      # maps overlay on `seen`

One module per job:

- `camutils.zoo.model`: `ZooModel`, the model type (a Keras model with its preprocessing,
  input size, class names and default CAM layer);
- `camutils.zoo.registry`: the names, `list_models` and `load_model`;
- `camutils.zoo.efficientnet`: EfficientNet-Lite0 with its ImageNet weights, read without
  torch by `camutils.zoo.torch_pickle`;
- `camutils.zoo.keras_apps`: Keras applications (VGG16, ResNet50, ...), weights cached once;
- `camutils.zoo.imagenet`: the 1000 ImageNet class names, offline.

The course's own shapes networks are loaded through the registry too; they live with the
course material, in `camutils.course.models`.
"""

from ..images import center_crop_resize
from . import imagenet
from .model import ZooModel
from .registry import list_models, load_model

__all__ = ["ZooModel", "load_model", "list_models", "center_crop_resize", "imagenet"]
