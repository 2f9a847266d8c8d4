"""Keras applications through the zoo: the weights table, the fast and helpful offline
failure, loading from the Keras cache without the network, preprocessing, the CLI.

Nothing here touches the network: the weights' host is replaced by an address that no
network routes (192.0.2.1, reserved for documentation), or the probe is simulated.
"""

import dataclasses
import os
import socket
import time

import numpy as np
import pytest

import keras  # noqa: E402

import camutils  # noqa: E402
from camutils.zoo import keras_apps  # noqa: E402
from camutils.zoo.keras_apps import APPLICATIONS, WeightsUnavailableError  # noqa: E402

UNROUTABLE = "https://192.0.2.1/tensorflow/keras-applications/"


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty Keras weights cache, and no proxy settings from the environment."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    monkeypatch.setattr(keras_apps, "_keras_cache_dir", lambda: cache)
    return cache


def unroutable(monkeypatch, name):
    app = APPLICATIONS[name]
    moved = dataclasses.replace(app, weights_url=UNROUTABLE + app.weights_file)
    monkeypatch.setitem(APPLICATIONS, name, moved)
    return moved


def assert_helpful(message, name):
    assert f"{name!r} needs the network once" in message
    assert f"python -m camutils prefetch {name}" in message
    assert "'efficientnet_lite0'" in message and "offline" in message
    assert "urllib" not in message and "Traceback" not in message


def test_weights_table_matches_keras():
    from keras.src.applications import mobilenet_v2, resnet, vgg16, xception

    assert APPLICATIONS["vgg16"].weights_url == vgg16.WEIGHTS_PATH
    assert APPLICATIONS["xception"].weights_url == xception.WEIGHTS_PATH
    resnet50 = APPLICATIONS["resnet50"]
    assert resnet50.weights_url == resnet.BASE_WEIGHTS_PATH + resnet50.weights_file
    assert resnet50.weights_md5 == resnet.WEIGHTS_HASHES["resnet50"][0]
    mobilenet = APPLICATIONS["mobilenet_v2"]
    assert mobilenet.weights_url == mobilenet_v2.BASE_WEIGHT_PATH + mobilenet.weights_file
    for app in APPLICATIONS.values():
        assert app.weights_url.endswith("/" + app.weights_file)
        assert app.weights_file in keras_apps.cached_weights_path(app.name).name


def test_offline_vgg16_fails_fast_with_a_helpful_error(empty_cache, monkeypatch):
    unroutable(monkeypatch, "vgg16")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        camutils.load_model("vgg16")
    elapsed = time.monotonic() - start
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert_helpful(str(info.value), "vgg16")
    assert "192.0.2.1" in str(info.value)
    assert info.value.__cause__ is None  # no urllib traceback chained underneath


def test_a_failed_download_becomes_the_helpful_error(empty_cache, monkeypatch):
    """Reachable host, failing download: Keras' bare Exception is replaced, and chained."""
    monkeypatch.setattr(keras_apps, "check_reachable", lambda url, timeout=3.0: None)
    origin = APPLICATIONS["resnet50"].weights_url

    def failing_get_file(fname, origin, **kwargs):
        assert kwargs["cache_dir"] == str(empty_cache.parent)
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno 101] Network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", failing_get_file)
    before = socket.getdefaulttimeout()
    with pytest.raises(WeightsUnavailableError, match="the download failed") as info:
        keras_apps.load_keras_application("resnet50")
    assert_helpful(str(info.value), "resnet50")
    assert origin in str(info.value.__cause__)
    assert socket.getdefaulttimeout() == before


def test_a_damaged_cached_file_is_not_used(empty_cache, monkeypatch):
    unroutable(monkeypatch, "vgg16")
    (empty_cache / APPLICATIONS["vgg16"].weights_file).write_bytes(b"half a download")
    with pytest.raises(WeightsUnavailableError, match="incomplete or damaged"):
        keras_apps.load_keras_application("vgg16")


def _write_small_h5(path):
    """A complete HDF5 file (the check of a cached file without a hash reads it whole)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("layer/kernel", data=np.arange(12.0).reshape(3, 4))


@pytest.mark.parametrize("damage", ["other bytes", "truncated"])
def test_a_damaged_cached_file_without_a_hash_is_named(empty_cache, monkeypatch, damage):
    app = unroutable(monkeypatch, "mobilenet_v2")
    assert app.weights_md5 is None  # Keras has no hash for it, so the file itself is read
    path = empty_cache / app.weights_file
    if damage == "other bytes":
        path.write_bytes(b"half a download")
    else:
        _write_small_h5(path)
        path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(WeightsUnavailableError) as info:
        camutils.load_model("mobilenet_v2")
    message = str(info.value)
    assert f"the cached copy {app.weights_file} is incomplete or damaged" in message
    assert_helpful(message, "mobilenet_v2")
    assert path.exists()  # offline, the damaged copy is left where it is


def test_a_damaged_cached_file_without_a_hash_is_fetched_again(empty_cache, monkeypatch):
    monkeypatch.setattr(keras_apps, "check_reachable", lambda url, timeout=3.0: None)
    app = APPLICATIONS["mobilenet_v2"]
    path = empty_cache / app.weights_file
    path.write_bytes(b"half a download")
    fetched = []

    def get_file(fname, origin, **kwargs):  # Keras keeps an existing file without a hash
        fetched.append(path.exists())
        _write_small_h5(path)
        return str(path)

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    assert keras_apps.prefetch(["mobilenet_v2"]) == {"mobilenet_v2": path}
    assert fetched == [False]
    assert keras_apps.prefetch(["mobilenet_v2"]) == {"mobilenet_v2": path}  # now intact
    assert fetched == [False]


def test_a_cached_file_keras_cannot_load_says_what_to_do(empty_cache, monkeypatch):
    monkeypatch.setattr(keras_apps, "check_reachable", lambda *a, **k: "unreachable")
    app = APPLICATIONS["mobilenet_v2"]
    _write_small_h5(empty_cache / app.weights_file)  # complete, but not MobileNetV2's weights
    with pytest.raises(WeightsUnavailableError) as info:
        keras_apps.load_keras_application("mobilenet_v2")
    message = str(info.value)
    assert f"{app.weights_file} in the Keras cache" in message
    assert "incomplete or damaged" in message and "prefetch mobilenet_v2" in message


def test_a_weights_file_keras_cannot_load_is_named(tmp_path):
    path = tmp_path / "mine.h5"
    _write_small_h5(path)
    with pytest.raises(ValueError, match="Cannot load the weights file .*mine.h5"):
        keras_apps.load_keras_application("mobilenet_v2", weights=path)


def test_offline_failure_comes_before_keras_is_imported(empty_cache, monkeypatch):
    """Importing Keras (and TensorFlow) takes seconds; a model that cannot be downloaded
    must fail first: here importing them is impossible, and the right error still comes."""
    import sys

    unroutable(monkeypatch, "vgg16")
    for module in ("keras", "tensorflow"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(WeightsUnavailableError) as info:
        camutils.load_model("vgg16")
    assert_helpful(str(info.value), "vgg16")


def test_the_keras_home_is_found_without_importing_keras(monkeypatch):
    import sys

    from camutils.methods.keras_internals import keras_home

    with_keras = keras_home()
    monkeypatch.setitem(sys.modules, "keras", None)
    assert keras_home() == with_keras


def _write_legacy_h5(model, path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:  # the format of the Keras applications' weight files
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_cached_weights_load_offline_and_the_model_outputs_logits(empty_cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("cached weights must not touch the network")

    monkeypatch.setattr(keras_apps, "check_reachable", no_network)
    monkeypatch.setattr(keras.utils, "get_file", no_network)
    keras.utils.set_random_seed(0)
    reference = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    _write_legacy_h5(reference, empty_cache / APPLICATIONS["mobilenet_v2"].weights_file)
    assert keras_apps.weights_are_cached("mobilenet_v2")

    zoo = camutils.load_model("mobilenet_v2")
    assert zoo.name == "mobilenet_v2" and zoo.input_size == (224, 224)
    assert zoo.model.get_layer(zoo.cam_layer).output.shape[1:3] == (7, 7)
    assert zoo.model.layers[-1].activation is keras.activations.linear
    inputs, seen = zoo.preprocess("coffee")
    assert seen.shape == (1, 224, 224, 3) and seen.dtype == np.uint8
    logits = zoo.logits("coffee")
    np.testing.assert_allclose(logits, np.asarray(reference(inputs, training=False)), atol=1e-4)
    assert not np.isclose(logits.sum(), 1.0)  # logits, not probabilities
    assert len(zoo.top_k("coffee", k=3)[0]) == 3


def test_random_weights_build_offline_with_each_preprocessing():
    zoo = keras_apps.load_keras_application("mobilenet_v2", weights=None)
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    untouched = images.copy()
    normalized = zoo.normalize(images)
    np.testing.assert_array_equal(images, untouched)
    np.testing.assert_allclose(normalized, images / 127.5 - 1.0, atol=1e-6)  # "tf" mode
    assert zoo.info["weights"] == "random"


@pytest.mark.parametrize("name, mode", [("vgg16", "caffe"), ("resnet50", "caffe"),
                                        ("mobilenet_v2", "tf"), ("xception", "tf")])
def test_each_application_has_its_own_preprocessing(name, mode):
    image = np.random.default_rng(1).integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    got = keras_apps.normalizer(name)(image)
    assert got.dtype == np.float32
    if mode == "caffe":  # RGB -> BGR, minus the ImageNet mean (in BGR order)
        expected = image[..., ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68])
    else:
        expected = image.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_every_default_cam_layer_exists_and_is_spatial():
    for name, app in APPLICATIONS.items():
        zoo = keras_apps.load_keras_application(name, weights=None)
        shape = zoo.model.get_layer(app.cam_layer).output.shape
        assert len(shape) == 4 and shape[1] > 1, (name, shape)
        assert zoo.input_size == app.input_size
        assert zoo.model.input.shape[1:3] == app.input_size
        keras.backend.clear_session()


def test_check_reachable_opens_a_real_connection_or_says_why():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert keras_apps.check_reachable(f"https://127.0.0.1:{port}/weights.h5") is None
    finally:
        server.close()
    reason = keras_apps.check_reachable(f"https://127.0.0.1:{port}/weights.h5", timeout=2)
    assert reason and f"127.0.0.1:{port}" in reason
    start = time.monotonic()
    reason = keras_apps.check_reachable("https://192.0.2.1/weights.h5", timeout=0.5)
    assert reason and time.monotonic() - start < 2.0


def test_an_unknown_application_suggests_a_name():
    with pytest.raises(ValueError, match="'resnet50'"):
        keras_apps.load_keras_application("resnet5O")


def test_prefetch_command(empty_cache, monkeypatch, capsys):
    unroutable(monkeypatch, "vgg16")
    assert keras_apps.main(["prefetch", "vgg16"]) == 1
    assert_helpful(capsys.readouterr().err, "vgg16")

    # Already cached: nothing to fetch, so no network needed.
    monkeypatch.setattr(keras_apps, "check_reachable", lambda *a, **k: "unreachable")
    _write_small_h5(empty_cache / APPLICATIONS["mobilenet_v2"].weights_file)
    assert keras_apps.main(["prefetch", "mobilenet_v2"]) == 0
    assert "mobilenet_v2" in capsys.readouterr().out
    assert keras_apps.main(["list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == len(APPLICATIONS)
    assert any(l.startswith("mobilenet_v2") and " cached " in l for l in listing)
    assert any(l.startswith("vgg16") and "not cached" in l for l in listing)
    with pytest.raises(SystemExit):
        keras_apps.main(["prefetch", "vgg61"])
