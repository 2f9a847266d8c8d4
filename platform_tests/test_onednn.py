"""The shipped task models and the ViT predict the same with TensorFlow's oneDNN kernels on
and off (`make platforms`; CI also runs every notebook with oneDNN on, `make nbtest ONEDNN=on`).
Learners' machines may have either setting, and the models were trained with it on."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from camutils.course import models as cm
from camutils.course.shapes import make_shapes

REPO = Path(__file__).resolve().parent.parent
FRESH_SEED = 626_262   # used by no training run and no unit test


# ---------------------------------------------------------------------------- oneDNN on and off
# The ViT, and the two models with layers the others lack (up-sampling, concatenation); the
# multi-label and size models are the GAP network's trunk and head.
ONEDNN_VARIANTS = ("vit", "segmenter", "detector")
_PREDICT = """
import json, sys
import numpy as np
from camutils.course.models import load_course_model
from camutils.course.shapes import make_shapes
images = make_shapes(48, seed=int(sys.argv[1])).images
out = {}
for variant in sys.argv[3:]:
    zoo = load_course_model(variant)
    out[variant] = zoo.predict_inputs(zoo.normalize(images), batch_size=48)
np.savez(sys.argv[2], **out)
"""


def test_predictions_agree_with_onednn_on_and_off(tmp_path):
    """The shipped models were trained with oneDNN on; the course runs with it off (and
    learners' machines may have either). Loaded in a process with oneDNN on, the ViT, the
    segmenter and the detector predict what this process (oneDNN off) predicts, up to float32
    rounding: outputs within 1e-3 (logits and the detector's pixel sizes span 15 to 45; the
    two settings differ by 3e-6 to 8e-6 on this project's CPU, other CPUs round differently,
    hence the margin; a wrong kernel or layer would differ by far more), and the same top
    class wherever the top two differ by more than that."""
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0"
    path = tmp_path / "onednn_on.npz"
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", _PREDICT, str(FRESH_SEED), str(path), *ONEDNN_VARIANTS],
                   check=True, cwd=REPO, env=env, timeout=300)
    on = np.load(path)
    images = make_shapes(48, seed=FRESH_SEED).images
    for variant in ONEDNN_VARIANTS:
        zoo = cm.load_course_model(variant)
        off = zoo.predict_inputs(zoo.normalize(images), batch_size=48)
        np.testing.assert_allclose(on[variant], off, atol=1e-3, rtol=1e-5, err_msg=variant)
        if zoo.task == "classification":
            top2 = np.sort(off, axis=-1)[..., -2:]
            clear = top2[..., 1] - top2[..., 0] > 1e-3
            assert (on[variant].argmax(-1) == off.argmax(-1))[clear].all()
