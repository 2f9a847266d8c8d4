"""Explaining a dataset: throughput against a forward-only tf.data pipeline, and flat memory.

    python -m benchmarks --dataset           # both blocks, each in fresh processes (~2 min)
    python -m benchmarks.dataset_bench throughput OUTPUT.json
    python -m benchmarks.dataset_bench memory OUTPUT.json

**Throughput** (one process): a folder of JPEG photos (the course's sample photos, each
cropped and flipped at random into `THROUGHPUT_IMAGES` distinct files of 200 to 500 pixels
a side, as a camera folder holds them). The baseline is the usual forward-only tf.data
pipeline over that folder: ``tf.io.read_file``, ``tf.io.decode_jpeg``, EfficientNet-Lite0's
centre crop and bicubic resize and ``(x - 127) / 128`` in a parallel map, batches of 32,
prefetch, and the compiled forward pass. The candidate is ``camutils.explain_dataset(lite0,
folder, "gradcam", out=NEW_FOLDER, batch_size=32)``: decoding with camutils.images (header
check, pixel limit, EXIF orientation) in its parallel map, Grad-CAM, and the shards written.
They run interleaved (`benchmarks.timing.Block`), and the budget is judged on the throughput
ratio, baseline time over candidate time, in wall time and in CPU time: the smaller of the
two (the stricter).

**Memory**: the peak resident memory (``ru_maxrss``) of a fresh process that explains
`MEMORY_IMAGES` [0] images and of one that explains `MEMORY_IMAGES` [1] images of the same
folder (the course's shapes network, Grad-CAM, 64 x 64 PNG files): the budget asks the larger
run to stay within 10% of the smaller. At this size a leak of about 8 kB per image (an input
image, a map at the input's size) would break it.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["THROUGHPUT_IMAGES", "MEMORY_IMAGES", "THROUGHPUT_BUDGET", "MEMORY_BUDGET",
           "measure_dataset", "jpeg_folder", "shapes_folder"]

THROUGHPUT_IMAGES = 256
BATCH = 32
MEMORY_IMAGES = (1000, 10000)
#: explain_dataset's throughput must be at least this share of the forward-only pipeline's.
THROUGHPUT_BUDGET = 0.85
#: The larger run's peak RSS must be at most this many times the smaller run's.
MEMORY_BUDGET = 1.10

ROOT = Path(__file__).resolve().parents[1]


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def jpeg_folder(folder: Path, count: int = THROUGHPUT_IMAGES, seed: int = 0) -> list[Path]:
    """``count`` distinct JPEG photos: sample photos, cropped, flipped and resized at random."""
    from camutils.images import encode_image, resize
    from camutils.samples import load_sample, sample_names

    rng = np.random.default_rng(seed)
    photos = [load_sample(name) for name in sample_names()]
    photos = [p for p in photos if min(p.shape[:2]) >= 200]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = photo[top:top + ch, left:left + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        scale = rng.uniform(200, 500) / max(crop.shape[:2])
        crop = resize(np.ascontiguousarray(crop),
                      (max(32, int(crop.shape[0] * scale)), max(32, int(crop.shape[1] * scale))))
        path = folder / f"photo_{i:04d}.jpg"
        path.write_bytes(encode_image(crop, ".jpg"))
        paths.append(path)
    return paths


def shapes_folder(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` shapes-world PNG files (64 x 64), written in chunks (memory stays low)."""
    import camutils
    from camutils.images import encode_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, count, 1000):
        images = camutils.make_shapes(min(1000, count - start), seed=seed + start).images
        for i, image in enumerate(images):
            path = folder / f"shape_{start + i:05d}.png"
            path.write_bytes(encode_image(image, ".png"))
            paths.append(path)
    return paths


def forward_only_pipeline(model, paths: list[Path], batch: int = BATCH):
    """The baseline: a plain tf.data pipeline (TensorFlow's own JPEG decoder, Lite0's crop,
    bicubic resize and normalisation in a parallel map) feeding the compiled forward pass."""
    import tensorflow as tf

    from camutils.model_cache import compiled_forward
    from camutils.zoo.efficientnet import CROP_FRACTION, INPUT_SIZE

    forward = compiled_forward(model)
    names = tf.constant([str(p) for p in paths])

    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        shape = tf.shape(image)
        side = tf.cast(tf.round(tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
                                * CROP_FRACTION), tf.int32)
        top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
        image = tf.image.resize(image[top:top + side, left:left + side], INPUT_SIZE, "bicubic")
        return (tf.clip_by_value(image, 0, 255) - 127.0) / 128.0

    def run():
        dataset = tf.data.Dataset.from_tensor_slices(names).map(
            load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(tf.data.AUTOTUNE)
        count = 0
        for inputs in dataset:
            count += len(np.asarray(forward(inputs)))
        return count

    return run


def measure_throughput(images: int = THROUGHPUT_IMAGES, rounds: int = 5,
                       progress: bool = True) -> dict:
    """The throughput block, in this process (see the module's docstring)."""
    import camutils

    from .timing import Block, run_block

    lite0 = camutils.load_model("efficientnet_lite0")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        paths = jpeg_folder(scratch / "photos", images)
        runs = iter(range(10**6))

        def candidate():
            run = camutils.explain_dataset(lite0, scratch / "photos", "gradcam",
                                           out=scratch / f"run{next(runs)}", batch_size=BATCH,
                                           progress=False)
            assert run.explained == images, run
            return run

        baseline = forward_only_pipeline(lite0.model, paths)
        block = Block("explain_dataset vs forward-only tf.data", baseline,
                      {"explain_dataset": candidate}, min_rounds=rounds, max_rounds=rounds,
                      budget_s=0)
        base, results = run_block(block, progress=progress)
        sizes = [max(p.stat().st_size for p in paths), min(p.stat().st_size for p in paths)]
    ours = results["explain_dataset"]
    wall, cpu = 1 / ours.ratio, 1 / ours.cpu_ratio
    return {
        "images": images, "batch": BATCH, "model": "efficientnet_lite0", "method": "gradcam",
        "rounds": len(ours.samples), "jpeg_bytes": {"largest": sizes[0], "smallest": sizes[1]},
        "baseline": base.as_dict(), "candidate": ours.as_dict(),
        "baseline_images_per_s": images / base.seconds,
        "candidate_images_per_s": images / ours.seconds,
        "throughput_ratio_wall": wall, "throughput_ratio_cpu": cpu,
        "throughput_ratio": min(wall, cpu),
    }


def _memory_child(folder: str, count: int) -> dict:
    """One run of ``count`` images in this (fresh) process: its peak RSS."""
    import camutils

    zoo = camutils.load_model("shapes_gap")
    paths = sorted(Path(folder).glob("*.png"))[:count]
    before = _peak_rss_mib()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run = camutils.explain_dataset(zoo, paths, "gradcam", out=out, batch_size=BATCH,
                                       progress=False)
        seconds = time.perf_counter() - started
    assert run.explained == count, run
    return {"images": count, "peak_rss_mib": _peak_rss_mib(), "before_run_mib": before,
            "seconds": seconds, "images_per_s": count / seconds}


def measure_memory(counts=MEMORY_IMAGES, progress: bool = True) -> dict:
    """The memory block: one fresh process per count, on one folder of shapes PNG files."""
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "shapes"
        shapes_folder(folder, max(counts))
        for count in counts:
            if progress:
                print(f"memory: {count} images ...", file=sys.stderr, flush=True)
            completed = subprocess.run(
                [sys.executable, "-m", "benchmarks.dataset_bench", "memory-child",
                 str(folder), str(count)], cwd=ROOT, capture_output=True, text=True,
                env=_env())
            if completed.returncode != 0:
                raise RuntimeError(f"The {count}-image run failed:\n{completed.stderr[-2000:]}")
            runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return {"model": "shapes_gap", "method": "gradcam", "batch": BATCH, "runs": runs,
            "peak_ratio": runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]}


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    return env


def measure_dataset(progress: bool = True) -> dict:
    """Both blocks, each in fresh processes; the result stored as ``dataset.json``."""
    from .machine import describe_machine

    result = {"date": _now(), "machine": describe_machine()}
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "throughput.json"
        if progress:
            print("dataset: throughput (EfficientNet-Lite0, one process) ...", file=sys.stderr,
                  flush=True)
        completed = subprocess.run([sys.executable, "-m", "benchmarks.dataset_bench",
                                    "throughput", str(output)], cwd=ROOT, env=_env(),
                                   stderr=subprocess.PIPE, text=True)
        if completed.returncode != 0 or not output.is_file():
            raise RuntimeError(f"The throughput block failed:\n{completed.stderr[-2000:]}")
        result["throughput"] = json.loads(output.read_text())
    result["memory"] = measure_memory(progress=progress)
    from .model_bench import environment

    result["environment"] = environment()
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.dataset_bench")
    parser.add_argument("block", choices=["throughput", "memory", "memory-child"])
    parser.add_argument("arguments", nargs="*")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if args.block == "memory-child":
        print(json.dumps(_memory_child(args.arguments[0], int(args.arguments[1]))))
        return 0
    result = measure_throughput() if args.block == "throughput" else measure_memory()
    Path(args.arguments[0]).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
