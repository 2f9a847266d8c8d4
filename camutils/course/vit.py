"""The course's vision transformer: a small, standard ViT of plain Keras layers.

    vit = camutils.load_model("shapes_vit")                 # trained on make_shapes images
    scores = attention_scores(vit.model, vit.normalize(images))  # one (n, heads, N, N) per block

It is the ViT of Dosovitskiy et al. (2021), small enough to train on a 2-core CPU, and laid out
the standard way so that its token grid can be found from the model alone:

    image (64 x 64 x 3)
      -> patch_embedding   Conv2D(dim, kernel = stride = patch size 8): an 8 x 8 grid of patches
      -> patch_tokens      Reshape to (64, dim): the grid's tokens, row by row
      -> class_token       `ClassToken`: one learned token prepended: N = 1 + 8 x 8 = 65 tokens
      -> position_embedding `PositionEmbedding`: one learned vector added per token
      -> block1 ... block4, each pre-norm:
             x = x + MHA(LN(x))      block{i}_norm1 -> block{i}_attention -> block{i}_add
             x = x + MLP(LN(x))      block{i}_norm2 -> block{i}_mlp1 (GELU) -> block{i}_mlp2
                                     -> block{i}_out, the block's output (batch, 65, dim)
      -> final_norm        LayerNormalization
      -> class_token_crop, class_token_readout: the class token's features (batch, dim)
      -> logits            Dense(6), no softmax

Token 0 is the class token (the only prefix token); tokens 1..64 are the patches in row-major
order: token ``1 + r * 8 + c`` is the patch of grid row ``r``, column ``c``.

The two custom layers are registered for Keras serialization (package ``camutils``), so a
saved ``.keras`` file of the model loads once ``camutils.course.vit`` is imported (this
module imports Keras: the rest of the course package imports it only when it builds a ViT).

**Attention scores without rebuilding the model.** A `keras.layers.MultiHeadAttention` first
called without ``return_attention_scores`` cannot hand its scores to a new functional graph
(Keras 3.15 raises "Output with path `1` is not connected to `inputs`"). It can, however, be
called again on tensors: `attention_scores` runs the model once to get every block's
attention input (the output of ``block{i}_norm1``: query, key and value alike in
self-attention), then calls each block's attention layer on it with
``return_attention_scores=True``. This works on Keras 3.3.3 and 3.15.1 (tested), and the
attention output it returns equals the model's own.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .shapes import IMAGE_SIZE, SHAPE_CLASSES

__all__ = ["ClassToken", "PositionEmbedding", "build_vit", "attention_layers",
           "attention_scores", "PATCH_SIZE", "PREFIX_TOKENS", "VIT_CAM_LAYER"]

PATCH_SIZE = 8
"""Side of a patch in pixels: 64 x 64 images give an 8 x 8 grid."""
PREFIX_TOKENS = 1
"""Tokens before the patch tokens: the class token alone (no register tokens)."""
DIM, DEPTH, HEADS, MLP_DIM = 64, 4, 4, 128
VIT_CAM_LAYER = f"block{DEPTH - 1}_out"
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
              patch_size: int = PATCH_SIZE, dim: int = DIM, depth: int = DEPTH,
              heads: int = HEADS, mlp_dim: int = MLP_DIM, name: str = "shapes_vit"):
    """The untrained course ViT (layer names in the module's docstring); outputs logits."""
    if input_size[0] % patch_size or input_size[1] % patch_size:
        raise ValueError(f"The input size {input_size} must be a multiple of the patch size "
                         f"{patch_size}.")
    grid = (input_size[0] // patch_size, input_size[1] // patch_size)
    inputs = keras.Input((*input_size, 3), name="image")
    x = layers.Conv2D(dim, patch_size, strides=patch_size, name="patch_embedding")(inputs)
    x = layers.Reshape((grid[0] * grid[1], dim), name="patch_tokens")(x)
    x = ClassToken(name="class_token")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    for i in range(1, depth + 1):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        y = layers.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attention")(y, y)
        x = layers.Add(name=f"block{i}_add")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(x)
        y = layers.Dense(mlp_dim, activation="gelu", name=f"block{i}_mlp1")(y)
        y = layers.Dense(dim, name=f"block{i}_mlp2")(y)
        x = layers.Add(name=f"block{i}_out")([x, y])
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
    docstring): its layers named ``block{i}_norm1`` give each attention layer's input.
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
