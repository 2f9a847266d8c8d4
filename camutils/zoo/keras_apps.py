"""Keras applications (VGG16, ResNet50, MobileNetV2, Xception) behind the zoo's interface.

    vgg16 = camutils.load_model("vgg16")     # needs the network once, for the weights
    vgg16.top_k("chelsea")

Their ImageNet weights are not part of Keras: they are downloaded into the Keras cache
(``~/.keras/models``, or ``$KERAS_HOME/models``) the first time a model is built, and read
from there afterwards, offline. Offline and not yet cached, Keras would hang on long network
timeouts and then raise a bare ``Exception("URL fetch failure ...")``; here the weights'
host is probed first, with a short timeout, and a `WeightsUnavailableError` says what to do.

Pre-fetch the weights while online (Binder's build step and workshop instructors do this):

    python -m camutils.zoo.keras_apps prefetch vgg16 resnet50 mobilenet_v2 xception
    python -m camutils.zoo.keras_apps list          # which weights are in the cache

The models are built with ``classifier_activation=None``, so they output logits: CAM methods
explain the scores beneath the softmax, whose gradients saturate.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..suggestions import did_you_mean

__all__ = [
    "KerasApplication", "APPLICATIONS", "WeightsUnavailableError", "load_keras_application",
    "prefetch", "normalizer", "cached_weights_path", "weights_are_cached", "check_reachable",
    "main",
]

OFFLINE_MODEL = "efficientnet_lite0"
CROP_FRACTION = 0.875  # the usual ImageNet evaluation crop: 224 of 256, 299 of 342
_KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class KerasApplication:
    """What the zoo needs to know about one Keras application.

    Attributes:
        name: the zoo name (``"vgg16"``).
        constructor: the function in ``keras.applications`` (``"VGG16"``).
        module: the submodule with its ``preprocess_input`` (``"vgg16"``).
        input_size: ``(height, width)`` it was trained at.
        cam_layer: its last spatial layer, the default for CAM methods.
        weights_file: the ImageNet weights' file name in the Keras cache (with the classifier).
        weights_url: where Keras downloads that file from.
        weights_md5: the MD5 hash Keras checks the file against (None where Keras has none).
        size_mb: the download's approximate size.
    """

    name: str
    constructor: str
    module: str
    input_size: tuple[int, int]
    cam_layer: str
    weights_file: str
    weights_url: str
    weights_md5: str | None
    size_mb: int


def _app(name, constructor, module, size, cam_layer, folder, file, md5, size_mb):
    return KerasApplication(name, constructor, module, (size, size), cam_layer, file,
                            f"{_KERAS_WEIGHTS}{folder}/{file}", md5, size_mb)


APPLICATIONS: dict[str, KerasApplication] = {a.name: a for a in [
    _app("vgg16", "VGG16", "vgg16", 224, "block5_conv3", "vgg16",
         "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b", 528),
    _app("resnet50", "ResNet50", "resnet50", 224, "conv5_block3_out", "resnet",
         "resnet50_weights_tf_dim_ordering_tf_kernels.h5", "2cb95161c43110f7111970584f804107", 98),
    _app("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 224, "out_relu", "mobilenet_v2",
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", None, 14),
    _app("xception", "Xception", "xception", 299, "block14_sepconv2_act", "xception",
         "xception_weights_tf_dim_ordering_tf_kernels.h5", "0a58e3b7378bc2990ea3b43d5981f1f6", 88),
]}


class WeightsUnavailableError(RuntimeError):
    """A model's weights are not in the Keras cache and cannot be downloaded from here."""


def _application(name: str) -> KerasApplication:
    key = name.lower().replace("-", "_")
    if key not in APPLICATIONS:
        hint = did_you_mean(key, APPLICATIONS, n=2, cutoff=0.5)
        raise ValueError(f"Unknown Keras application {name!r}.{hint} "
                         f"Available: {', '.join(APPLICATIONS)}.")
    return APPLICATIONS[key]


def _keras_cache_dir() -> Path:
    """The folder where Keras keeps downloaded model weights (``<keras home>/models``)."""
    from ..methods.keras_internals import keras_home

    home = keras_home()
    home = os.path.expanduser(home)
    if not os.access(home, os.W_OK):  # where keras.utils.get_file itself falls back
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(home) / "models"


def cached_weights_path(name: str) -> Path:
    """Where the Keras cache keeps (or would keep) the ImageNet weights of application ``name``."""
    return _keras_cache_dir() / _application(name).weights_file


def weights_are_cached(name: str) -> bool:
    """Whether application ``name`` can be built with ImageNet weights offline."""
    return cached_weights_path(name).is_file()


def check_reachable(url: str, timeout: float = 3.0) -> str | None:
    """Probe ``url``'s host (or the HTTPS proxy, when one is set) with a TCP connection.

    Returns None when the connection opens within ``timeout`` seconds, else the reason, as a
    short phrase. Name resolution counts against the timeout too (it runs in a thread, since
    ``getaddrinfo`` has no timeout of its own and can hang for long on an offline machine).
    """
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if not host:
        return f"the URL {url!r} has no host"
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname or host, proxy_parts.port or 80

    outcome: list[str | None] = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"{host}:{port} cannot be reached ({error.strerror or error})")

    worker = threading.Thread(target=connect, daemon=True, name="camutils-reachability")
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"{host}:{port} did not answer within {timeout:g} s"


def _unavailable(app: KerasApplication, reason: str) -> WeightsUnavailableError:
    host = urllib.parse.urlsplit(app.weights_url).hostname
    return WeightsUnavailableError(
        f"The model {app.name!r} needs the network once, to download its ImageNet weights "
        f"(about {app.size_mb} MB from {host}) into the Keras cache ({_keras_cache_dir()}), "
        f"and they cannot be downloaded now: {reason}.\n"
        f"  - Pre-fetch them while online:  python -m camutils prefetch {app.name}\n"
        f"    (or copy {app.weights_file} into the Keras cache folder of this machine).\n"
        f"  - Or use {OFFLINE_MODEL!r}, whose ImageNet weights ship with the course and work "
        f"offline: camutils.load_model({OFFLINE_MODEL!r})."
    )


def _unreadable(app: KerasApplication, weights: str, source: str, error: Exception):
    """The error for a weights file that Keras cannot load into the model."""
    what = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if source == "from a file":
        return ValueError(
            f"Cannot load the weights file {weights!r} into keras.applications."
            f"{app.constructor} ({what}): pass the path of that application's weights (an "
            "HDF5 or .weights.h5 file saved from the same architecture), \"imagenet\" or None.")
    return WeightsUnavailableError(
        f"The cached ImageNet weights of {app.name!r}, {Path(weights).name} in the Keras cache "
        f"({Path(weights).parent}), are incomplete or damaged: Keras cannot load them ({what}).\n"
        f"  - Delete that file and fetch it again while online:  python -m camutils prefetch "
        f"{app.name}\n"
        f"  - Or use {OFFLINE_MODEL!r}, whose ImageNet weights ship with the course and work "
        f"offline: camutils.load_model({OFFLINE_MODEL!r})."
    )


def _damage(path: Path, md5: str | None) -> str | None:
    """Why the cached file at ``path`` cannot be used (None when it is intact).

    With an MD5 (what Keras checks), the file must have it. Without one (MobileNetV2), it
    must be a complete HDF5 file whose every array can be read: a download cut short is
    not (HDF5 files record their length; a truncated one does not open, and a file of
    other bytes has no HDF5 signature).
    """
    if md5 is not None:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return None if digest.hexdigest() == md5 else f"its MD5 is not {md5}"
    import h5py

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(read)
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError ...
        return f"it is not a complete HDF5 file: {str(error).strip() or type(error).__name__}"
    return None


def _download(app: KerasApplication, timeout: float) -> Path:
    """Fetch ``app``'s weights into the Keras cache (no-op when cached); return the path.

    A damaged cached copy is replaced when the weights' host can be reached (it is deleted
    first: Keras does not download again a file without a hash that already exists).
    """
    path = cached_weights_path(app.name)
    damage = _damage(path, app.weights_md5) if path.is_file() else None
    if path.is_file() and damage is None:
        return path
    reason = check_reachable(app.weights_url, timeout)
    if reason is not None:
        if damage is not None:
            reason = (f"the cached copy {path.name} is incomplete or damaged ({damage}), "
                      f"and {reason}")
        raise _unavailable(app, reason)
    if damage is not None:
        path.unlink()
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(max(timeout, 30.0))  # a stalled download fails, not hangs
    try:
        fetched = keras.utils.get_file(
            app.weights_file, app.weights_url, cache_dir=str(path.parent.parent),
            cache_subdir=path.parent.name, file_hash=app.weights_md5,
        )
    except Exception as error:  # Keras raises a bare Exception on URL failures
        raise _unavailable(app, f"the download failed ({error})") from error
    finally:
        socket.setdefaulttimeout(previous)
    return Path(fetched)


def prefetch(names=None, timeout: float = 3.0) -> dict[str, Path]:
    """Download the ImageNet weights of the named applications (default: all) into the cache.

    Already cached weights are not downloaded again. Returns ``{name: path in the cache}``.

    Raises:
        WeightsUnavailableError: a download is impossible (no network); those fetched before
            it stay in the cache.
    """
    apps = [_application(n) for n in (names or APPLICATIONS)]
    return {app.name: _download(app, timeout) for app in apps}


def normalizer(name: str):
    """The function from RGB uint8 images to application ``name``'s float32 input.

    It is ``keras.applications.<module>.preprocess_input`` ("caffe" mode for VGG16 and ResNet50:
    RGB to BGR minus the ImageNet mean; "tf" mode for MobileNetV2 and Xception: x / 127.5 - 1),
    applied to a float32 copy, since ``preprocess_input`` changes float arrays in place.
    """
    import importlib

    preprocess_input = importlib.import_module(
        f"keras.applications.{_application(name).module}").preprocess_input

    def normalize(images: np.ndarray) -> np.ndarray:
        return np.asarray(preprocess_input(np.array(images, dtype=np.float32)), dtype=np.float32)

    return normalize


def load_keras_application(name: str, weights: str | os.PathLike | None = "imagenet",
                           timeout: float = 3.0):
    """A Keras application as a `camutils.zoo.ZooModel` that outputs logits.

    Args:
        name: ``"vgg16"``, ``"resnet50"``, ``"mobilenet_v2"`` or ``"xception"``.
        weights: ``"imagenet"`` (from the Keras cache; downloaded once when missing), a path
            to a weights file, or None for random weights (offline; for tests and exercises).
        timeout: seconds to wait for the weights' host before giving up.

    The input is centre-cropped to 87.5% of its shorter side and resized (bicubic) to the
    network's size, then mapped by the application's own ``preprocess_input``.

    Raises:
        WeightsUnavailableError: the ImageNet weights are not cached and cannot be downloaded
            (within ``timeout`` seconds when the host is unreachable); the message says how
            to pre-fetch them and which model works offline.
    """
    app = _application(name)
    source = {"imagenet": "ImageNet-1k (Keras applications)", None: "random"}.get(
        weights, "from a file")
    # The weights first: offline, this fails in seconds, before Keras is imported.
    if weights == "imagenet":
        weights = str(_download(app, timeout))
    elif weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"No weights file at {str(weights)!r}: pass \"imagenet\", None "
                                "(random weights) or the path of a weights file.")
    import keras

    from ..images import center_crop_resize
    from .imagenet import class_names
    from .model import ZooModel

    constructor = getattr(keras.applications, app.constructor)
    model = constructor(weights=None, classifier_activation=None,
                        input_shape=(*app.input_size, 3))
    if weights is not None:
        try:
            model.load_weights(weights)
        except Exception as error:  # h5py's OSError, Keras' ValueError on a wrong file
            raise _unreadable(app, weights, source, error) from None
    size, fraction = app.input_size, CROP_FRACTION
    return ZooModel(
        name=app.name,
        model=model,
        input_size=size,
        class_names=class_names(),
        cam_layer=app.cam_layer,
        prepare=lambda images: center_crop_resize(images, size, fraction),
        normalize=normalizer(app.name),
        offline=False,
        info={
            "architecture": f"keras.applications.{app.constructor}",
            "weights": source,
            "weights_file": str(weights) if weights else None,
            "outputs": "logits (built with classifier_activation=None)",
            "preprocessing": f"centre crop {fraction:g} of the shorter side, bicubic resize, "
                             f"keras.applications.{app.module}.preprocess_input",
        },
    )


def main(argv=None) -> int:
    """``python -m camutils.zoo.keras_apps {prefetch,list} [NAMES...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m camutils.zoo.keras_apps",
        description="Manage the Keras applications' ImageNet weights in the Keras cache.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("prefetch", help="download weights (default: every model)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=", ".join(APPLICATIONS))
    fetch.add_argument("--timeout", type=float, default=3.0,
                       help="seconds to wait for the host (default 3)")
    commands.add_parser("list", help="show each model and whether its weights are cached")
    args = parser.parse_args(argv)

    if args.command == "list":
        for app in APPLICATIONS.values():
            state = "cached" if weights_are_cached(app.name) else f"not cached (~{app.size_mb} MB)"
            print(f"{app.name:14s} {state:24s} {cached_weights_path(app.name)}")
        return 0
    try:
        apps = [_application(n) for n in (args.names or APPLICATIONS)]
    except ValueError as error:
        parser.error(str(error))
    status = 0
    for app in apps:
        try:
            print(f"{app.name}: {_download(app, args.timeout)}", flush=True)
        except WeightsUnavailableError as error:
            print(f"{app.name}: {error}", file=sys.stderr, flush=True)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
