"""The convolutional trunk that the course's CNNs share (and the ViT's stem starts like).

    stem_conv 5x5/2 (24) -> block1_conv (32) -> pool1 -> block2_conv (48) -> block3_conv (64)
      -> pool2 -> block4_conv (96) -> last_conv_relu

Every convolution is followed by BatchNorm (momentum 0.9) and a ReLU, named ``{stage}_conv``,
``{stage}_bn`` and ``{stage}_relu`` (block4's ReLU is ``last_conv_relu``, the CAM layer: 8 x 8
x 96 on a 64 x 64 image). `camutils.course.architecture` puts the heads on it;
`camutils.course.vit` uses its stages up to ``block2`` as the transformer's stem.
"""

from __future__ import annotations

__all__ = ["CAM_LAYER", "BN_MOMENTUM", "conv_block", "build_trunk"]

CAM_LAYER = "last_conv_relu"
"""The output of the trunk's last convolution block (after its ReLU): 8 x 8 x 96."""

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
BN_MOMENTUM = 0.9                     # Keras' default 0.99 does not settle in a short run


def conv_block(x, name: str, channels: int, kernel: int = 3, stride: int = 1,
               relu_name: str | None = None):
    """Conv (no bias) -> BatchNorm -> ReLU, named ``{name}_conv``, ``_bn``, ``_relu``."""
    from keras import layers

    x = layers.Conv2D(channels, kernel, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=relu_name or f"{name}_relu")(x)


def build_trunk(inputs, last: str = "block4") -> tuple:
    """The shared trunk on ``inputs``, up to the stage ``last``: its output (``last_conv_relu``
    for the whole trunk, ``{last}_relu`` otherwise) and the skips ``{16: block3_relu, 32:
    block1_relu}`` (by side: the outputs before each pooling) that the decoders use."""
    from keras import layers

    x, skips = inputs, {}
    for i, (name, channels, kernel, stride) in enumerate(_TRUNK):
        if name.startswith("pool"):
            skips[int(x.shape[1])] = x
            x = layers.MaxPooling2D(kernel, strides=stride, name=name)(x)
            continue
        x = conv_block(x, name, channels, kernel, stride,
                       CAM_LAYER if i == len(_TRUNK) - 1 else None)
        if name == last:
            break
    return x, skips
