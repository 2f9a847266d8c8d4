"""The architecture of the course's shapes networks: one trunk, four heads.

Four variants share one convolutional trunk and differ in the head. The trunk takes a
64 x 64 RGB image to an 8 x 8 x 96 feature map, the layer ``last_conv_relu``:

    stem_conv 5x5/2 (24) -> block1_conv (32) -> pool1 -> block2_conv (48) -> block3_conv (64)
      -> pool2 -> block4_conv (96) -> last_conv_relu

(every convolution is followed by BatchNorm, momentum 0.9, and a ReLU). The heads:

========== ============================================================ ==================
variant    head                                                         CAM applies?
========== ============================================================ ==================
gap        GlobalAveragePooling2D -> Dense(6) logits                    yes (the paper's)
gmp        GlobalMaxPooling2D -> Dense(6) logits                        yes (the paper's
                                                                        max-pooling variant)
flatten    MaxPooling2D -> Flatten -> Dense(32) -> BN -> ReLU -> Dense(6) no; Grad-CAM does
shortcut   as gap, trained on `make_shortcut` images whose marker leaks yes
           the label
========== ============================================================ ==================

Why 8 x 8: with a 16 x 16 map the units see parts of a shape rather than all of it, and a
GAP network's CAM then peaks on edges and corners, often a pixel or two outside the object;
one more pooling stage gives units that see whole shapes, and CAMs that peak on them.

Outputs are logits (no softmax). The input is the RGB uint8 image divided by 255.

"""

from __future__ import annotations

import numpy as np

from ..suggestions import did_you_mean
from .shapes import IMAGE_SIZE, SHAPE_CLASSES

__all__ = ["VARIANTS", "CAM_LAYER", "INPUT_SIZE", "check_variant", "build_course_model",
           "normalize_images"]

VARIANTS: tuple[str, ...] = ("gap", "gmp", "flatten", "shortcut")
CAM_LAYER = "last_conv_relu"
"""The output of the last convolution block (after its ReLU): 8 x 8 x 96."""
INPUT_SIZE: tuple[int, int] = IMAGE_SIZE

# The trunk, as (layer name, channels, kernel size, stride); "pool..." is a 2 x 2 max-pooling.
# A strided 5 x 5 stem keeps training cheap on a CPU.
_TRUNK = (
    ("stem", 24, 5, 2),      # 64 x 64 -> 32 x 32
    ("block1", 32, 3, 1),
    ("pool1", 0, 2, 2),      # -> 16 x 16
    ("block2", 48, 3, 1),
    ("block3", 64, 3, 1),
    ("pool2", 0, 2, 2),      # -> 8 x 8
    ("block4", 96, 3, 1),    # its ReLU is the CAM layer
)
_BN_MOMENTUM = 0.9                     # Keras' default 0.99 does not settle in a short run


def check_variant(variant: str) -> str:
    """The variant's short name (``"shapes_gap"`` -> ``"gap"``); ValueError if unknown."""
    key = str(variant).lower().removeprefix("shapes_")
    if key not in VARIANTS:
        raise ValueError(f"Unknown course model {variant!r}.{did_you_mean(key, VARIANTS, 2, 0.3)} "
                         f"The variants are: {', '.join(VARIANTS)}.")
    return key


def build_course_model(variant: str, num_classes: int = len(SHAPE_CLASSES),
                       input_size: tuple[int, int] = INPUT_SIZE):
    """The untrained Keras model of a variant (see the module's table).

    The layers are named for teaching: ``stem_conv`` and ``block1_conv`` ... ``block4_conv``,
    each followed by ``..._bn`` and ``..._relu`` (except that block4's ReLU is
    ``last_conv_relu``, the CAM layer), with ``pool1`` and ``pool2``; then the head: ``gap``
    or ``gmp``, or ``head_pool``/``flatten``/``fc``/``fc_bn``/``fc_relu``; and ``logits``.
    """
    import keras
    from keras import layers

    variant = check_variant(variant)
    inputs = keras.Input((*input_size, 3), name="image")
    x = inputs
    for i, (name, channels, kernel, stride) in enumerate(_TRUNK):
        if name.startswith("pool"):
            x = layers.MaxPooling2D(kernel, strides=stride, name=name)(x)
            continue
        x = layers.Conv2D(channels, kernel, strides=stride, padding="same", use_bias=False,
                          name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
        x = layers.ReLU(name=CAM_LAYER if i == len(_TRUNK) - 1 else f"{name}_relu")(x)
    if variant in ("gap", "shortcut"):
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    elif variant == "gmp":
        x = layers.GlobalMaxPooling2D(name="gmp")(x)
    else:
        x = layers.MaxPooling2D(2, name="head_pool")(x)   # 8 x 8 -> 4 x 4
        x = layers.Flatten(name="flatten")(x)
        # BatchNorm keeps the fc units alive: 1536 positive inputs and Adam's first steps
        # would otherwise push every unit below zero for good (dead ReLUs, chance accuracy).
        x = layers.Dense(32, use_bias=False, name="fc")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="fc_bn")(x)
        x = layers.ReLU(name="fc_relu")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"shapes_{variant}")


def normalize_images(images: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(n, H, W, 3)`` to the network's float32 input in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)
