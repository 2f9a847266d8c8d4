"""What every CAM method returns: an `Explanation`; and `TopK`, the top-k target."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Explanation", "TopK"]


@dataclass(frozen=True)
class TopK:
    """Target: the ``k`` highest logits of each image, explained one map per class.

        explanation = camutils.explain(model, images, target=TopK(3))
        explanation.maps.shape        # (N, 3, H, W), best class first
        explanation.class_index       # (N, 3)
    """

    k: int = 5

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"TopK(k) needs a positive int k, got {self.k!r}.")


@dataclass
class Explanation:
    """Class activation maps for a batch of images, and what they explain.

    With one target per image (``target`` None, an int, a name or one per image):

    Attributes:
        maps: float32 ``(N, H, W)`` in [0, 1], at the model's input size: each raw map
            upsampled (bilinear) and min-max normalised on its own; a constant map (all
            zero included) becomes all zero. Maps of different images are not on one scale:
            compare `raw` for that.
        raw: float32 ``(N, h, w)``: the map at the layer's resolution after the ReLU, before
            upsampling and normalisation (what is compared with other libraries). Guided
            methods have no layer resolution: their raw maps are ``(N, H, W)``.
        class_index: int ``(N,)``: the class each map explains.
        score: float ``(N,)``: that class's logit (beneath the softmax, if the model has one).
        layer: the explained layer's path (``"name"`` or ``"outer/inner"``); ``"input"``
            for guided backpropagation.
        method: the method's name (``"gradcam"``, ...).
        images: the uint8 images the network saw, when known (the zoo sets them), else None.
        class_names: the model's class names, when known.
        extras: method-specific arrays (guided methods: ``"gradients"``, the per-channel
            input gradients ``(N, H, W, C)``).

    With ``target=TopK(k)``, every per-target field gains a ``k`` axis after the batch:
    ``maps (N, k, H, W)``, ``raw (N, k, h, w)``, ``class_index`` and ``score`` ``(N, k)``.
    """

    maps: np.ndarray
    raw: np.ndarray
    class_index: np.ndarray
    score: np.ndarray
    layer: str
    method: str
    images: np.ndarray | None = None
    class_names: list[str] | None = None
    extras: dict = field(default_factory=dict)

    @property
    def top_k(self) -> bool:
        """Whether the maps have a top-k axis (``(N, k, H, W)``)."""
        return self.maps.ndim == 4

    @property
    def labels(self):
        """The target class name of each map (a list; a list of lists for top-k), or None."""
        if self.class_names is None:
            return None
        names = self.class_names
        return [
            [names[int(i)] for i in row] if np.ndim(row) else names[int(row)]
            for row in self.class_index
        ]

    def __len__(self) -> int:
        return len(self.maps)

    def __repr__(self) -> str:
        labels = self.labels
        shown = "" if labels is None else f", labels={labels[:4]}{'...' if len(labels) > 4 else ''}"
        return (
            f"Explanation(method={self.method!r}, layer={self.layer!r}, "
            f"maps={self.maps.shape}, raw={self.raw.shape}, "
            f"class_index={self.class_index.tolist()[:4]}{'...' if len(self) > 4 else ''}"
            f"{shown})"
        )
