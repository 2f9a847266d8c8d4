"""What every CAM method returns: an `Explanation`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Explanation"]


@dataclass
class Explanation:
    """Class activation maps for a batch of images, and what they explain.

    With one target per image (``target`` None, an int, a name, one per image, or a
    ready-made target of `camutils.targets` that gives one map per image):

    Attributes:
        maps: float32 ``(N, H, W)`` in [0, 1], at the model's input size: each raw map
            upsampled (bilinear) and min-max normalised on its own; a constant map (all
            zero included) becomes all zero. Maps of different images are not on one scale:
            compare `raw` for that.
        raw: float32 ``(N, h, w)``: the map at the layer's resolution after the ReLU, before
            upsampling and normalisation (what is compared with other libraries). Guided
            methods have no layer resolution: their raw maps are ``(N, H, W)``.
        class_index: int ``(N,)``: the class (label, unit) each map explains; -1 where the
            target has none (a similarity, a function, a label slot left empty).
        score: float ``(N,)``: the explained score of each map: by default the class's logit
            (beneath the softmax, if the model has one), else the target's score.
        layer: the explained layer's path (``"name"`` or ``"outer/inner"``); ``"input"``
            for guided backpropagation.
        method: the method's name (``"gradcam"``, ...).
        images: the uint8 images the network saw, when known (the zoo sets them), else None.
        class_names: the model's class names, when known.
        extras: method-specific arrays (guided methods: ``"gradients"``, the per-channel
            input gradients ``(N, H, W, C)``).
        target: what the maps explain, in a few words (``"Class(the top class, logit)"``,
            ``"Region('circle', the model's predicted mask)"``: `camutils.targets`).

    With a target of several maps per image (``TopK(k)``, ``Labels(...)``), every per-target
    field gains a ``k`` axis after the batch: ``maps (N, k, H, W)``, ``raw (N, k, h, w)``,
    ``class_index`` and ``score`` ``(N, k)``.
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
    target: str | None = None

    @property
    def top_k(self) -> bool:
        """Whether the maps have a top-k axis (``(N, k, H, W)``)."""
        return self.maps.ndim == 4

    @property
    def labels(self):
        """The target class name of each map (a list; a list of lists for several maps per
        image; None for a map whose target has no class), or None without class names."""
        if self.class_names is None:
            return None
        names = self.class_names

        def name(index):
            return names[int(index)] if 0 <= int(index) < len(names) else None

        return [[name(i) for i in row] if np.ndim(row) else name(row)
                for row in self.class_index]

    def __len__(self) -> int:
        return len(self.maps)

    def __repr__(self) -> str:
        labels = self.labels
        shown = "" if labels is None else f", labels={labels[:4]}{'...' if len(labels) > 4 else ''}"
        return (
            f"Explanation(method={self.method!r}, layer={self.layer!r}, "
            f"maps={self.maps.shape}, raw={self.raw.shape}, "
            f"class_index={self.class_index.tolist()[:4]}{'...' if len(self) > 4 else ''}"
            f"{shown}{'' if self.target is None else ', target=' + repr(self.target)})"
        )
