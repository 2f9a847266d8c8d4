"""camutils.samples: every sample loads offline as RGB uint8, with a credit in data/README.md."""

from importlib.resources import files

import numpy as np
import pytest

import camutils
from camutils import samples

EXPECTED = {"chelsea", "coffee", "astronaut", "rocket", "motorcycle", "china", "flower", "grace_hopper"}


def test_the_promised_samples_are_there():
    assert set(camutils.sample_names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_loads_as_rgb_uint8(name):
    image = camutils.load_sample(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 256, "too small to crop to a 224 network input"
    assert image.std() > 10, "not a photo"
    np.testing.assert_array_equal(camutils.load_image(name), image)


def test_unknown_sample_lists_close_names():
    with pytest.raises(ValueError, match="'coffee'") as info:
        camutils.load_sample("cofee")
    assert "Samples:" in str(info.value)


def test_credits_are_in_the_data_readme():
    readme = files("camutils.data").joinpath("README.md").read_text()
    for name, credit in samples.credits().items():
        assert name in readme
        assert credit in readme, f"the credit of {name} is not in data/README.md"
