"""The architecture of the course's shapes networks: one trunk, many heads, and a ViT.

Every convolutional course model shares one trunk (`camutils.course.trunk`), which takes a
64 x 64 RGB image to an 8 x 8 x 96 feature map, the layer ``last_conv_relu``:

    stem_conv 5x5/2 (24) -> block1_conv (32) -> pool1 -> block2_conv (48) -> block3_conv (64)
      -> pool2 -> block4_conv (96) -> last_conv_relu

(every convolution is followed by BatchNorm, momentum 0.9, and a ReLU). The models differ in
their head and in what they learn (`VARIANTS` lists them, `SPECS` says what each outputs):

========== ============================================================ ==================
variant    head                                                         CAM applies?
========== ============================================================ ==================
gap        GlobalAveragePooling2D -> Dense(6) logits                    yes (the paper's)
gmp        GlobalMaxPooling2D -> Dense(6) logits                        yes (the paper's
                                                                        max-pooling variant)
flatten    MaxPooling2D -> Flatten -> Dense(32) -> BN -> ReLU -> Dense(6) no; Grad-CAM does
shortcut   as gap, trained on `make_shortcut` images whose marker leaks yes
           the label
multilabel as gap, trained on scenes of 1 to 3 shapes with one sigmoid per  yes, per label
           label: outputs (n, 6) logits, label present when logit > 0
size       GlobalAveragePooling2D -> Dense(1): the object's size (the       yes (the unit)
           radius of the disc with its area, pixels), a regression
segmenter  a U-Net decoder: 8 -> 16 -> 32 with the trunk's skips, 1 x 1  no; Grad-CAM of a
           logits, bilinear to 64: (n, 64, 64, 7) per-pixel logits       region does
detector   a decoder to 16 x 16 (stride 4) and CenterNet heads:          no; Grad-CAM of a
           (n, 16, 16, 10), see `camutils.course.detection`             detection does
vit        the trunk's first stages (to 16 x 16), then a small vision     no (token grid)
           transformer on 8 x 8 tokens (`camutils.course.vit`)
========== ============================================================ ==================

Why 8 x 8: with a 16 x 16 map the units see parts of a shape rather than all of it, and a
GAP network's CAM then peaks on edges and corners, often a pixel or two outside the object;
one more pooling stage gives units that see whole shapes, and CAMs that peak on them.

Outputs are logits (no softmax, no sigmoid), except the size model's (pixels) and the
detector's size and offset channels. The input is the RGB uint8 image divided by 255.

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..suggestions import did_you_mean
from . import detection
from .shapes import IMAGE_SIZE, SEGMENT_CLASSES, SHAPE_CLASSES
from .trunk import BN_MOMENTUM, CAM_LAYER, build_trunk, conv_block

__all__ = ["VARIANTS", "SPECS", "ModelSpec", "CAM_LAYER", "INPUT_SIZE", "check_variant",
           "build_course_model", "normalize_images"]

INPUT_SIZE: tuple[int, int] = IMAGE_SIZE


@dataclass(frozen=True)
class ModelSpec:
    """What a course model does, as the rest of the package needs to know it.

    Attributes:
        task: ``"classification"`` (one shape per image, softmax over the logits),
            ``"multilabel"`` (scenes; a sigmoid per label), ``"segmentation"`` (a class per
            pixel), ``"detection"`` (boxes, `camutils.course.detection`) or ``"regression"``.
        output_names: what the output's last axis holds, in order.
        output: the output's format, in one line.
        cam_layer: the default layer to explain (``last_conv_relu`` where the trunk's is
            the natural one).
    """

    task: str
    output_names: tuple[str, ...]
    output: str
    cam_layer: str = CAM_LAYER


_CLASS_LOGITS = "(n, 6) class logits (softmax gives the probabilities)"
SPECS: dict[str, ModelSpec] = {
    "gap": ModelSpec("classification", SHAPE_CLASSES, _CLASS_LOGITS),
    "gmp": ModelSpec("classification", SHAPE_CLASSES, _CLASS_LOGITS),
    "flatten": ModelSpec("classification", SHAPE_CLASSES, _CLASS_LOGITS),
    "shortcut": ModelSpec("classification", SHAPE_CLASSES, _CLASS_LOGITS),
    "multilabel": ModelSpec("multilabel", SHAPE_CLASSES,
                            "(n, 6) label logits: sigmoid per label, present when logit > 0"),
    "size": ModelSpec("regression", ("size",),
                      "(n, 1) the object's size: radius in pixels of the disc with its area"),
    "segmenter": ModelSpec("segmentation", SEGMENT_CLASSES,
                           "(n, 64, 64, 7) per-pixel class logits, background last",
                           "decoder16_relu"),
    "detector": ModelSpec("detection", (*SHAPE_CLASSES, "width", "height", "dx", "dy"),
                          "(n, 16, 16, 10) centre heat-map logits (6), box size in pixels "
                          "(2), centre offset in cells (2)", "neck_relu"),
    "vit": ModelSpec("classification", SHAPE_CLASSES, _CLASS_LOGITS, "encoder3_out"),
}
"""Every course model by variant name, in the order the training script trains them."""
VARIANTS: tuple[str, ...] = tuple(SPECS)


def check_variant(variant: str) -> str:
    """The variant's short name (``"shapes_gap"`` -> ``"gap"``); ValueError if unknown."""
    key = str(variant).lower().removeprefix("shapes_")
    if key not in SPECS:
        raise ValueError(f"Unknown course model {variant!r}.{did_you_mean(key, VARIANTS, 2, 0.3)} "
                         f"The variants are: {', '.join(VARIANTS)}.")
    return key


def _decoder(x, skips: dict, widths: dict):
    """Up-sample by 2, concatenate the trunk's skip of that size, conv block; per entry of
    ``widths`` ({side: channels}), named ``up{side}``, ``concat{side}``, ``decoder{side}``."""
    from keras import layers

    for side, channels in widths.items():
        x = layers.UpSampling2D(2, name=f"up{side}")(x)
        x = layers.Concatenate(name=f"concat{side}")([x, skips[side]])
        x = conv_block(x, f"decoder{side}", channels)
    return x


def build_course_model(variant: str, num_classes: int = len(SHAPE_CLASSES),
                       input_size: tuple[int, int] = INPUT_SIZE):
    """The untrained Keras model of a variant (see the module's table).

    The layers are named for teaching: ``stem_conv`` and ``block1_conv`` ... ``block4_conv``,
    each followed by ``..._bn`` and ``..._relu`` (except that block4's ReLU is
    ``last_conv_relu``, the CAM layer), with ``pool1`` and ``pool2``; then the head: ``gap``
    or ``gmp``, or ``head_pool``/``flatten``/``fc``/``fc_bn``/``fc_relu``; and ``logits``
    (``size`` for the size model). The segmenter adds ``up16``, ``concat16``,
    ``decoder16_...``, ``up32``, ``concat32``, ``decoder32_...``, ``logits_32`` (1 x 1 at 32 x
    32) and ``logits`` (bilinear to 64 x 64); the detector ``up16``, ``concat16``,
    ``decoder16_...``, ``neck_...`` and its heads ``heatmap``, ``box_size``, ``offset``,
    concatenated as ``detections``. The ViT's are in `camutils.course.vit`.
    """
    import keras
    from keras import layers

    variant = check_variant(variant)
    if variant == "vit":
        from .vit import build_vit

        return build_vit(num_classes, input_size)
    inputs = keras.Input((*input_size, 3), name="image")
    x, skips = build_trunk(inputs)
    if variant in ("gap", "shortcut", "multilabel", "size"):
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    elif variant == "gmp":
        x = layers.GlobalMaxPooling2D(name="gmp")(x)
    elif variant == "flatten":
        x = layers.MaxPooling2D(2, name="head_pool")(x)   # 8 x 8 -> 4 x 4
        x = layers.Flatten(name="flatten")(x)
        # BatchNorm keeps the fc units alive: 1536 positive inputs and Adam's first steps
        # would otherwise push every unit below zero for good (dead ReLUs, chance accuracy).
        x = layers.Dense(32, use_bias=False, name="fc")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="fc_bn")(x)
        x = layers.ReLU(name="fc_relu")(x)
    if variant == "size":
        # starts at the middle of the training sizes: the head learns the differences
        outputs = layers.Dense(1, bias_initializer=keras.initializers.Constant(10.0),
                               name="size")(x)
    elif variant == "segmenter":
        x = _decoder(x, skips, {16: 48, 32: 32})
        x = layers.Conv2D(num_classes + 1, 1, name="logits_32")(x)
        outputs = layers.UpSampling2D(2, interpolation="bilinear", name="logits")(x)
    elif variant == "detector":
        x = _decoder(x, skips, {16: 48})
        x = conv_block(x, "neck", 48)
        # CenterNet's start: every cell's heat map at probability 0.1 (few cells hold a centre)
        heat = layers.Conv2D(num_classes, 1, bias_initializer=keras.initializers.Constant(
            -np.log(9.0)), name="heatmap")(x)
        size = layers.Conv2D(2, 1, bias_initializer=keras.initializers.Constant(20.0),
                             name="box_size")(x)
        offset = layers.Conv2D(2, 1, bias_initializer=keras.initializers.Constant(0.5),
                               name="offset")(x)
        outputs = layers.Concatenate(name="detections")([heat, size, offset])
        assert outputs.shape[-1] == detection.CHANNELS
    else:
        outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"shapes_{variant}")


def normalize_images(images: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(n, H, W, 3)`` to the network's float32 input in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)
