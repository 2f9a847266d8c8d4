"""Offline sample photos: real photographs that installed packages ship, with their credits.

    camutils.sample_names()          # ['astronaut', 'chelsea', ...]
    camutils.load_sample("chelsea")  # RGB uint8 (300, 451, 3)

No photo is downloaded: each comes from a file inside scikit-image, scikit-learn or
matplotlib. The credits are also listed in data/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .suggestions import did_you_mean

__all__ = ["Sample", "SAMPLES", "sample_names", "load_sample", "credits", "suggest"]


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    source: str  # the package and function or file that ships it
    credit: str
    load: Callable[[], np.ndarray]


def _skimage(function: str, pick=None) -> Callable[[], np.ndarray]:
    def load():
        import skimage.data

        image = getattr(skimage.data, function)()
        return image if pick is None else image[pick]

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load():
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def load():
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data(filename) as f:
            return matplotlib.image.imread(f, format=filename.rsplit(".", 1)[-1])

    return load


_CC0 = "no copyright restrictions (CC0)"
SAMPLES: dict[str, Sample] = {s.name: s for s in [
    Sample("chelsea", "a tabby cat", "scikit-image, skimage.data.chelsea()",
           f"Chelsea the cat; photograph by Stefan van der Walt, {_CC0}.", _skimage("chelsea")),
    Sample("coffee", "a cup of espresso on a saucer", "scikit-image, skimage.data.coffee()",
           f"Coffee cup, courtesy of Pikolo Espresso Bar; photograph by Rachel Michetti, {_CC0}.",
           _skimage("coffee")),
    Sample("astronaut", "an astronaut in front of a flag", "scikit-image, skimage.data.astronaut()",
           "Astronaut Eileen Collins; NASA Great Images database, public domain.",
           _skimage("astronaut")),
    Sample("rocket", "a rocket at lift-off", "scikit-image, skimage.data.rocket()",
           "Launch of DSCOVR on Falcon 9; SpaceX, released into the public domain.",
           _skimage("rocket")),
    Sample("motorcycle", "a motorcycle in a workshop (left view of a stereo pair)",
           "scikit-image, skimage.data.stereo_motorcycle()[0]",
           "Middlebury 2014 stereo benchmark (Scharstein et al., GCPR 2014), "
           "down-sampled by scikit-image.", _skimage("stereo_motorcycle", pick=0)),
    Sample("china", "a temple roof and trees", "scikit-learn, load_sample_image('china.jpg')",
           "China; flickr user danielbuechele, CC BY 2.0.", _sklearn("china.jpg")),
    Sample("flower", "a flower close up", "scikit-learn, load_sample_image('flower.jpg')",
           "Flower; flickr user vultilion, CC BY 2.0.", _sklearn("flower.jpg")),
    Sample("grace_hopper", "a portrait in naval uniform",
           "matplotlib, sample_data/grace_hopper.jpg",
           "Rear Admiral Grace Hopper; U.S. Navy photograph, public domain.",
           _matplotlib("grace_hopper.jpg")),
]}


def sample_names() -> list[str]:
    """The names `load_sample` (and `camutils.load_image`) accept."""
    return list(SAMPLES)


def suggest(name: str) -> str:
    """A sentence suggesting sample names close to ``name`` (empty when none is close)."""
    return did_you_mean(name, SAMPLES, cutoff=0.5, what="the sample")


def load_sample(name: str) -> np.ndarray:
    """Load a sample photo by name as RGB uint8 ``(height, width, 3)``.

    Every sample ships as RGB uint8 already (checked here, so that this module needs no
    image conversion and `camutils.images` can load samples by name without a cycle).
    """
    if name not in SAMPLES:
        raise ValueError(
            f"Unknown sample {name!r}.{suggest(name)} Samples: {', '.join(SAMPLES)}."
        )
    image = np.ascontiguousarray(SAMPLES[name].load())
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise RuntimeError(f"The sample {name!r} did not load as an RGB uint8 image (got "
                           f"{image.dtype} {image.shape}): its package has changed it.")
    return image


def credits() -> dict[str, str]:
    """Each sample's credit line."""
    return {name: s.credit for name, s in SAMPLES.items()}
