"""Small Keras models for tests: quick to build and to trace, deterministic weights.

Every builder takes a ``seed``; weights come from seeded initialisers, so the same call
builds the same model. Inputs are small (16 x 16 by default) so that a whole explanation
runs in milliseconds once traced.

    model = gap_model()                        # conv -> conv -> GAP -> Dense, logits
    model = gap_model(softmax="dense")         # the same with Dense(activation="softmax")
    model = nested_model()                     # Sequential([functional base, GAP, Dense])
"""

from __future__ import annotations

import numpy as np

SIZE = (16, 16)


def cnn_methods() -> list[str]:
    """Every method that applies to any CNN: all but the attention family, which needs a
    transformer (tested on one in tests/test_tokens.py)."""
    from camutils.methods import method_table

    return [m.name for m in method_table() if m.kind != "attention"]


def _init(seed: int, scale: float = 1.0):
    import keras

    return keras.initializers.VarianceScaling(scale=scale, mode="fan_avg",
                                              distribution="uniform", seed=seed)


def _bias(seed: int):
    import keras

    return keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)


def conv_stack(x, channels=(4, 6), seed: int = 0, activation="relu", prefix="conv",
               first_stride: int = 2, padding: str = "same"):
    """Convolutions (3 x 3, ``padding``); the first has stride ``first_stride``."""
    import keras

    for i, c in enumerate(channels):
        x = keras.layers.Conv2D(
            c, 3, strides=first_stride if i == 0 else 1, padding=padding, activation=activation,
            kernel_initializer=_init(seed + i), bias_initializer=_bias(seed + 10 + i),
            name=f"{prefix}{i + 1}",
        )(x)
    return x


def gap_model(size=SIZE, channels=(4, 6), classes: int = 5, seed: int = 0, head: str = "gap",
              softmax: str | None = None, dropout: float = 0.0, activation="relu",
              first_stride: int = 2, padding: str = "same", name: str = "gap_model"):
    """Functional conv net -> head -> Dense(classes).

    Args:
        head: ``"gap"`` (GlobalAveragePooling2D), ``"gmp"`` (GlobalMaxPooling2D) or
            ``"flatten"`` (Flatten, where CAM is undefined).
        softmax: None (logits), ``"dense"`` (Dense with softmax activation), ``"layer"``
            (a Softmax layer after a linear Dense) or ``"activation"`` (Activation("softmax")).
        dropout: add a Dropout layer of this rate between the pooling and the Dense.
        first_stride: 1 keeps the input's resolution in every layer.
        padding: ``"valid"`` makes a constant image give constant feature maps.
    """
    import keras

    inputs = keras.Input((*size, 3), name="image")
    x = conv_stack(inputs, channels, seed, activation, first_stride=first_stride,
                   padding=padding)
    x = {
        "gap": keras.layers.GlobalAveragePooling2D(name="pool"),
        "gmp": keras.layers.GlobalMaxPooling2D(name="pool"),
        "flatten": keras.layers.Flatten(name="flatten"),
    }[head](x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(
        classes, activation="softmax" if softmax == "dense" else None,
        kernel_initializer=_init(seed + 20), bias_initializer=_bias(seed + 21), name="logits",
    )(x)
    if softmax == "layer":
        x = keras.layers.Softmax(name="probabilities")(x)
    elif softmax == "activation":
        x = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, x, name=name)


def logits_twin(model):
    """A logits model with the same weights as a `gap_model(softmax="dense")` model."""
    import keras

    inputs = keras.Input(model.inputs[0].shape[1:], name="image")
    x = inputs
    for layer in model.layers[1:]:
        config = layer.get_config()
        if config.get("activation") == "softmax":
            config["activation"] = "linear"
        clone = type(layer).from_config(config)
        x = clone(x)
        clone.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name="logits_twin")


def sequential_model(size=SIZE, channels=(4, 6), classes: int = 5, seed: int = 0,
                     softmax: bool = False):
    """The same shape of network as a Sequential model."""
    import keras

    layers = [keras.Input((*size, 3))]
    for i, c in enumerate(channels):
        layers.append(keras.layers.Conv2D(
            c, 3, strides=2 if i == 0 else 1, padding="same", activation="relu",
            kernel_initializer=_init(seed + i), bias_initializer=_bias(seed + 10 + i),
            name=f"conv{i + 1}",
        ))
    layers += [
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dropout(0.2, name="dropout"),
        keras.layers.Dense(classes, activation="softmax" if softmax else None,
                           kernel_initializer=_init(seed + 20), name="logits"),
    ]
    return keras.Sequential(layers, name="sequential_model")


def base_model(size=SIZE, channels=(4, 6), seed: int = 0, name: str = "base"):
    """A functional feature extractor (what a pretrained base looks like)."""
    import keras

    inputs = keras.Input((*size, 3), name="base_input")
    x = conv_stack(inputs, channels, seed)
    x = keras.layers.Activation("relu", name="top_activation")(x)
    return keras.Model(inputs, x, name=name)


def nested_model(size=SIZE, channels=(4, 6), classes: int = 5, seed: int = 0,
                 outer: str = "sequential", softmax: bool = False):
    """A pretrained-style base nested in a Sequential (or functional) model with a GAP head."""
    import keras

    base = base_model(size, channels, seed)
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    dense = keras.layers.Dense(classes, activation="softmax" if softmax else None,
                               kernel_initializer=_init(seed + 20), name="logits")
    if outer == "sequential":
        return keras.Sequential([keras.Input((*size, 3)), base, pool, dense], name="nested")
    inputs = keras.Input((*size, 3), name="image")
    x = keras.layers.Rescaling(1.0, name="rescale")(inputs)
    return keras.Model(inputs, dense(pool(base(x))), name="nested_functional")


def multi_output_model(size=SIZE, seed: int = 0, as_dict: bool = False):
    """Two classification heads on one trunk: 'species' (5 classes) and 'colour' (3)."""
    import keras

    inputs = keras.Input((*size, 3), name="image")
    x = conv_stack(inputs, (4, 6), seed)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    species = keras.layers.Dense(5, kernel_initializer=_init(seed + 20), name="species")(pooled)
    colour = keras.layers.Dense(3, kernel_initializer=_init(seed + 21), name="colour")(pooled)
    outputs = {"species": species, "colour": colour} if as_dict else [species, colour]
    return keras.Model(inputs, outputs, name="multi_output")


def skip_model(size=SIZE, seed: int = 0):
    """A network whose last block adds a shortcut from before the explained layer."""
    import keras

    inputs = keras.Input((*size, 3), name="image")
    x = conv_stack(inputs, (4,), seed)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                            kernel_initializer=_init(seed + 5), name="branch")(x)
    z = keras.layers.Add(name="add")([x, y])
    z = keras.layers.GlobalAveragePooling2D(name="pool")(z)
    z = keras.layers.Dense(5, kernel_initializer=_init(seed + 20), name="logits")(z)
    return keras.Model(inputs, z, name="skip_model")


def dense_head_model(units: int, activation=None, size=SIZE, seed: int = 0, name="dense_head"):
    """conv -> conv -> GAP -> Dense(units, activation): a multi-label head (``"sigmoid"``),
    a regression unit (``units=1``) or an embedding (``units=8``)."""
    import keras

    inputs = keras.Input((*size, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(conv_stack(inputs, (4, 6), seed))
    x = keras.layers.Dense(units, activation=activation, kernel_initializer=_init(seed + 20),
                           bias_initializer=_bias(seed + 21), name="head")(x)
    return keras.Model(inputs, x, name=name)


def segmenter_model(classes: int = 4, size=SIZE, seed: int = 0):
    """conv (stride 2) -> conv -> 1 x 1 logits -> bilinear x 2: ``(N, H, W, classes)``."""
    import keras

    inputs = keras.Input((*size, 3), name="image")
    x = conv_stack(inputs, (4, 6), seed)
    x = keras.layers.Conv2D(classes, 1, kernel_initializer=_init(seed + 20),
                            bias_initializer=_bias(seed + 21), name="logits_half")(x)
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="logits")(x)
    return keras.Model(inputs, x, name="segmenter")


def detector_model(classes: int = 2, size=SIZE, seed: int = 0):
    """conv (stride 2) -> conv (stride 2) -> 1 x 1 heads: ``(N, H/4, W/4, classes + 4)``, the
    course detector's format (heat-map logits, width, height, dx, dy)."""
    import keras

    inputs = keras.Input((*size, 3), name="image")
    x = conv_stack(inputs, (4, 6), seed)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                            kernel_initializer=_init(seed + 3), name="neck")(x)
    x = keras.layers.Conv2D(classes + 4, 1, kernel_initializer=_init(seed + 20),
                            bias_initializer=_bias(seed + 21), name="detections")(x)
    return keras.Model(inputs, x, name="detector")


def images(n: int = 2, size=SIZE, seed: int = 0) -> np.ndarray:
    """A float32 batch of smooth random images in [0, 1] (not constant, not extreme)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.0, 1.0, (n, size[0] // 4, size[1] // 4, 3))
    fine = np.kron(coarse, np.ones((1, 4, 4, 1)))
    return (0.7 * fine + 0.3 * rng.uniform(0.0, 1.0, (n, *size, 3))).astype(np.float32)


_PREFIX_TOKENS = []


def prefix_tokens_layer():
    """A layer that prepends ``count`` learned tokens, ``(batch, n, dim) -> (batch, count +
    n, dim)``: class, distillation or register tokens (defined on first use)."""
    if _PREFIX_TOKENS:
        return _PREFIX_TOKENS[0]
    import keras

    class PrefixTokens(keras.layers.Layer):
        def __init__(self, count: int, seed: int = 0, **kwargs):
            super().__init__(**kwargs)
            self.count, self.seed = count, seed

        def build(self, shape):
            self.tokens = self.add_weight(
                shape=(1, self.count, shape[-1]), name="tokens",
                initializer=keras.initializers.RandomNormal(stddev=0.5, seed=self.seed))

        def call(self, x):
            shape = keras.ops.shape(x)
            tokens = keras.ops.broadcast_to(self.tokens, (shape[0], self.count, shape[2]))
            return keras.ops.concatenate([tokens, x], axis=1)

        def compute_output_shape(self, shape):
            return (shape[0], None if shape[1] is None else shape[1] + self.count, shape[2])

    _PREFIX_TOKENS.append(PrefixTokens)
    return PrefixTokens


def tiny_vit(size=SIZE, patch: int = 4, dim: int = 8, prefix: int = 1, depth: int = 2,
             heads: int = 2, classes: int = 3, head: str = "token", seed: int = 0,
             name: str = "tiny_vit"):
    """A small vision transformer of plain Keras layers (and `prefix_tokens_layer`):
    ``patch_embedding`` (a ``patch x patch`` convolution of stride ``patch``) ->
    ``patch_tokens`` -> ``prefix_tokens`` (``prefix`` of them, none when 0) -> ``depth``
    pre-norm blocks (``block{i}_norm1`` -> ``block{i}_attention`` (MultiHeadAttention) ->
    ``block{i}_add`` -> ``block{i}_norm2`` -> ``block{i}_mlp1`` -> ``block{i}_mlp2`` ->
    ``block{i}_out``) -> ``final_norm`` -> the head: ``"token"`` reads the first token
    (``class_token`` -> ``readout``), ``"gap"`` averages every token (``pool``) -> ``logits``.
    """
    import keras
    from keras import layers

    inputs = keras.Input((*size, 3), name="image")
    x = layers.Conv2D(dim, patch, strides=patch, kernel_initializer=_init(seed),
                      bias_initializer=_bias(seed + 1), name="patch_embedding")(inputs)
    count = (size[0] // patch) * (size[1] // patch)
    x = layers.Reshape((count, dim), name="patch_tokens")(x)
    if prefix:
        x = prefix_tokens_layer()(prefix, seed=seed + 2, name="prefix_tokens")(x)
    for i in range(1, depth + 1):
        s = seed + 10 * i
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        y = layers.MultiHeadAttention(heads, dim // heads, kernel_initializer=_init(s),
                                      bias_initializer=_bias(s + 1),
                                      name=f"block{i}_attention")(y, y)
        x = layers.Add(name=f"block{i}_add")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(x)
        y = layers.Dense(2 * dim, activation="gelu", kernel_initializer=_init(s + 2),
                         name=f"block{i}_mlp1")(y)
        y = layers.Dense(dim, kernel_initializer=_init(s + 3), name=f"block{i}_mlp2")(y)
        x = layers.Add(name=f"block{i}_out")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    if head == "token":
        x = layers.Cropping1D((0, prefix + count - 1), name="class_token")(x)
        x = layers.Flatten(name="readout")(x)
    else:
        x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dense(classes, kernel_initializer=_init(seed + 98),
                     bias_initializer=_bias(seed + 99), name="logits")(x)
    return keras.Model(inputs, x, name=name)
