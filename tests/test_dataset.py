"""camutils.dataset: explain_dataset's pipeline, shards, resume, distribution, and the audit.

Most tests run a tiny Keras model (saved to a file, so that subprocesses load the very same
weights) on a small folder of PNG and JPEG files, in this process. Three run TensorFlow in
subprocesses, as they must: a run killed in the middle of writing a shard; two logical CPU
devices (which must be configured before TensorFlow starts); and two workers on localhost.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

SIZE = (16, 16)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from _models import gap_model

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    gap_model(size=SIZE, channels=(6, 8), classes=5, seed=4).save(path)
    return path


@pytest.fixture(scope="module")
def model(model_file):
    import keras

    return keras.saving.load_model(model_file, compile=False)


def _write_images(folder: Path, count: int, seed: int = 0, broken=()) -> list[str]:
    """``count`` PNG and JPEG files of various sizes in two class folders, and a broken file
    at each position in ``broken``; the ids (relative paths) in sorted order."""
    import hostile_inputs as hostile

    from camutils.images import encode_image

    rng = np.random.default_rng(seed)
    for i in range(count):
        image = rng.integers(0, 256, (rng.integers(12, 40), rng.integers(12, 40), 3), np.uint8)
        suffix = ".jpg" if i % 3 == 0 else ".png"
        path = folder / ("even" if i % 2 == 0 else "odd") / f"{i:03d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = encode_image(image, suffix)
        if i % 7 == 3 and suffix == ".jpg":  # a phone photo, stored turned
            data = hostile.jpeg_with_orientation(data, 6)
        path.write_bytes(data)
    for i in broken:
        (folder / "odd" / f"{i:03d}b.png").write_bytes(b"not an image at all")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.*"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    _write_images(root, 22, broken=(5,))
    return root


def _view(image):
    from camutils.images import resize

    return np.asarray(resize(image, SIZE), np.float32) / 255.0


# --------------------------------------------------------------------------- the pipeline


def test_the_pipeline_decodes_the_same_pixels_as_camutils_images(folder, tmp_path):
    """The tf.data decoder is camutils.images: the same pixels (EXIF orientation applied),
    and a broken file becomes a row marked unreadable, with the decoder's message."""
    from camutils.dataset.sources import View, _Failures, collect, image_pipeline
    from camutils.images import load_image

    source = collect(folder)
    failures = _Failures()
    view = View((*SIZE, 3), lambda image: np.asarray(load_image(image, SIZE)), _view)
    batches = list(image_pipeline(source, np.arange(len(source)), view, 5, failures,
                                  keep_seen=True).as_numpy_iterator())
    assert [len(b["index"]) for b in batches] == [5, 5, 5, 5, 3]
    index = np.concatenate([b["index"] for b in batches])
    ok = np.concatenate([b["ok"] for b in batches])
    np.testing.assert_array_equal(index, np.arange(len(source)))
    assert [source.ids[i] for i in np.flatnonzero(~ok)] == ["odd/005b.png"]
    assert "Cannot read" in failures.pop(int(np.flatnonzero(~ok)[0]))
    seen = np.concatenate([b["seen"] for b in batches])
    inputs = np.concatenate([b["input"] for b in batches])
    turned = 0
    for i in np.flatnonzero(ok):
        path = folder / source.ids[i]
        expected = load_image(path, SIZE)
        np.testing.assert_array_equal(seen[i], expected)
        np.testing.assert_array_equal(inputs[i], _view(load_image(path)))
        turned += b"Exif" in path.read_bytes()[:64]
    assert turned >= 1  # the folder does hold a turned phone photo


def test_a_folder_is_searched_recursively_in_sorted_order_without_the_output(tmp_path):
    from camutils.dataset.sources import collect

    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("b/2.png", "a/deep/1.jpg", "a/0.PNG", "z.webp", ".hidden.png", "notes.txt",
                 "out/overlay.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    source = collect(tmp_path, exclude=tmp_path / "out")
    assert source.ids == ["a/0.PNG", "a/deep/1.jpg", "b/2.png", "z.webp"]
    with pytest.raises(ValueError, match="lie directly in the source folder.*z.webp"):
        collect(tmp_path, labels="folders", exclude=tmp_path / "out")


# --------------------------------------------------------------------------- results


def test_results_are_the_explanations_of_the_decoded_images(model, folder, tmp_path):
    """Every readable image's row is camutils.explain on camutils.images' pixels (the same
    rule; its batch differs, so floats are compared to float32 rounding), the broken file
    is a row marked unreadable, and the labels come from the folders."""
    import camutils
    from camutils.images import load_image

    run = camutils.explain_dataset(model, folder, "gradcam++", out=tmp_path / "run",
                                   batch_size=4, shard_size=8, labels="folders",
                                   progress=False)
    assert run.complete and run.images == 23 and run.explained == 22
    assert [ident for ident, _ in run.unreadable] == ["odd/005b.png"]
    assert "Cannot read" in run.unreadable[0][1]
    results = run.load()
    ok = results["ok"]
    assert results["id"].tolist() == camutils.dataset.sources.collect(folder).ids
    inputs = np.stack([_view(load_image(folder / i)) for i in results["id"][ok]])
    reference = camutils.explain(model, inputs, "gradcam++")
    np.testing.assert_array_equal(results["class_index"][ok], reference.class_index)
    scale = np.abs(reference.raw).max()
    np.testing.assert_allclose(results["raw"][ok], reference.raw, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(results["score"][ok], reference.score, rtol=1e-5, atol=1e-5)
    from camutils.scores import softmax

    probabilities = softmax(model.predict(inputs, verbose=0))
    np.testing.assert_allclose(results["probability"][ok],
                               probabilities[np.arange(ok.sum()), reference.class_index],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(results["top_index"][ok][:, 0], probabilities.argmax(1))
    # the broken row: unreadable, no class, no map; its error in the table
    bad = np.flatnonzero(~ok)[0]
    assert results["class_index"][bad] == -1 and np.isnan(results["score"][bad])
    assert not results["raw"][bad].any() and "Cannot read" in results["error"][bad]
    # labels from the folders (names not among the model's classes: indices into label_names)
    manifest = run.manifest
    assert manifest["label_names"] == ["even", "odd"]
    assert [manifest["label_names"][v] for v in results["label"]] == \
        [i.split("/")[0] for i in results["id"]]
    assert manifest["map_shape"] == [8, 8] and manifest["shards"] == 3


def test_the_shards_are_read_by_numpy_and_csv_without_camutils(model, folder, tmp_path):
    import camutils

    camutils.explain_dataset(model, folder, out=tmp_path / "run", batch_size=4, shard_size=8,
                             progress=False)
    code = textwrap.dedent("""
        import csv, glob, json, sys
        import numpy as np
        out = sys.argv[1]
        manifest = json.load(open(out + "/manifest.json"))
        shards = sorted(glob.glob(out + "/shards/shard-*.npz"))
        arrays = [np.load(p, allow_pickle=False) for p in shards]
        table = list(csv.DictReader(open(out + "/index.csv", newline="")))
        assert len(shards) == manifest["shards"] == 3
        assert sum(len(a["index"]) for a in arrays) == len(table) == manifest["images"]
        assert [r["id"] for r in table] == [i for a in arrays for i in a["id"].tolist()]
        assert set(arrays[0].files) == set(manifest["fields"])
        assert arrays[0]["raw"].dtype == np.float32 and arrays[0]["raw"].shape[1:] == (8, 8)
        try:
            import pandas
        except ImportError:
            pass
        else:
            frame = pandas.read_csv(out + "/index.csv")
            assert len(frame) == manifest["images"] and list(frame.columns) == manifest["csv_columns"]
        assert not any(m.startswith("camutils") for m in sys.modules), "camutils was imported"
        print("read", len(table))
    """)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")],
                            capture_output=True, text=True, env=dict(ENV, PYTHONPATH=""),
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "read 23"


def test_a_dataset_source_with_labels_and_ids(model):
    """A tf.data.Dataset of uint8 images is preprocessed like files; float images are taken as
    the model's input; ids and labels come from the elements."""
    import tensorflow as tf

    import camutils

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (10, *SIZE, 3), np.uint8)
    labels = rng.integers(0, 5, 10)
    reference = camutils.explain(model, images.astype(np.float32) / 255.0, "gradcam")
    for elements in (
        {"image": images, "label": labels, "id": [f"item{i}" for i in range(10)]},
        (images.astype(np.float32) / 255.0, labels),
    ):
        data = tf.data.Dataset.from_tensor_slices(elements)
        with pytest.MonkeyPatch.context():
            import tempfile

            with tempfile.TemporaryDirectory() as out:
                run = camutils.explain_dataset(model, data, out=out, batch_size=4,
                                               shard_size=4, progress=False)
                results = run.load()
        np.testing.assert_array_equal(results["label"], labels)
        np.testing.assert_array_equal(results["class_index"], reference.class_index)
        np.testing.assert_allclose(results["raw"], reference.raw, rtol=1e-5,
                                   atol=1e-6 * np.abs(reference.raw).max())
        expected = [f"item{i}" for i in range(10)] if isinstance(elements, dict) else \
            [str(i) for i in range(10)]
        assert results["id"].tolist() == expected


# --------------------------------------------------------------------------- arguments


def test_the_same_arguments_resume_and_others_are_refused(model, folder, tmp_path):
    import camutils
    from camutils.dataset import ArgumentsDiffer

    out = tmp_path / "run"
    first = camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=8,
                                     progress=False)
    assert first.written_shards == [0, 1, 2]
    again = camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=8,
                                     progress=False)
    assert again.explained == 0 and again.written_shards == [] and again.complete
    assert again.resumed_shards == [0, 1, 2]
    assert [i for _, i, _ in again.resumed_unreadable] == ["odd/005b.png"]
    with pytest.raises(ArgumentsDiffer, match=r"method: 'gradcam' then, 'layercam' now.*"
                                              r"another folder, or delete"):
        camutils.explain_dataset(model, folder, "layercam", out=out, batch_size=4,
                                 shard_size=8, progress=False)
    with pytest.raises(ArgumentsDiffer, match=r"batch_size: 4 then, 8 now"):
        camutils.explain_dataset(model, folder, out=out, batch_size=8, shard_size=8,
                                 progress=False)
    other = camutils.explain_dataset(model, folder, out=tmp_path / "other", batch_size=4,
                                     shard_size=8, target=2, progress=False)
    assert set(other.load()["class_index"][other.load()["ok"]]) == {2}
    with pytest.raises(ArgumentsDiffer, match=r"target: \(none\) then, 2 now"):
        camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=8, target=2,
                                 progress=False)
    changed = folder / "even" / "002.png"  # a file changed since the run
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    with pytest.raises(ArgumentsDiffer, match=r"source\.fingerprint"):
        camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=8,
                                 progress=False)


def test_bad_arguments_are_clear_errors(model, folder, tmp_path):
    import tensorflow as tf

    import camutils

    with pytest.raises(ValueError, match=r"shard_size \(10\) must be a multiple of batch_size"):
        camutils.explain_dataset(model, folder, out=tmp_path / "a", batch_size=4, shard_size=10)
    with pytest.raises(ValueError, match="Guided Backprop gives maps at the input's resolution"):
        camutils.explain_dataset(model, folder, "guided_backprop", out=tmp_path / "b")
    with pytest.raises(TypeError, match="one class per image"):
        camutils.explain_dataset(model, folder, out=tmp_path / "c",
                                 target=camutils.methods.TopK(2))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with pytest.raises(ValueError, match="Score-CAM runs many passes.*strategy=None"):
        camutils.explain_dataset(model, folder, "scorecam", out=tmp_path / "d",
                                 strategy=strategy)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        camutils.explain_dataset(model, folder, out=tmp_path / "file")
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()


def test_a_multi_pass_method_runs_without_a_strategy(model, folder, tmp_path):
    import camutils
    from camutils.images import load_image

    run = camutils.explain_dataset(model, folder, "ablationcam", out=tmp_path / "run",
                                   batch_size=8, shard_size=8, progress=False)
    results = run.load()
    ok = results["ok"]
    inputs = np.stack([_view(load_image(folder / i)) for i in results["id"][ok]])
    reference = camutils.explain(model, inputs, "ablationcam")
    np.testing.assert_array_equal(results["class_index"][ok], reference.class_index)
    np.testing.assert_allclose(results["raw"][ok], reference.raw, rtol=1e-4,
                               atol=1e-5 * np.abs(reference.raw).max())


def test_non_finite_logits_stop_the_run_with_a_clear_error(folder, tmp_path):
    from _models import gap_model

    import camutils

    broken = gap_model(size=SIZE, seed=1)
    broken.get_layer("logits").set_weights([w * np.nan for w in
                                            broken.get_layer("logits").get_weights()])
    from camutils.model_errors import NonFiniteError

    for method in ("gradcam", "ablationcam"):  # the compiled step, and a multi-pass method
        with pytest.raises(NonFiniteError, match=r"(?s)logits.* are NaN or infinite.*The "
                                                 r"model's weights are not all finite.*logits.*"
                                                 r"image\(s\) 'even/000\.jpg'"):
            camutils.explain_dataset(broken, folder, method, out=tmp_path / method,
                                     batch_size=4, shard_size=8, progress=False)
        assert not list((tmp_path / method).glob("shards/*.npz"))


# --------------------------------------------------------------------------- resume after a kill


_DIES_IN_SHARD_2 = """
import io, os, sys
import numpy as np
import keras
import camutils
import camutils.dataset.format as fmt

real_savez, calls = np.savez, []

def savez_then_die(handle, **arrays):
    calls.append(1)
    if len(calls) == 3:  # the third shard: half its bytes written, then the process dies
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        handle.flush()
        os._exit(137)  # no clean-up of any kind, as after SIGKILL
    return real_savez(handle, **arrays)

fmt.np.savez = savez_then_die
model = keras.saving.load_model(sys.argv[1], compile=False)
camutils.explain_dataset(model, sys.argv[2], out=sys.argv[3], batch_size=4, shard_size=4,
                         progress=False)
print("finished")
"""


@pytest.mark.slow
def test_a_run_killed_while_writing_a_shard_resumes_with_identical_results(
        model, model_file, folder, tmp_path):
    import camutils

    out = tmp_path / "killed"
    child = subprocess.run([sys.executable, "-c", _DIES_IN_SHARD_2, str(model_file),
                            str(folder), str(out)], capture_output=True, text=True, env=ENV,
                           timeout=300)
    assert child.returncode == 137, child.stderr[-2000:]
    shards = out / "shards"
    assert sorted(p.name for p in shards.glob("*.npz")) == ["shard-00000.npz",
                                                            "shard-00001.npz"]
    assert [p for p in shards.iterdir() if p.name.startswith(".shard-00002.npz")], \
        "the half-written shard should be left under its temporary name"
    assert not (out / "index.csv").exists()

    resumed = camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=4,
                                       progress=False)
    assert resumed.resumed_shards == [0, 1] and resumed.written_shards == [2, 3, 4, 5]
    assert resumed.complete and not [p for p in shards.iterdir() if p.name.startswith(".")]
    fresh = camutils.explain_dataset(model, folder, out=tmp_path / "fresh", batch_size=4,
                                     shard_size=4, progress=False)
    a, b = resumed.load(), fresh.load()
    assert a["id"].tolist() == b["id"].tolist() == camutils.dataset.sources.collect(folder).ids
    assert len(set(a["index"].tolist())) == len(a["index"]) == 23  # no duplicate, no loss
    for name in a:  # the same batches in both runs: the same computation, the same bits
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert (out / "index.csv").read_bytes() == (tmp_path / "fresh" / "index.csv").read_bytes()


# --------------------------------------------------------------------------- tf.distribute


_TWO_DEVICES = """
import json, sys, tempfile
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import camutils

model = keras.saving.load_model(sys.argv[1], compile=False)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = tempfile.mkdtemp()
two = camutils.explain_dataset(model, sys.argv[2], "gradcam", out=out + "/two", batch_size=4,
                               shard_size=8, strategy=strategy, progress=False)
one = camutils.explain_dataset(model, sys.argv[2], "gradcam", out=out + "/one", batch_size=4,
                               shard_size=8, progress=False)
a, b = two.load(), one.load()
same = {name: bool(np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"))
        for name in a}
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "same": same,
                  "explained": [two.explained, one.explained],
                  "devices": [d.name for d in tf.config.list_logical_devices("CPU")]}))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_gives_the_results_of_one_device(
        model_file, folder):
    """Each replica explains its own batches of ``batch_size`` images: every image is explained
    in the same batch, by the same compiled rule, as on one device, so the results are the
    same to the bit (a batch split differently would only agree to float rounding)."""
    result = subprocess.run([sys.executable, "-c", _TWO_DEVICES, str(model_file), str(folder)],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and len(report["devices"]) == 2
    assert report["explained"] == [22, 22]
    assert all(report["same"].values()), report["same"]


@pytest.mark.slow
def test_two_workers_on_localhost_cover_every_file_exactly_once(folder, tmp_path):
    """The documented example: two MultiWorkerMirroredStrategy workers, each writes its own
    shards; together every file once, with the results of a run in one process."""
    import camutils

    out = tmp_path / "two_workers"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_workers_on_localhost.py"), str(folder),
         str(out), "--model", "shapes_gap", "--batch-size", "4", "--shard-size", "4",
         "--timeout", "240"], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    workers = json.loads(result.stdout)["workers"]
    assert sorted(w["worker"] for w in workers) == [0, 1]
    written = [set(w["written_shards"]) for w in workers]
    assert written[0].isdisjoint(written[1]) and written[0] | written[1] == set(range(6))
    for w in workers:
        assert all(k % 2 == w["worker"] for k in w["written_shards"])
    assert sum(w["explained"] for w in workers) == 22
    assert sum((w["unreadable"] for w in workers), []) == ["odd/005b.png"]

    with open(out / "index.csv", newline="") as handle:
        ids = [row["id"] for row in csv.DictReader(handle)]
    files = camutils.dataset.sources.collect(folder).ids
    assert ids == files and len(set(ids)) == len(files)  # every file once, in order
    single = camutils.explain_dataset(camutils.load_model("shapes_gap"), folder,
                                      out=tmp_path / "one", batch_size=4, shard_size=4,
                                      progress=False).load()
    both = camutils.dataset.load_results(out)
    for name in ("id", "ok", "class_index", "raw", "score"):
        np.testing.assert_array_equal(both[name], single[name], err_msg=name)


# --------------------------------------------------------------------------- the audit


def test_region_weights_are_the_energy_of_the_upsampled_map():
    """sum(W * raw) equals the sum over the region of TensorFlow's bilinear upsampling (the
    pipeline's), an independent computation: compared to float rounding."""
    import tensorflow as tf

    from camutils.dataset.auditing import region_masks, region_weights

    raw = np.random.default_rng(0).random((3, 7, 7))
    up = tf.image.resize(raw[..., None], (224, 224), "bilinear").numpy()[..., 0]
    weights = region_weights((7, 7), (224, 224), 0.125, 0.25)
    masks = region_masks((224, 224), 0.125, 0.25)
    for name, mask in masks.items():
        np.testing.assert_allclose(np.einsum("nhw,hw->n", raw, weights[name]),
                                   (up * mask).sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(np.einsum("nhw,hw->n", raw, weights["all"]),
                               up.sum(axis=(1, 2)), rtol=1e-5)
    assert masks["corners"].mean() == 0.25 and masks["border"][28:196, 28:196].sum() == 0


def _synthetic_run(out: Path, per_class: int = 40):
    """A run written through the format: class 0's maps peak in a random corner, class 1's
    near the centre, class 2's anywhere."""
    from camutils.dataset import format as fmt

    rng = np.random.default_rng(2)
    n = 3 * per_class
    classes = np.repeat([0, 1, 2], per_class)
    raw = rng.random((n, 8, 8)).astype(np.float32) * 0.2
    for i, c in enumerate(classes):
        if c == 0:
            y, x = rng.choice([0, 7]), rng.choice([0, 7])
        elif c == 1:
            y, x = rng.integers(3, 5, 2)
        else:
            y, x = rng.integers(0, 8, 2)
        raw[i, y, x] += 3.0
    manifest = {"format": fmt.FORMAT, "format_version": 1, "images": n, "shards": 2,
                "arguments": {"model": {"name": "made up", "input_shape": [64, 64, 3],
                                        "classes": 3},
                              "method": "gradcam", "layer": "conv", "labels": "given",
                              "source": {"kind": "dataset"}},
                "map_shape": [8, 8], "class_names": ["tagged", "central", "anywhere"]}
    fmt.write_manifest(out, manifest)
    for k, rows in enumerate(np.array_split(np.arange(n), 2)):
        m = len(rows)
        fmt.write_shard(out, k, {
            "index": rows, "id": np.asarray([f"im{i}" for i in rows]), "ok": np.ones(m, bool),
            "label": classes[rows], "class_index": classes[rows],
            "score": np.ones(m, np.float32), "probability": np.ones(m, np.float32),
            "top_index": classes[rows][:, None], "top_probability": np.ones((m, 1), np.float32),
            "raw": raw[rows]}, [""] * m, manifest["class_names"])
    return raw, classes


def test_the_audit_finds_the_class_whose_maps_sit_in_the_corners(tmp_path):
    import camutils

    raw, classes = _synthetic_run(tmp_path)
    summary = camutils.audit(tmp_path)
    assert [n for n, r in summary.classes.items() if r["suspect"]] == ["tagged"]
    assert summary.classes["tagged"]["corner_peaks"] == 1.0
    assert summary.classes["central"]["corner_peaks"] == 0.0
    assert summary.classes["tagged"]["corner_lift"] > 1.5 > summary.classes["central"]["corner_lift"]
    assert summary.classes["tagged"]["accuracy"] == 1.0
    assert any(line.startswith("SHORTCUT SUSPECT: 1 of 3 classes") and "tagged" in line
               for line in summary.findings)
    assert {r["class_name"] for r in summary.suspects} == {"tagged"}
    # the class mean: every map scaled to sum 1, averaged (an independent computation)
    tagged = raw[classes == 0]
    np.testing.assert_allclose(summary.mean_maps["tagged"],
                               (tagged / tagged.sum(axis=(1, 2), keepdims=True)).mean(0),
                               rtol=1e-6)
    # each map's distance to its class's mean, computed here independently
    normalised = raw / raw.sum(axis=(1, 2), keepdims=True)
    distance = np.empty(len(raw))
    for c in range(3):
        maps = normalised[classes == c].reshape(-1, 64)
        mean = maps.mean(0)
        distance[classes == c] = 1 - maps @ mean / (np.linalg.norm(maps, axis=1)
                                                    * np.linalg.norm(mean))
    assert summary.classes["central"]["dissimilarity"] == pytest.approx(
        distance[classes == 1].mean())
    assert [r["index"] for r in summary.least_typical] == \
        np.argsort(-distance, kind="stable")[:12].tolist()
    # the report: an HTML page whose figures and tables exist
    report = summary.report.read_text()
    for link in ("energy.png", "class_means.png", "peaks.png", "suspects.png",
                 "least_typical.png", "classes.csv", "images.csv", "summary.json"):
        assert f'"{link}"' in report and (summary.report.parent / link).stat().st_size > 0
    assert "SHORTCUT SUSPECT" in report
    with open(summary.report.parent / "images.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(raw)


def test_the_audit_of_a_folder_without_a_run_is_a_clear_error(tmp_path):
    import camutils

    with pytest.raises(FileNotFoundError, match="No dataset run in .*no manifest.json"):
        camutils.audit(tmp_path)


# --------------------------------------------------------------------------- damaged files


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3: len(data) // 3 + 40] = bytes(range(128, 168))  # not UTF-8
    path.write_bytes(bytes(data))


# what is damaged, how, and what the message must say
DAMAGES = {
    "shard cut short": ("shards/shard-00001.npz", _cut_short, "BadZipFile"),
    "shard overwritten": ("shards/shard-00001.npz", _garble, "shard-00001.npz"),
    "csv cut short": ("shards/shard-00001.csv", _cut_short, "columns|rows are not"),
    "csv garbled": ("shards/shard-00001.csv", _garble, "UnicodeDecodeError"),
}


def _assert_names_the_shard(error, out: Path, name: str, why: str):
    message = str(error)
    assert f"{name} (" in message and re.search(why, message), message
    assert "delete shard-00001.npz and shard-00001.csv" in message
    assert "explain the dataset again with the same arguments" in message
    assert error.shards == [1] and error.paths == [out / name]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_audit_names_a_damaged_shard_and_how_to_re_run_it(tmp_path, damage):
    import camutils
    from camutils.dataset import DamagedRunFile

    name, spoil, why = DAMAGES[damage]
    _synthetic_run(tmp_path)
    spoil(tmp_path / name)
    with pytest.raises(DamagedRunFile) as caught:
        camutils.audit(tmp_path, report=False)
    _assert_names_the_shard(caught.value, tmp_path, name, why)
    with pytest.raises(DamagedRunFile, match="shard-00001"):
        camutils.dataset.load_results(tmp_path)


@pytest.mark.parametrize("spoil, why", [(_cut_short, "JSONDecodeError"),
                                        (_garble, "UnicodeDecodeError"),
                                        (lambda p: p.write_text(json.dumps(
                                            {"format": "camutils-explanations", "images": 3})),
                                         r"lacks arguments \(dict\), shards \(int\)")])
def test_the_audit_names_a_damaged_manifest(tmp_path, spoil, why):
    import camutils
    from camutils.dataset import DamagedRunFile

    _synthetic_run(tmp_path)
    spoil(tmp_path / "manifest.json")
    with pytest.raises(DamagedRunFile, match=why) as caught:
        camutils.audit(tmp_path)
    assert "manifest.json" in str(caught.value) and "restore it from a copy" in str(caught.value)
    assert caught.value.paths == [tmp_path / "manifest.json"]


def test_a_damaged_index_csv_is_named(tmp_path):
    from camutils.dataset import DamagedRunFile
    from camutils.dataset import format as fmt

    _synthetic_run(tmp_path)
    rows = fmt.read_table(tmp_path)
    assert fmt.write_index(tmp_path, 2) == tmp_path / "index.csv"
    assert fmt.read_table(tmp_path) == rows and len(rows) == 120
    _cut_short(tmp_path / "index.csv")
    with pytest.raises(DamagedRunFile, match=r"index\.csv.*Delete it, then explain the dataset "
                                             r"again with the same arguments"):
        fmt.read_table(tmp_path)


@pytest.fixture(scope="module")
def finished_run(model, folder, tmp_path_factory):
    """A complete run of the tiny model on the folder (Grad-CAM, batch 4, shards of 8)."""
    import camutils

    out = tmp_path_factory.mktemp("finished") / "run"
    run = camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=8,
                                   progress=False)
    assert run.written_shards == [0, 1, 2] and run.complete
    return out


@pytest.mark.parametrize("damage", ["shard cut short", "csv garbled"])
def test_resuming_names_a_damaged_shard_and_re_runs_it_once_deleted(
        model, folder, finished_run, tmp_path, damage):
    import shutil

    import camutils
    from camutils.dataset import DamagedRunFile

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "index.csv").unlink()  # as when the run was interrupted after shard 2
    name, spoil, why = DAMAGES[damage]
    spoil(out / name)
    resume = dict(out=out, batch_size=4, shard_size=8, progress=False)
    with pytest.raises(DamagedRunFile) as caught:
        camutils.explain_dataset(model, folder, **resume)
    _assert_names_the_shard(caught.value, out, name, why)
    # what the message says to do: delete the shard's files and run again
    for path in caught.value.paths:
        for suffix in (".npz", ".csv"):
            path.with_suffix(suffix).unlink()
    again = camutils.explain_dataset(model, folder, **resume)
    assert again.resumed_shards == [0, 2] and again.written_shards == [1] and again.complete
    a, b = again.load(), camutils.dataset.load_results(finished_run)
    for field in a:
        np.testing.assert_array_equal(a[field], b[field], err_msg=field)


def test_resuming_names_a_damaged_manifest(model, folder, finished_run, tmp_path):
    import shutil

    import camutils
    from camutils.dataset import DamagedRunFile

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    _cut_short(out / "manifest.json")
    with pytest.raises(DamagedRunFile, match=r"manifest\.json.*JSONDecodeError.*restore it from "
                                             r"a copy, or explain the dataset again into an "
                                             r"empty folder"):
        camutils.explain_dataset(model, folder, out=out, batch_size=4, shard_size=8,
                                 progress=False)


def test_the_debugging_switch_run_functions_eagerly_changes_nothing(model, folder, tmp_path):
    """Under tf.config.run_functions_eagerly(True) the step still runs as a graph (a concrete
    function, as the pipeline's own), with the same results."""
    import tensorflow as tf

    import camutils

    reference = camutils.explain_dataset(model, folder, out=tmp_path / "graph", batch_size=4,
                                         shard_size=8, progress=False).load()
    tf.config.run_functions_eagerly(True)
    try:
        eager = camutils.explain_dataset(model, folder, out=tmp_path / "eager", batch_size=4,
                                         shard_size=8, progress=False).load()
    finally:
        tf.config.run_functions_eagerly(False)
    for name in reference:
        np.testing.assert_array_equal(eager[name], reference[name], err_msg=name)


def test_the_audit_figures_are_readable_show_every_class_and_their_scales(tmp_path, monkeypatch):
    import camutils
    from camutils import plot
    from camutils.dataset import audit_figures

    from test_plot import _texts_overlap

    drawn = {}
    monkeypatch.setattr(audit_figures, "_save", lambda fig, path: drawn.setdefault(path.name, fig))
    _synthetic_run(tmp_path, per_class=20)
    camutils.audit(tmp_path)
    assert set(drawn) == {"class_means.png", "energy.png", "peaks.png", "suspects.png",
                          "least_typical.png"}
    for name, fig in drawn.items():
        assert plot.displayed_font_points(fig) >= plot.MIN_FONT_POINTS, name
        assert _texts_overlap(fig) == [], name
    for name in ("class_means.png", "peaks.png", "suspects.png", "least_typical.png"):
        bars = [ax for ax in drawn[name].axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 1, name                       # colour carries a value: one bar
    titles = [ax.get_title() for ax in drawn["suspects.png"].axes if ax.get_title()]
    assert {t.split("\n")[1].split(":")[0] for t in titles} == {"tagged", "central", "anywhere"}
