"""Token grids: a transformer layer's output ``(batch, tokens, features)`` read as a feature map.

    grid = infer_grid(65, (64, 64), patches=("patch_embedding", (8, 8)))
    grid.describe()          # '65 tokens: 1 prefix token, then an 8 x 8 grid (...)'
    grid.to_grid(tokens)     # (N, 65, C) -> (N, 8, 8, C): the prefix token dropped

A vision transformer cuts the image into patches, embeds each as a token, and usually puts a
few *prefix* tokens in front: a class token (ViT, DeiT), a distillation token (DeiT),
register tokens (DINOv2 with registers). So a layer of ``N`` tokens holds ``N = prefix +
h x w`` of them, the last ``h x w`` being the grid's cells in row-major order. Dropping the
prefix and reshaping the rest to ``(h, w, features)`` gives the feature map that every CAM
rule reads (`camutils.methods.feature_model.FeatureModel.to_grid`); the gradients pass
through the same step.

How the grid is found from the model (`infer_grid`), in this order:

1. the feature map just before the tokens: the output ``(h, w)`` of the last 4-D layer the
   model calls before the token layer (the patch embedding's convolution, in a model that
   builds its tokens with Keras layers), when ``N - h w`` is a plausible prefix (0 to
   `MAX_PREFIX` tokens, fewer than the grid's);
2. the input size: the grids ``h x w`` of square patches that tile the ``H x W`` input
   exactly (``H = P h``, ``W = P w``) with ``N - h w`` such a prefix. One fit is the grid;
   none, or several, is an error that names the token count and the grids that would fit,
   and says how to give it (`TokenOptions`: ``grid=(h, w)``, ``prefix_tokens=p``).

Explicit options win, and are checked against the token count.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenGrid", "TokenOptions", "MAX_PREFIX", "infer_grid", "fitting_grids",
           "is_token_sequence", "GRID_HELP", "PREFIX_HELP"]

#: The most prefix tokens inferred without being told (a class token, a distillation token
#: and registers stay well below it).
MAX_PREFIX = 16
#: What the explicit options mean (for the docstrings and the command line).
GRID_HELP = ("for a token layer (batch, tokens, features): its grid (rows, columns) of patch "
             "tokens. None: found from the model")
PREFIX_HELP = ("for a token layer: how many tokens come before the grid's (class, "
               "distillation, register tokens). None: found from the model")
_LISTED = 6


def is_token_sequence(shape) -> bool:
    """Whether a layer's static output shape is a token sequence ``(batch, N, features)``
    with a known ``N`` of at least 2."""
    return shape is not None and len(shape) == 3 and shape[1] is not None and shape[1] > 1


@dataclass(frozen=True)
class TokenOptions:
    """What the user said about a token layer's grid (None: infer it).

    Attributes:
        grid: ``(rows, columns)`` of the patch tokens.
        prefix: the number of tokens before them.
    """

    grid: tuple[int, int] | None = None
    prefix: int | None = None

    @classmethod
    def of(cls, grid=None, prefix_tokens=None) -> "TokenOptions":
        """Checked options (ValueError naming the argument for a bad value)."""
        import numpy as np

        if grid is not None:
            ok = isinstance(grid, (tuple, list, np.ndarray)) and len(grid) == 2 and all(
                isinstance(g, (int, np.integer)) and not isinstance(g, bool) and g >= 1
                for g in grid)
            if not ok:
                raise ValueError(f"grid must be (rows, columns), two positive ints, e.g. "
                                 f"grid=(14, 14); got {grid!r}.")
            grid = (int(grid[0]), int(grid[1]))
        if prefix_tokens is not None:
            if isinstance(prefix_tokens, bool) or not isinstance(
                    prefix_tokens, (int, np.integer)) or prefix_tokens < 0:
                raise ValueError(f"prefix_tokens must be a whole number of at least 0 (1 for a "
                                 f"class token); got {prefix_tokens!r}.")
            prefix_tokens = int(prefix_tokens)
        return cls(grid, prefix_tokens)

    @property
    def given(self) -> bool:
        return self.grid is not None or self.prefix is not None

    def __str__(self) -> str:
        parts = ([f"grid=({self.grid[0]}, {self.grid[1]})"] if self.grid else []) + (
            [f"prefix_tokens={self.prefix}"] if self.prefix is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class TokenGrid:
    """How a token layer's ``tokens`` are laid out: ``prefix`` tokens, then an ``height x
    width`` grid in row-major order; ``source`` says how that was found."""

    tokens: int
    prefix: int
    height: int
    width: int
    source: str

    def describe(self) -> str:
        article = "an" if str(self.height).startswith("8") or self.height in (11, 18) else "a"
        return (f"{self.tokens} tokens: {_plural(self.prefix, 'prefix token')}, then "
                f"{article} {self.height} x {self.width} grid ({self.source})")

    def to_grid(self, tokens):
        """``(N, tokens, C)`` -> ``(N, height, width, C)``: the prefix dropped, the rest
        reshaped (graph code; any dtype)."""
        import tensorflow as tf

        channels = tokens.shape[-1] if tokens.shape[-1] is not None else tf.shape(tokens)[-1]
        return tf.reshape(tokens[:, self.prefix:], [-1, self.height, self.width, channels])

    def from_grid(self, grid, prefix=None):
        """``(N, height, width, C)`` -> ``(N, tokens, C)``, after ``prefix`` ``(N, prefix,
        C)`` (needed when the layer has prefix tokens)."""
        import tensorflow as tf

        channels = grid.shape[-1] if grid.shape[-1] is not None else tf.shape(grid)[-1]
        tokens = tf.reshape(grid, [-1, self.height * self.width, channels])
        if self.prefix == 0:
            return tokens
        if prefix is None:
            raise ValueError("from_grid needs the layer's prefix tokens to rebuild its output.")
        return tf.concat([tf.cast(prefix, tokens.dtype), tokens], axis=1)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _fit_text(fit: tuple[int, int, int]) -> str:
    prefix, h, w = fit
    return f"{h} x {w} after {_plural(prefix, 'prefix token')}"


def fitting_grids(tokens: int, input_size=None, prefix: int | None = None,
                  max_prefix: int = MAX_PREFIX) -> list[tuple[int, int, int]]:
    """``(prefix, h, w)`` of every grid that ``tokens`` can hold: ``tokens = prefix + h w``,
    the prefix fewer than the grid's tokens (and at most ``max_prefix``, unless given),
    and, when the input's ``(H, W)`` is known, square patches that tile it exactly
    (``H = P h``, ``W = P w``); without it, square grids only. Fewest prefix tokens first."""
    known = input_size is not None and None not in tuple(input_size)
    prefixes = [prefix] if prefix is not None else range(0, min(max_prefix, tokens - 1) + 1)
    fits = []
    for p in prefixes:
        n = tokens - p
        if n < 1 or (prefix is None and p >= n):
            continue
        for h in range(1, n + 1):
            if n % h:
                continue
            w = n // h
            if known:
                H, W = (int(s) for s in input_size)
                if H % h or W % w or H // h != W // w:
                    continue
            elif h != w:
                continue
            fits.append((p, h, w))
    return fits


def _listing(fits) -> str:
    shown = "; ".join(_fit_text(f) for f in fits[:_LISTED])
    return shown + (f" (and {len(fits) - _LISTED} more)" if len(fits) > _LISTED else "")


def _size_text(input_size) -> str:
    if input_size is None or None in tuple(input_size):
        return "an input of unknown size (square grids only)"
    return f"the {input_size[0]} x {input_size[1]} input"


def infer_grid(tokens: int, input_size=None, patches=None, options: TokenOptions | None = None,
               where: str = "The layer") -> TokenGrid:
    """The grid of a layer of ``tokens`` tokens.

    Args:
        tokens: the layer's token count ``N``.
        input_size: the model's input ``(H, W)`` (None, or None sizes, where it is free).
        patches: ``(path, (h, w))`` of the feature map just before the tokens (the patch
            embedding's output), or None.
        options: what the user said (`TokenOptions`); checked against ``tokens``.
        where: the layer, for the messages (``"Layer 'blocks_3' of model 'vit'"``).

    Raises:
        ValueError: one line naming the token count and the grids that would fit, when no
            grid fits, when several do, or when the options contradict the count.
    """
    options = options or TokenOptions()
    how = "Say which with grid=(h, w) and prefix_tokens=p."
    if options.grid is not None:
        h, w = options.grid
        prefix = tokens - h * w if options.prefix is None else options.prefix
        if prefix < 0 or prefix + h * w != tokens:
            fits = fitting_grids(tokens, input_size, options.prefix)
            fits = fits or fitting_grids(tokens, input_size)
            needs = f"{h * w}" if options.prefix is None else f"{prefix} + {h} x {w} = {prefix + h * w}"
            raise ValueError(
                f"{where} has {tokens} tokens, but {options} needs {needs}; grids that fit "
                f"{tokens} tokens on {_size_text(input_size)}: {_listing(fits) or 'none'}.")
        return TokenGrid(tokens, prefix, h, w, f"given: {options}")
    if patches is not None:
        path, (h, w) = patches
        prefix = tokens - h * w
        wanted = options.prefix is None or options.prefix == prefix
        if wanted and 0 <= prefix <= max(MAX_PREFIX, options.prefix or 0) and prefix < h * w:
            return TokenGrid(tokens, prefix, h, w,
                             f"from the {h} x {w} feature map of layer {path!r} before the tokens")
    fits = fitting_grids(tokens, input_size, options.prefix)
    if len(fits) == 1:
        prefix, h, w = fits[0]
        if input_size is not None and None not in tuple(input_size):
            size = int(input_size[0]) // h
            source = f"from the {input_size[0]} x {input_size[1]} input: {size} x {size} pixel patches"
        else:
            source = "the only square grid"
        if options.prefix is not None:
            source += f", prefix_tokens={options.prefix} given"
        return TokenGrid(tokens, prefix, h, w, source)
    given = f" with {options}" if options.given else ""
    if not fits:
        every = fitting_grids(tokens, None if options.prefix is None else input_size)
        hint = f" (grids that {tokens} tokens would fill: {_listing(every)})" if every else ""
        raise ValueError(
            f"{where} has {tokens} tokens, which fit no grid{given} on "
            f"{_size_text(input_size)} (tokens = prefix + h x w, at most {MAX_PREFIX} prefix "
            f"tokens, square patches that tile the input){hint}. If it is a token grid, "
            f"{how[0].lower() + how[1:]}")
    raise ValueError(
        f"{where} has {tokens} tokens, which fit several grids{given} on "
        f"{_size_text(input_size)}: {_listing(fits)}. {how}")
