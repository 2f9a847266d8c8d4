"""Test-wide settings: quiet TensorFlow, headless matplotlib, deterministic seeds; models that
several test modules share, built once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Close matplotlib figures after each test so memory does not grow."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 with its ImageNet weights, built once for every test that needs it
    (tests must not change it: they explain and score it, never train or re-weight it)."""
    import camutils

    return camutils.load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def course_manifest():
    """data/course_models.json, read once."""
    from camutils.course.models import read_manifest

    return read_manifest()


@pytest.fixture(scope="session")
def course_zoo():
    """``course_zoo("gap")``: a course model from its shipped weights, loaded once per session
    (tests must not change it)."""
    import camutils

    loaded = {}

    def get(variant):
        if variant not in loaded:
            loaded[variant] = camutils.load_model(f"shapes_{variant}")
        return loaded[variant]

    return get
