"""The command line: ``camutils.__main__.main`` as ``python -m camutils`` runs it.

Most tests call `main` in this process (`run_cli`: the same arguments, exit status, standard
output and error as a user sees, without a TensorFlow start-up per test). A few run it as a
user does, in a subprocess (`run_cli_process`): the help, to show that it answers without
importing TensorFlow; a FIFO named like an image, which must be refused, not read (a
timeout ends the test if it blocks); and EfficientNet-Lite0 on a folder and a sample photo,
end to end.
Input errors that need no model are checked first; layer and class errors and the written
overlays use a tiny Keras model saved to a file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

TINY_SIZE = (32, 32)


def run_cli(*args) -> subprocess.CompletedProcess:
    """``python -m camutils ARGS``, in this process: exit status, standard output and error."""
    from camutils.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse: --help, or bad arguments
            status = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["camutils", *map(str, args)], status, out.getvalue(),
                                       err.getvalue())


def run_cli_process(*args, timeout=180) -> subprocess.CompletedProcess:
    """``python -m camutils ARGS`` in a subprocess, as a user runs it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    return subprocess.run([sys.executable, "-m", "camutils", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("camutils: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    from _models import gap_model

    folder = tmp_path_factory.mktemp("model")
    model = gap_model(size=TINY_SIZE, channels=(6, 8), classes=3, seed=2)
    path = folder / "tiny.keras"
    model.save(path)
    names = folder / "names.txt"
    names.write_text("circle\nsquare\ntriangle\n", encoding="utf-8")
    return path, names


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    from camutils.images import save_image

    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    save_image(folder / "noise.png", rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    save_image(folder / "stripes.jpg", np.tile(np.arange(0, 250, 10, dtype=np.uint8), (30, 2))[..., None]
               .repeat(3, axis=2))
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------ help


def test_help_documents_every_option_without_importing_tensorflow():
    code = ("import sys\nfrom camutils.__main__ import main\n"
            "try:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-NOT-LOADED')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("TF-NOT-LOADED")
    from camutils.__main__ import build_parser

    explain = build_parser()._subparsers._group_actions[0].choices["explain"]
    options = [o for action in explain._actions for o in action.option_strings]
    assert {"--model", "--method", "--target", "--layer", "--top-k", "--alpha", "--cmap",
            "--batch-size", "--out", "--classes", "--max-channels", "--quiet"} <= set(options)
    text = result.stdout
    for option in options:
        assert option in text, option
    for action in explain._actions:  # every option has a help text, shown
        assert action.help, action.dest
    assert "IMAGE" in text and "folders" in text and "default: gradcam" in text


def test_top_level_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("explain", "models", "layers", "samples", "prefetch"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


def test_models_and_samples_are_listed():
    models = run_cli("models")
    assert models.returncode == 0
    assert re.search(r"^efficientnet_lite0\s+offline", models.stdout, re.M)
    assert re.search(r"^vgg16\s+online once", models.stdout, re.M)
    samples = run_cli("samples")
    assert samples.returncode == 0 and re.search(r"^chelsea\s+a tabby cat", samples.stdout, re.M)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("args, message", [
    (["missing.png"], r"No image at 'missing\.png': the file does not exist\."),
    (["chelsa"], r"No image at 'chelsa'.*Did you mean the sample 'chelsea'"),
    (["chelsea", "--model", "efficientnet_lite"], r"Unknown model 'efficientnet_lite'\. "
                                                   r"Did you mean 'efficientnet_lite0'"),
    (["chelsea", "--model", "absent.keras"], r"No model file at 'absent\.keras'"),
    (["chelsea", "--method", "gradkam"], r"Unknown method 'gradkam'\. Methods, closest first: "
                                          r"gradcam"),
    (["chelsea", "--cmap", "jett"], r"Unknown colour map 'jett'\. Did you mean 'jet'"),
    (["chelsea", "--method", "gradcam", "--max-channels", "8"], r"Score-CAM only"),
])
def test_bad_input_prints_one_line_and_fails_before_loading_a_model(args, message, tmp_path):
    result = run_cli("explain", *args, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert re.search(message, _one_error_line(result))
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_an_image_is_refused_before_loading_a_model(tmp_path):
    os.mkfifo(tmp_path / "photo.png")  # reading it would block until something writes to it
    # in a subprocess: were it read, it would block, and the timeout ends the test
    result = run_cli_process("explain", tmp_path / "photo.png", "--out", tmp_path / "out",
                             timeout=60)
    assert result.returncode == 2
    assert re.search(r"photo\.png' is not a regular file", _one_error_line(result))


def test_a_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing", encoding="utf-8")
    result = run_cli("explain", tmp_path / "empty", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "has no image files" in _one_error_line(result)


def test_out_of_range_numbers_are_refused_by_the_parser(tmp_path):
    for option, value in (("--alpha", "1.5"), ("--top-k", "0"), ("--batch-size", "-2")):
        result = run_cli("explain", "chelsea", option, value, "--out", tmp_path)
        assert result.returncode == 2
        assert f"argument {option}" in result.stderr and "Traceback" not in result.stderr


def test_unknown_layer_and_class_name_the_candidates(tiny_model_file, tmp_path):
    model, names = tiny_model_file
    layer = run_cli("explain", "chelsea", "--model", model, "--layer", "conv9",
                    "--out", tmp_path)
    line = _one_error_line(layer)
    assert layer.returncode == 2
    assert "has no layer 'conv9'" in line and "'conv1'" in line and "'conv2'" in line
    target = run_cli("explain", "chelsea", "--model", model, "--classes", names,
                     "--target", "sqare", "--out", tmp_path)
    assert target.returncode == 2
    assert re.search(r"no class 'sqare'\. Did you mean 'square'", _one_error_line(target))
    assert not list(tmp_path.glob("*.png"))


# ------------------------------------------------------------------------------ overlays


def test_overlays_of_a_folder_are_written_with_the_expected_names_and_size(
        tiny_model_file, photo_folder, tmp_path):
    from camutils.images import load_image

    model, names = tiny_model_file
    out = tmp_path / "overlays"
    result = run_cli("explain", photo_folder, "coffee", "--model", model, "--classes", names,
                     "--method", "gradcam++", "--target", "triangle", "--top-k", "2",
                     "--alpha", "0.6", "--cmap", "viridis", "--batch-size", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    expected = {f"{stem}_gradcam++_triangle.png" for stem in ("noise", "stripes", "coffee")}
    assert {p.name for p in out.glob("*.png")} == expected
    # a folder is explained as a dataset: its shards, manifest and table beside the overlays
    assert {p.name for p in out.iterdir()} - expected == {"manifest.json", "index.csv", "shards"}
    for path in out.glob("*.png"):
        image = load_image(path)
        assert image.shape == (*TINY_SIZE, 3)
        assert image.std() > 0  # a real picture, not a blank
    # top-k per image: the image name, then k ranked classes, then the written file
    for stem in ("noise", "stripes", "coffee"):
        block = re.search(rf"^{stem}:\n  1\. (\w+) +[\d.]+%\n  2\. (\w+) +[\d.]+%\n  gradcam\+\+ "
                          rf"map of 'triangle' at conv2: (.+)$", result.stdout, re.M)
        assert block, result.stdout
        assert {block[1], block[2]} <= {"circle", "square", "triangle"}
        assert Path(block[3]).name == f"{stem}_gradcam++_triangle.png"
    assert "image/s" in result.stderr or "it/s" in result.stderr  # the progress bar


def test_overlay_file_is_the_library_overlay(tiny_model_file, tmp_path, capsys):
    """In process (the same code as the subprocess runs): the PNG is camutils' overlay."""
    import keras

    from camutils import explain, overlay
    from camutils.__main__ import main
    from camutils.images import load_image, resize

    model_path, _ = tiny_model_file
    status = main(["explain", "chelsea", "--model", str(model_path), "--method", "eigencam",
                   "--alpha", "0.7", "--quiet", "--out", str(tmp_path)])
    assert status == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.parent == tmp_path and written.name.startswith("chelsea_eigencam_class_")
    model = keras.saving.load_model(model_path, compile=False)
    seen = resize(load_image("chelsea"), TINY_SIZE)
    e = explain(model, seen[None].astype(np.float32) / 255.0, "eigencam")
    assert written.name == f"chelsea_eigencam_class_{int(e.class_index[0])}.png"
    np.testing.assert_array_equal(load_image(written), overlay(seen, e.maps[0], 0.7, "inferno"))


def test_an_image_over_the_pixel_limit_is_one_clear_error(tiny_model_file, tmp_path, capsys):
    """In process: a 50000 x 50000 PNG header is refused by name, with the limit and how to
    raise it (before: OpenCV's raw assertion message and exit status 1)."""
    from hostile_inputs import png_header

    from camutils.__main__ import main

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(50000, 50000))
    model_path, _ = tiny_model_file
    status = main(["explain", str(bomb), "--model", str(model_path), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 2, error
    assert re.search(r"camutils: error: '.*bomb\.png' has 2,500,000,000 pixels, more than "
                     r"camutils' limit of 100,000,000.*CAMUTILS_MAX_PIXELS=2500000000", error)
    assert not list((tmp_path / "out").glob("*"))


def test_layers_command_lists_the_spatial_layers(tiny_model_file, capsys):
    from camutils.__main__ import main

    model, _ = tiny_model_file
    assert main(["layers", str(model)]) == 0
    assert capsys.readouterr().out.splitlines() == ["conv1", "conv2   (default)"]


@pytest.mark.slow
def test_efficientnet_lite0_on_a_folder_and_a_sample(photo_folder, tmp_path):
    from camutils.images import load_image

    out = tmp_path / "lite0"
    result = run_cli_process("explain", "chelsea", photo_folder, "--target", "tabby cat",
                     "--top-k", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.glob("*.png")} == {
        f"{stem}_gradcam_tabby.png" for stem in ("chelsea", "noise", "stripes")}
    for path in out.glob("*.png"):
        assert load_image(path).shape == (224, 224, 3)
    chelsea = re.search(r"^chelsea:\n((?:  \d\. .+\n){3})", result.stdout, re.M)
    assert chelsea, result.stdout
    assert re.search(r"tabby|tiger_cat|Egyptian_cat", chelsea[1].splitlines()[0])


# ------------------------------------------------------------------------------ broken files


def _mixed_folder(folder: Path, broken=("b_broken",)) -> Path:
    """Good images a.png, c.png, d.jpg (with an odd-sized one) and junk files named ``broken``
    (sorted among them, so that good images come before and after each)."""
    from camutils.images import save_image

    rng = np.random.default_rng(8)
    folder.mkdir(parents=True, exist_ok=True)
    for name, shape in (("a.png", (30, 40)), ("c.png", (33, 33)), ("d.jpg", (20, 50))):
        save_image(folder / name, rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    for name in broken:
        (folder / f"{name}.png").write_bytes(b"\x89PNG but nothing more")
    return folder


def _temporary_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*") if ".tmp-" in p.name]


@pytest.mark.parametrize("batch_size", ["1", "2", "16"])
def test_a_corrupt_image_in_a_folder_is_named_and_skipped_at_any_batch_size(
        tiny_model_file, tmp_path, batch_size):
    """Every readable image is explained, the unreadable one is named, the exit status is 1
    at the end (before: with the default batch size the run stopped with nothing written; with
    --batch-size 1 the images after the corrupt one were never explained)."""
    from camutils.images import load_image

    model, names = tiny_model_file
    folder = _mixed_folder(tmp_path / "photos")
    out = tmp_path / "out"
    result = run_cli("explain", folder, "--model", model, "--classes", names, "--target",
                     "square", "--batch-size", batch_size, "--out", out)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("camutils: ")]
    assert errors[0].startswith("camutils: skipped b_broken: Cannot read '") and \
        "b_broken.png' as an image" in errors[0]
    assert errors[1] == ("camutils: error: 1 of 4 image(s) could not be read (named above); "
                         "the other 3 were explained.")
    assert len(errors) == 2
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["a_gradcam_square.png", "c_gradcam_square.png", "d_gradcam_square.png"]
    for name in written:
        assert load_image(out / name).shape == (*TINY_SIZE, 3)
    with open(out / "index.csv", newline="") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["a.png", "b_broken.png", "c.png", "d.jpg"]
    assert rows["b_broken.png"]["ok"] == "False" and "Cannot read" in rows["b_broken.png"]["error"]
    assert all(rows[i]["ok"] == "True" and rows[i]["class_name"] == "square"
               for i in ("a.png", "c.png", "d.jpg"))
    assert _temporary_files(out) == []
    # the same command again: nothing to redo, the unreadable image named again, status 1
    again = run_cli("explain", folder, "--model", model, "--classes", names, "--target",
                    "square", "--batch-size", batch_size, "--out", out, "--quiet")
    assert again.returncode == 1 and again.stdout == ""
    assert "skipped b_broken: Cannot read" in again.stderr and "(in an earlier run)" in again.stderr


def test_unreadable_files_among_files_are_named_and_skipped(tiny_model_file, tmp_path):
    model, _ = tiny_model_file
    folder = _mixed_folder(tmp_path / "photos", broken=("b_broken", "e_broken"))
    out = tmp_path / "out"
    files = [folder / n for n in ("e_broken.png", "a.png", "b_broken.png", "c.png")]
    result = run_cli("explain", *files, "--model", model, "--out", out, "--quiet")
    assert result.returncode == 1, result.stderr
    skipped = [re.match(r"camutils: skipped (\w+): Cannot read", line)[1]
               for line in result.stderr.splitlines() if line.startswith("camutils: skipped")]
    assert skipped == ["e_broken", "b_broken"]
    assert "2 of 4 image(s) could not be read (named above); the other 2 were explained." \
        in result.stderr
    assert sorted(p.name.split("_")[0] for p in out.glob("*.png")) == ["a", "c"]
    assert [Path(line).name.split("_")[0] for line in result.stdout.splitlines()] == ["a", "c"]
    assert not (out / "manifest.json").exists()  # files are not a dataset run

    none = run_cli("explain", folder / "b_broken.png", folder / "e_broken.png", "--model",
                   model, "--out", tmp_path / "none")
    assert none.returncode == 2
    assert sum(line.startswith("camutils: skipped") for line in none.stderr.splitlines()) == 2
    assert "none was explained" in none.stderr


def test_an_interrupted_run_leaves_no_partial_overlay(tiny_model_file, tmp_path, monkeypatch):
    """The run is interrupted after the second overlay's bytes are written, before it is
    renamed into place: the first overlay is whole, the second absent, no temporary file is
    left (before: overlays were written straight under their names, so an interruption during
    a write left a truncated PNG)."""
    from camutils.images import load_image

    model, _ = tiny_model_file
    folder = _mixed_folder(tmp_path / "photos", broken=())
    real_replace, calls = os.replace, []

    def replace_or_interrupt(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_or_interrupt)
    out = tmp_path / "out"
    result = run_cli("explain", folder / "a.png", folder / "c.png", folder / "d.jpg",
                     "--model", model, "--batch-size", "1", "--out", out, "--quiet")
    monkeypatch.undo()
    assert result.returncode == 130 and "interrupted" in result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 1 and written[0].startswith("a_") and _temporary_files(out) == []
    assert load_image(out / written[0]).shape == (*TINY_SIZE, 3)


def test_audit_summarises_a_folder_run(tiny_model_file, tmp_path):
    model, names = tiny_model_file
    folder = _mixed_folder(tmp_path / "photos")
    out = tmp_path / "out"
    assert run_cli("explain", folder, "--model", model, "--classes", names, "--out", out,
                   "--quiet").returncode == 1  # (the broken file)
    result = run_cli("audit", out, "--top", "2", "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Audited 3 maps from 1 of 1 shards; 1 unreadable image(s) "
                                    "skipped.")
    assert re.search(r"^\(all\) +3 ", result.stdout, re.M)
    assert (tmp_path / "report" / "report.html").is_file()
    assert result.stdout.rstrip().endswith(str(tmp_path / "report" / "report.html"))
    with open(tmp_path / "report" / "images.csv", newline="") as handle:
        assert [row["id"] for row in csv.DictReader(handle)] == ["a.png", "c.png", "d.jpg"]
    missing = run_cli("audit", folder)
    assert missing.returncode == 2 and "No dataset run in" in _one_error_line(missing)


def test_course_task_models_explain_their_natural_targets(tmp_path):
    """--target takes a class or label name for the segmenter, the detector and the
    multi-label model; a name the model cannot explain writes nothing."""
    import camutils
    from camutils.images import save_image

    scenes = camutils.make_scenes(1, seed=3, objects=3)
    image = tmp_path / "scene.png"
    save_image(image, scenes.images[0])
    present = camutils.SHAPE_CLASSES[int(scenes.labels[0, 0])]
    for model in ("shapes_segmenter", "shapes_detector", "shapes_multilabel"):
        result = run_cli("explain", image, "--model", model, "--target", present,
                         "--out", tmp_path / model, "-k", "2")
        assert result.returncode == 0, result.stderr
        written = tmp_path / model / f"scene_gradcam_{present}.png"
        assert written.is_file() and str(written) in result.stdout
    result = run_cli("explain", image, "--model", "shapes_detector", "--target", "width",
                     "--out", tmp_path / "none")
    assert "6 classes" in _one_error_line(result) and not (tmp_path / "none").exists()


def test_the_course_vit_explains_with_rollout(tmp_path):
    """The zoo's course ViT on the command line: a rollout overlay, which says it comes from
    the attention layers (rollout has no layer; the explorer's test lists the ViT's token
    layers)."""
    result = run_cli("explain", "chelsea", "--model", "shapes_vit", "--method", "rollout",
                     "--out", tmp_path, "-k", "1")
    assert result.returncode == 0, result.stderr
    assert re.search(r"rollout map of '\w+' at attention: .*chelsea_rollout_\w+\.png", result.stdout)
    assert len(list(tmp_path.glob("chelsea_rollout_*.png"))) == 1
