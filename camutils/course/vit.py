"""The course's vision transformer: a small ViT of plain Keras layers, on a convolutional stem.

    vit = camutils.load_model("shapes_vit")                 # trained on make_shapes images
    scores = attention_scores(vit.model, vit.normalize(images))  # one (n, heads, N, N) per block

It is the *hybrid* ViT of Dosovitskiy et al. (2021, section 3.1: the patches are taken from a
CNN's feature map instead of the raw image), small enough to train on a 2-core CPU, and laid
out the standard way so that its token grid can be found from the model alone:

    image (64 x 64 x 3)
      -> stem: the course CNN's first stages (`camutils.course.trunk`), not shared
         weights: stem_conv 5x5/2 (24) -> block1_conv (32) -> pool1 -> block2_conv (48)
         -> block2_relu, a 16 x 16 x 48 feature map (each conv with BatchNorm and ReLU)
      -> patch_embedding   Conv2D(dim, kernel = stride = 2) on that map: an 8 x 8 grid, one
                           token per 8 x 8 pixels of the image (`PATCH_SIZE`)
      -> patch_tokens      Reshape to (64, dim): the grid's tokens, row by row
      -> class_token       `ClassToken`: one learned token prepended: N = 1 + 8 x 8 = 65 tokens
      -> position_embedding `PositionEmbedding`: one learned vector added per token
      -> encoder1 ... encoder4, the transformer blocks, each pre-norm:
             x = x + MHA(LN(x))      encoder{i}_norm1 -> encoder{i}_attention -> encoder{i}_add
             x = x + MLP(LN(x))      encoder{i}_norm2 -> encoder{i}_mlp1 (GELU) -> encoder{i}_mlp2
                                     -> encoder{i}_out, the block's output (batch, 65, dim)
      -> final_norm        LayerNormalization
      -> class_token_crop, class_token_readout: the class token's features (batch, dim)
      -> logits            Dense(6), no softmax

Token 0 is the class token (the only prefix token); tokens 1..64 are the grid's cells in
row-major order: token ``1 + r * 8 + c`` covers image pixels ``8r..8r+7`` x ``8c..8c+7``.

Why a stem: a plain ViT, whose patch embedding reads 8 x 8 pixel patches, does not learn this
world in minutes. Its classes differ only in how edges relate to one another (colour, size,
position and rotation are random), so nothing inside one patch tells the classes apart: a
"bag of patches" (per-patch features, pooled) stays at chance, for 8 x 8 and for 4 x 4
patches alike, and the plain ViT (8 x 8 or 4 x 4 patches, learning rates 3e-4 and 1e-3, up to
72,000 images) stayed at chance too (measured; see data/README.md). The convolutional stem
gives every token the local shape features a CNN's first stages compute, and the
transformer does the rest: 98.7% accuracy after 10 epochs. The blocks, the tokens, the class token
and the attention are those of any ViT.

The two custom layers are registered for Keras serialization (package ``camutils``), so a
saved ``.keras`` file of the model loads once ``camutils.course.vit`` is imported (this
module imports Keras: the rest of the course package imports it only when it builds a ViT).

**Attention scores without rebuilding the model.** A `keras.layers.MultiHeadAttention` first
called without ``return_attention_scores`` cannot hand its scores to a new functional graph
on Keras 3.15 ("Output with path `1` is not connected to `inputs`"; Keras 3.3 allows it). On
both, it can be called again on tensors, eagerly or inside a ``tf.function``:
`attention_scores` runs the model once to get every block's attention input (the output of
``encoder{i}_norm1``: query, key and value alike in self-attention), then calls each block's
attention layer on it with ``return_attention_scores=True``. Tested on Keras 3.3.3 and
3.15.1: the attention output it returns equals the model's own.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .shapes import IMAGE_SIZE, SHAPE_CLASSES
from .trunk import build_trunk

__all__ = ["ClassToken", "PositionEmbedding", "build_vit", "attention_layers",
           "attention_scores", "PATCH_SIZE", "STEM_STRIDE", "PREFIX_TOKENS", "VIT_CAM_LAYER"]

PATCH_SIZE = 8
"""Image pixels per token side: 64 x 64 images give an 8 x 8 grid."""
STEM_STRIDE = 4
"""The stem's output (``block2_relu``) is 16 x 16: the patch embedding takes 2 x 2 of it."""
PREFIX_TOKENS = 1
"""Tokens before the patch tokens: the class token alone (no register tokens)."""
DIM, DEPTH, HEADS, MLP_DIM = 64, 4, 4, 128
VIT_CAM_LAYER = f"encoder{DEPTH - 1}_out"
"""The default layer to explain: the output of the last block but one (the input of the last
block's attention). The last block's patch tokens reach the class score only through what
the class token reads from them in that block, which this layer's tokens feed."""


@keras.saving.register_keras_serializable(package="camutils")
class ClassToken(keras.layers.Layer):
    """Prepends one learned token to a sequence: ``(batch, n, dim) -> (batch, 1 + n, dim)``.

    The class token starts at zero and learns to gather, through attention, what the head
    needs; the classifier reads its features after the last block.
    """

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros",
                                     name="token")

    def call(self, tokens):
        shape = ops.shape(tokens)
        token = ops.broadcast_to(ops.cast(self.token, tokens.dtype), (shape[0], 1, shape[2]))
        return ops.concatenate([token, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        count = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], count, input_shape[2])


@keras.saving.register_keras_serializable(package="camutils")
class PositionEmbedding(keras.layers.Layer):
    """Adds one learned vector per token position: ``(batch, n, dim)``, shape unchanged."""

    def build(self, input_shape):
        self.embedding = self.add_weight(
            shape=(1, input_shape[1], input_shape[2]),
            initializer=keras.initializers.RandomNormal(stddev=0.02), name="embedding")

    def call(self, tokens):
        return tokens + ops.cast(self.embedding, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def build_vit(num_classes: int = len(SHAPE_CLASSES), input_size: tuple[int, int] = IMAGE_SIZE,
              dim: int = DIM, depth: int = DEPTH, heads: int = HEADS, mlp_dim: int = MLP_DIM,
              name: str = "shapes_vit"):
    """The untrained course ViT (layer names in the module's docstring); outputs logits."""
    if input_size[0] % PATCH_SIZE or input_size[1] % PATCH_SIZE:
        raise ValueError(f"The input size {input_size} must be a multiple of the patch size "
                         f"{PATCH_SIZE}.")
    grid = (input_size[0] // PATCH_SIZE, input_size[1] // PATCH_SIZE)
    inputs = keras.Input((*input_size, 3), name="image")
    stem, _ = build_trunk(inputs, last="block2")
    step = PATCH_SIZE // STEM_STRIDE
    x = layers.Conv2D(dim, step, strides=step, name="patch_embedding")(stem)
    x = layers.Reshape((grid[0] * grid[1], dim), name="patch_tokens")(x)
    x = ClassToken(name="class_token")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    for i in range(1, depth + 1):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_norm1")(x)
        y = layers.MultiHeadAttention(heads, dim // heads, name=f"encoder{i}_attention")(y, y)
        x = layers.Add(name=f"encoder{i}_add")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_norm2")(x)
        y = layers.Dense(mlp_dim, activation="gelu", name=f"encoder{i}_mlp1")(y)
        y = layers.Dense(dim, name=f"encoder{i}_mlp2")(y)
        x = layers.Add(name=f"encoder{i}_out")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = layers.Cropping1D((0, grid[0] * grid[1]), name="class_token_crop")(x)
    x = layers.Flatten(name="class_token_readout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def attention_layers(model) -> list:
    """The model's ``MultiHeadAttention`` layers, first block first."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.MultiHeadAttention)]


def attention_scores(model, inputs, batch_size: int = 256) -> list[np.ndarray]:
    """Every block's attention probabilities, one ``(n, heads, N, N)`` float32 array per block.

    Row ``q`` of a head's matrix is how query token ``q`` spreads its attention over the
    ``N`` tokens (each row sums to 1). Works on the trained model as it is (see the module's
    docstring): its layers named ``encoder{i}_norm1`` give each attention layer's input.
    """
    blocks = attention_layers(model)
    norms = [model.get_layer(layer.name.replace("_attention", "_norm1")) for layer in blocks]
    probe = keras.Model(model.input, [norm.output for norm in norms])
    out: list[list[np.ndarray]] = [[] for _ in blocks]
    for start in range(0, len(inputs), batch_size):
        batch = np.asarray(inputs[start:start + batch_size], np.float32)
        queries = probe(batch, training=False)
        for k, (layer, query) in enumerate(zip(blocks, queries)):
            _, scores = layer(query, query, return_attention_scores=True, training=False)
            out[k].append(np.asarray(scores, np.float32))
    return [np.concatenate(parts) for parts in out]
