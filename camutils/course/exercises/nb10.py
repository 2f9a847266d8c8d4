"""Notebook 10 (CAM on vision transformers): a token sequence as a grid, Grad-CAM on the
token grid from tokens and gradients, which layers' maps are all zero, and attention
rollout, each by hand."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise

# --------------------------------------------------------------------------- shared helpers


def _grid(tokens, prefix: int, height: int, width: int) -> np.ndarray:
    """``(n, prefix + height * width, C)`` -> ``(n, height, width, C)``: the prefix dropped."""
    tokens = np.asarray(tokens)
    return tokens[:, prefix:].reshape(len(tokens), height, width, tokens.shape[-1])


def _tokens(seed: int, n: int = 3, prefix: int = 1, grid=(4, 5), channels: int = 6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, prefix + grid[0] * grid[1], channels)).astype(np.float32)


def _close(answer, expected, what: str, rtol: float = 1e-4) -> None:
    answer = np.asarray(answer, np.float64)
    expected = np.asarray(expected, np.float64)
    if answer.shape != expected.shape:
        raise Wrong(f"{what} has shape {answer.shape}; expected {expected.shape}.")
    scale = max(float(np.abs(expected).max()), 1e-12)
    error = float(np.abs(answer - expected).max()) / scale
    if error > rtol:
        raise Wrong(f"{what} differs from the reference by {error:.1%} of its largest value.")


# --------------------------------------------------------------------------- 10.tokens_to_grid


def _demo_tokens_to_grid():
    def right(tokens, prefix, height, width):
        tokens = np.asarray(tokens)
        return tokens[:, prefix:].reshape(len(tokens), height, width, tokens.shape[-1])

    def keeps_the_class_token(tokens, prefix, height, width):  # drops the last tokens instead
        tokens = np.asarray(tokens)
        return tokens[:, :height * width].reshape(len(tokens), height, width, tokens.shape[-1])

    return right, keeps_the_class_token, {}


@exercise(
    "10.tokens_to_grid",
    "From tokens to a feature map",
    """
    A transformer layer's output is `(n, N, C)`: `N = prefix + height * width` tokens of `C`
    features, the prefix tokens first (here one, the class token), then the grid's tokens
    row by row. Write `tokens_to_grid(tokens, prefix, height, width)` that returns the
    grid as a feature map `(n, height, width, C)`, the prefix tokens dropped.
    The checker tries it with one and with two prefix tokens, on a grid that is not square.
    """,
    hints=[
        "Slice the token axis (axis 1) to drop the first `prefix` tokens.",
        "Then `reshape(n, height, width, C)`: numpy's row-major order puts token "
        "`prefix + r * width + c` at row r, column c, as the patch embedding laid them out.",
    ],
    solution="""
    def tokens_to_grid(tokens, prefix, height, width):
        tokens = np.asarray(tokens)
        return tokens[:, prefix:].reshape(len(tokens), height, width, tokens.shape[-1])
    """,
    demo=_demo_tokens_to_grid,
    minutes=5,
    reference=_grid,
)
def check_tokens_to_grid(answer):
    for prefix, grid in ((1, (4, 5)), (2, (3, 2))):
        tokens = _tokens(7 + prefix, prefix=prefix, grid=grid)
        got = np.asarray(answer(tokens, prefix, *grid))
        expected = _grid(tokens, prefix, *grid)
        if got.shape != expected.shape:
            raise Wrong(f"With {prefix} prefix token(s) and a {grid[0]} x {grid[1]} grid the "
                        f"result has shape {got.shape}; expected {expected.shape}.")
        if not np.array_equal(got, expected):
            if np.array_equal(got, tokens[:, :grid[0] * grid[1]].reshape(expected.shape)):
                raise Wrong("The grid starts with the prefix token: drop the first `prefix` "
                            "tokens, not the last ones.")
            raise Wrong("The values are not in the right cells: token prefix + r * width + c "
                        "belongs at row r, column c.")
    return "Every CAM rule can now read a transformer layer as it reads a feature map."


# --------------------------------------------------------------------------- 10.gradcam_on_tokens


def _gradcam_tokens(tokens, gradients, prefix: int, height: int, width: int) -> np.ndarray:
    """Grad-CAM on the token grid: ``ReLU(sum_k mean_ij(g^k_ij) A^k)`` over the grid only."""
    a = _grid(tokens, prefix, height, width).astype(np.float64)
    g = _grid(gradients, prefix, height, width).astype(np.float64)
    weights = g.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0.0)


def _demo_gradcam_on_tokens():
    def right(tokens, gradients, prefix, height, width):
        n, _, c = np.shape(tokens)
        a = np.asarray(tokens)[:, prefix:].reshape(n, height, width, c)
        g = np.asarray(gradients)[:, prefix:].reshape(n, height, width, c)
        return np.maximum(np.einsum("nhwc,nc->nhw", a, g.mean(axis=(1, 2))), 0)

    def averages_the_class_token_too(tokens, gradients, prefix, height, width):
        n, _, c = np.shape(tokens)
        a = np.asarray(tokens)[:, prefix:].reshape(n, height, width, c)
        weights = np.asarray(gradients).mean(axis=1)
        return np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0)

    rng = np.random.default_rng(3)
    tokens = np.abs(rng.standard_normal((2, 1 + 12, 5)))
    gradients = rng.standard_normal((2, 1 + 12, 5))
    gradients[:, 0] *= 40  # the class token's gradient dwarfs the grid's
    return right, averages_the_class_token_too, {"tokens": tokens, "gradients": gradients,
                                                 "prefix": 1, "grid": (3, 4)}


@exercise(
    "10.gradcam_on_tokens",
    "Grad-CAM on the token grid",
    """
    The cell above gave you, for each image, the tokens `A` of a layer `(n, N, C)` and the
    gradients `g` of the image's class logit with respect to them (same shape), from one
    `tf.GradientTape`. Write `gradcam_tokens(tokens, gradients, prefix, height, width)` that
    returns Grad-CAM's maps on the grid `(n, height, width)`: the weight of channel `k` is
    its gradient's mean over the grid's cells, the map the ReLU of the weighted sum of the
    channels. The prefix tokens are no cells of the grid: leave them out of both.
    Check it with `ex.check(gradcam_tokens, tokens=A, gradients=g, prefix=1, grid=(8, 8))`.
    """,
    hints=[
        "`ex.reference(tokens, prefix, height, width)` of the exercise before, or your own "
        "`tokens_to_grid`, turns both arrays into feature maps.",
        "Weights: `g.mean(axis=(1, 2))`, one per image and channel; the map: "
        "`np.einsum('nhwc,nc->nhw', a, weights)`, then `np.maximum(..., 0)`.",
    ],
    solution="""
    def gradcam_tokens(tokens, gradients, prefix, height, width):
        n, _, c = np.shape(tokens)
        a = np.asarray(tokens)[:, prefix:].reshape(n, height, width, c)
        g = np.asarray(gradients)[:, prefix:].reshape(n, height, width, c)
        return np.maximum(np.einsum("nhwc,nc->nhw", a, g.mean(axis=(1, 2))), 0)
    """,
    demo=_demo_gradcam_on_tokens,
    minutes=10,
    reference=_gradcam_tokens,
)
def check_gradcam_on_tokens(answer, tokens=None, gradients=None, prefix=1, grid=(8, 8)):
    if tokens is None or gradients is None:
        raise Wrong("Pass the arrays: ex.check(gradcam_tokens, tokens=A, gradients=g, "
                    "prefix=1, grid=(8, 8)).")
    expected = _gradcam_tokens(tokens, gradients, prefix, *grid)
    got = answer(tokens, gradients, prefix, *grid)
    _close(got, expected, "Your map")
    return "Grad-CAM on a transformer: the same rule as on a CNN, once the grid is found."


# --------------------------------------------------------------------------- 10.zero_layers


def _demo_zero_layers():
    measured = {"encoder3_out": 0.0, "encoder4_norm1": 0.0, "encoder4_attention": 1.0,
                "encoder4_out": 1.0, "final_norm": 1.0}
    return (["encoder4_attention", "encoder4_out", "final_norm"], ["final_norm"],
            {"zero_share": measured})


@exercise(
    "10.zero_layers",
    "Predict first: where does Grad-CAM see nothing?",
    """
    The head reads the class token alone, after the last block. Predict: at which of the
    layers in `candidates` will Grad-CAM's map be zero everywhere, for every image? Answer
    with a list of layer names, then let the measurement decide:
    `ex.check(answer, zero_share=zero_share)`, where `zero_share[layer]` is the share of
    test images whose map at that layer is all zero.
    """,
    hints=[
        "Grad-CAM weighs the grid's tokens by the gradient of the class logit. Which tokens "
        "can still change the class token after a given layer?",
        "A token changes another token only in an attention layer. After the last block's "
        "attention, every layer works on each token alone.",
    ],
    solution="""
    answer = ["encoder4_attention", "encoder4_out", "final_norm"]
    """,
    demo=_demo_zero_layers,
    minutes=3,
    giveaways=[
        r"after the last (block's )?attention[^.\n]{0,80}(zero|nothing|no path|never reach)",
        r"(zero|nothing)[^.\n]{0,60}after the last (block's )?attention",
    ],
)
def check_zero_layers(answer, zero_share=None):
    if not zero_share:
        raise Wrong("Pass the measurement: ex.check(answer, zero_share=zero_share).")
    if isinstance(answer, str):
        answer = [answer]
    names = {str(a) for a in answer}
    unknown = names - set(zero_share)
    if unknown:
        raise Wrong(f"{', '.join(sorted(unknown))} not among the measured layers: "
                    f"{', '.join(zero_share)}.")
    zero = {layer for layer, share in zero_share.items() if share == 1.0}
    if names - zero:
        layer = sorted(names - zero)[0]
        raise Wrong(f"At {layer!r} {1 - zero_share[layer]:.0%} of the maps are not zero: its "
                    "grid tokens still reach the class token through a later attention.")
    if zero - names:
        layer = sorted(zero - names)[0]
        raise Wrong(f"At {layer!r} every map is zero: which attention could still carry its "
                    "patch tokens to the class token?")
    return ("After the last attention the patch tokens reach the logits by no path, so the "
            "gradient there is zero: explain a layer before it.")


# --------------------------------------------------------------------------- 10.rollout


def _rollout(attentions, prefix: int, height: int, width: int) -> np.ndarray:
    """Abnar and Zuidema 2020: mean over heads, half identity, rows normalised, multiplied
    from the first layer up; the class token's row over the grid tokens."""
    flow = None
    for attention in attentions:
        a = np.asarray(attention, np.float64).mean(axis=1)
        a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
        a = a / a.sum(axis=-1, keepdims=True)
        flow = a if flow is None else a @ flow
    return flow[:, 0, prefix:].reshape(len(flow), height, width)


def _demo_rollout():
    def right(attentions, prefix, height, width):
        flow = None
        for attention in attentions:
            a = np.asarray(attention).mean(axis=1)
            a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
            a = a / a.sum(axis=-1, keepdims=True)
            flow = a if flow is None else a @ flow
        return flow[:, 0, prefix:].reshape(len(flow), height, width)

    def without_the_residual(attentions, prefix, height, width):
        flow = None
        for attention in attentions:
            a = np.asarray(attention).mean(axis=1)
            flow = a if flow is None else a @ flow
        return flow[:, 0, prefix:].reshape(len(flow), height, width)

    rng = np.random.default_rng(5)
    logits = rng.standard_normal((3, 2, 2, 10, 10)) * 2
    attentions = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return right, without_the_residual, {"attentions": list(attentions), "prefix": 1,
                                         "grid": (3, 3)}


@exercise(
    "10.rollout",
    "Attention rollout, by hand",
    """
    `attentions` holds one array `(n, heads, N, N)` per block, first block first: row `q`
    of a head's matrix is how token `q` spreads its attention over the `N` tokens. Write
    `rollout(attentions, prefix, height, width)` as Abnar and Zuidema define it: average
    each layer's heads, add the residual connection as `0.5 A + 0.5 I` (rows normalised to
    sum to 1), multiply the layers from the first up (`R = Ã_L ... Ã_1`), and return the
    class token's row (row 0) over the grid's tokens, as `(n, height, width)` maps.
    Check it with `ex.check(rollout, attentions=attentions, prefix=1, grid=(8, 8))`.
    """,
    hints=[
        "`np.eye(N)` is `I`; `a.mean(axis=1)` averages the heads of `(n, heads, N, N)`.",
        "Keep a running product: `flow = a` for the first layer, then `flow = a @ flow` (the "
        "later layer on the left). The map is `flow[:, 0, prefix:]`, reshaped.",
    ],
    solution="""
    def rollout(attentions, prefix, height, width):
        flow = None
        for attention in attentions:
            a = np.asarray(attention).mean(axis=1)
            a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
            a = a / a.sum(axis=-1, keepdims=True)
            flow = a if flow is None else a @ flow
        return flow[:, 0, prefix:].reshape(len(flow), height, width)
    """,
    demo=_demo_rollout,
    minutes=10,
    reference=_rollout,
)
def check_rollout(answer, attentions=None, prefix=1, grid=(8, 8)):
    if attentions is None:
        raise Wrong("Pass the attention matrices: ex.check(rollout, attentions=attentions, "
                    "prefix=1, grid=(8, 8)).")
    expected = _rollout(attentions, prefix, *grid)
    got = np.asarray(answer(attentions, prefix, *grid))
    if got.shape == expected.shape and not np.allclose(got, expected, rtol=1e-3, atol=1e-6):
        plain = None
        for attention in attentions:
            a = np.asarray(attention, np.float64).mean(axis=1)
            plain = a if plain is None else a @ plain
        if np.allclose(got, plain[:, 0, prefix:].reshape(expected.shape), rtol=1e-3):
            raise Wrong("That is the product of the attention matrices alone: the residual "
                        "connection carries half of each token past the attention "
                        "(0.5 A + 0.5 I).")
    _close(got, expected, "Your rollout", rtol=1e-3)
    return "Rollout follows the attention through every block, the residual path included."
