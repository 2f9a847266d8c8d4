"""The camutils command line: explain images with a CAM method, without writing code.

    python -m camutils explain photo.jpg --method gradcam --target tabby --out maps/
    python -m camutils explain photos/ --model efficientnet_lite0 --top-k 3 --out maps/
    python -m camutils explain scans/ --model my_model.keras --classes names.txt
    python -m camutils audit maps/          # where the maps of a folder run look, per class
    python -m camutils models            # the zoo, and which models work offline
    python -m camutils layers efficientnet_lite0
    python -m camutils prefetch vgg16    # while online: Keras application weights
    python -m camutils doctor            # can this machine run the course?

The same program is installed as the ``camutils`` command. Options are documented by
``--help`` on each command. Starting is quick: TensorFlow is imported only when a model is
loaded, so ``--help`` and most input errors answer at once. Bad input (a missing file, an
unknown model, method, layer or class) prints one line that says what is wrong and exits
with status 2.

A folder is explained as a dataset (`camutils.dataset.explain_dataset`): its images, found
in every subfolder, stream through a tf.data pipeline, the results go to ``--out`` in
resumable shards (with ``index.csv`` and ``manifest.json``) beside the overlays, and the same
command run again resumes an interrupted run. With files or a folder alike, an image that
cannot be read is named on stderr and skipped, every other image is explained, and the exit
status is then 1. Every file is written under a temporary name and renamed when complete, so
an interrupted run never leaves a truncated file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

from .images import IMAGE_SUFFIXES

__all__ = ["main", "build_parser", "IMAGE_SUFFIXES", "CommandError"]

PROG = "camutils"


class CommandError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    from .checks import positive_int

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    try:
        return positive_int(value, "the value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}") from None


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _fraction(text: str) -> float:
    value = _unit_float(text)
    if not 0.0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 0.5, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (cheap: imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Class Activation Mapping for Keras models: explain images from the "
                    "command line.",
        epilog="Run 'camutils COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_explain(commands)
    _add_audit(commands)
    _add_small_commands(commands)
    return parser


def _add_explain(commands) -> None:
    """The ``explain`` command: images, the model, the method and target, the overlays."""
    explain = commands.add_parser(
        "explain", help="write CAM overlays of images as PNG and print their top classes",
        description="Explain images with a CAM method: print each image's top classes and "
                    "write the map over the image, as the network saw it (centre crop and "
                    "resize), as PNG files named IMAGE_METHOD_CLASS.png. A folder is "
                    "explained as a dataset: the maps, classes and scores also go to --out in "
                    "resumable shards (manifest.json, index.csv, shards/; see 'camutils "
                    "audit'), and running the same command again resumes an interrupted run. "
                    "Unreadable images are named and skipped (exit status 1 at the end).",
    )
    explain.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, folders (every image file in them and in their "
                              f"subfolders: {', '.join(IMAGE_SUFFIXES)}) or sample photo names "
                              "(see 'camutils samples')")
    explain.add_argument("--model", "-m", default="efficientnet_lite0",
                         help="zoo model name (see 'camutils models'), or your own Keras model "
                              "file (.keras): images are then resized to its input size and "
                              "scaled to [0, 1] (default: %(default)s)")
    explain.add_argument("--classes", default=None, metavar="FILE",
                         help="with a model file: a text file with one class name per line, "
                              "in output order (default: class_0, class_1, ...)")
    explain.add_argument("--method", default="gradcam",
                         help=f"CAM method, by kind: {_methods_help()} (default: %(default)s)")
    explain.add_argument("--target", "-t", default=None,
                         help="class to explain, by name (ImageNet lemmas such as 'tabby cat' "
                              "work) or index; default: each image's top class. For the "
                              "course's other models a class or label name: a label of the "
                              "multi-label model, the predicted region of a class for the "
                              "segmenter, the strongest detection of a class for the "
                              "detector (default: the largest region, the strongest "
                              "detection)")
    explain.add_argument("--layer", default=None,
                         help="layer to explain, a name or 'outer/inner' path (see 'camutils "
                              "layers MODEL'); default: the model's CAM layer")
    explain.add_argument("--top-k", "-k", type=_positive_int, default=5,
                         help="how many top classes to print per image (default: %(default)s)")
    explain.add_argument("--alpha", type=_unit_float, default=0.5,
                         help="opacity of the map over the image, 0 (image only) to 1 (map only); default: %(default)s")
    explain.add_argument("--cmap", default="inferno",
                         help="matplotlib colour map: inferno, viridis, magma, cividis, jet, ... "
                              "(default: %(default)s)")
    explain.add_argument("--batch-size", "-b", type=_positive_int, default=16,
                         help="images explained together in one batch (default: %(default)s)")
    explain.add_argument("--out", "-o", default="cam_overlays",
                         help="folder for the PNG files, created when missing (default: %(default)s)")
    explain.add_argument("--max-channels", type=_positive_int, default=None,
                         help=f"{_labels_with_option('max_channels')} only: use this many of "
                              "the most active channels (default: all of them; fewer is "
                              "faster)")
    explain.add_argument("--quiet", "-q", action="store_true",
                         help="print only the written file names, no top-k and no progress bar")


def _add_audit(commands) -> None:
    """The ``audit`` command: a finished folder run and the report's settings."""
    audit = commands.add_parser(
        "audit", help="summarise a folder run: where the maps look, per class; shortcut suspects",
        description="Audit a finished folder run (the --out folder of 'camutils explain "
                    "FOLDER'): per-class mean maps, the share of map energy in the image's "
                    "border and corners per class and per image, the images least like their "
                    "class's mean map, and the suspects for a shortcut. Prints the findings and "
                    "writes an HTML report with figures (DIR/audit/report.html).")
    audit.add_argument("run", metavar="DIR", help="the output folder of a folder run")
    audit.add_argument("--border", type=_fraction, default=0.125,
                       help="width of the border, as a fraction of each side (default: "
                            "%(default)s)")
    audit.add_argument("--corner", type=_fraction, default=0.25,
                       help="side of each corner square, as a fraction of each side (default: "
                            "%(default)s)")
    audit.add_argument("--top", type=_positive_int, default=12,
                       help="how many suspect and least typical images to list (default: "
                            "%(default)s)")
    audit.add_argument("--report", default=None, metavar="FOLDER",
                       help="where to write the report (default: DIR/audit)")


def _add_small_commands(commands) -> None:
    """models, layers, samples, prefetch and doctor."""
    commands.add_parser("models", help="list the zoo's models and whether they work offline",
                        description="List the zoo's models and whether they work offline.")
    layers = commands.add_parser("layers", help="list a model's spatial layers (for --layer)",
                                 description="List the layers a CAM method can explain, in "
                                             "call order; the model's default is marked.")
    layers.add_argument("model", metavar="MODEL", help="zoo model name or Keras model file")
    commands.add_parser("samples", help="list the offline sample photos (usable as IMAGE)",
                        description="List the offline sample photos; their names work as "
                                    "IMAGE in 'camutils explain'.")
    prefetch = commands.add_parser(
        "prefetch", help="download Keras applications' ImageNet weights (needs the network)",
        description="Download the ImageNet weights of Keras applications into the Keras "
                    "cache, so that they work offline later.")
    prefetch.add_argument("names", nargs="*", metavar="NAME",
                          help="vgg16, resnet50, mobilenet_v2, xception (default: all)")
    prefetch.add_argument("--timeout", type=float, default=3.0,
                          help="seconds to wait for the host (default 3)")
    doctor = commands.add_parser(
        "doctor", help="check that this machine can run the course",
        description="Pre-flight check: versions against the supported range, free memory, "
                    "models available offline, a Jupyter kernel. Exits with status 1 and the "
                    "remedy when the course cannot run.")
    doctor.add_argument("--no-kernel", action="store_true",
                        help="skip starting a Jupyter kernel (the slowest check)")


def _labels_with_option(option: str) -> str:
    """The labels of the methods that have ``option`` ("Score-CAM"), from the method table."""
    from .methods.registry import method_table

    return ", ".join(m.label for m in method_table() if option in m.option_names) or "no method"


def _methods_help() -> str:
    """The methods of the method table, grouped by kind: "gradient-free: cam, eigencam; ..."."""
    from .methods.registry import method_table

    kinds: dict[str, list[str]] = {}
    for method in method_table():
        kinds.setdefault(method.kind, []).append(method.name)
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in kinds.items())


def _version() -> str:
    from . import __version__

    return __version__


# --------------------------------------------------------------------------- explain


def collect_images(arguments: list[str], exclude=None) -> list[tuple[str, str | Path]]:
    """``(name, source)`` for every image named by the arguments, in order.

    A folder gives its image files and those of its subfolders (sorted by path; the name is
    the path under the folder); a file is taken as it is; a sample photo name gives that
    sample. Names are unique (a repeated one gets its suffix, then a number). A folder
    ``exclude`` (the output) is left out of the folders searched. Raises `CommandError` for
    anything else.
    """
    from .dataset.sources import folder_files
    from .samples import sample_names, suggest

    found: list[tuple[str, str | Path]] = []
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            files = folder_files(path, exclude)
            if not files:
                raise CommandError(f"The folder {argument!r} has no image files (looked, in it "
                                   f"and its subfolders, for {', '.join(IMAGE_SUFFIXES)}).")
            found += [(p.relative_to(path).with_suffix("").as_posix(), p) for p in files]
        elif path.is_file():
            found.append((path.stem, path))
        elif path.exists():  # a FIFO, a device or a socket: reading it could block forever
            raise CommandError(f"{argument!r} is not a regular file: camutils reads images only "
                               "from regular files.")
        elif argument in sample_names():
            found.append((argument, argument))
        else:
            raise CommandError(f"No image at {argument!r}: the file does not exist."
                               f"{suggest(argument)}")
    return _unique_names(found)


def _unique_names(found: list) -> list:
    """The same list with every name made unique: ``photo`` twice becomes ``photo`` and
    ``photo_png`` (its suffix), then ``photo_2``, ... (decided before anything runs, so that a
    resumed run names its overlays as the first run did)."""
    counts: dict[str, int] = {}
    for name, _ in found:
        counts[name] = counts.get(name, 0) + 1
    used: set[str] = set()
    unique = []
    for name, source in found:
        candidate = name
        if counts[name] > 1 and isinstance(source, Path):
            candidate = f"{name}_{source.suffix.lstrip('.').lower()}"
        number = 1
        while _slug(candidate) in used:
            number += 1
            candidate = f"{name}_{number}"
        used.add(_slug(candidate))
        unique.append((candidate, source))
    return unique


def _check_cmap(name: str) -> None:
    import matplotlib

    if name not in matplotlib.colormaps:
        from .suggestions import did_you_mean

        hint = did_you_mean(name, list(matplotlib.colormaps))
        raise CommandError(f"Unknown colour map {name!r}.{hint} Perceptually uniform choices: "
                           "inferno, viridis, magma, cividis.")


def _slug(text: str) -> str:
    """A file-name-safe form of ``text`` (letters, digits, '.', '+', '-' and '_')."""
    return re.sub(r"[^\w.+-]+", "_", str(text)).strip("_") or "image"


class _Overlays:
    """Writes each image's overlay (atomically) and prints its top classes."""

    def __init__(self, args, folder: Path, method: str, layer: str, class_names, out, bar):
        self.args, self.folder, self.method, self.layer = args, folder, method, layer
        self.class_names, self.out, self.bar = class_names, out, bar
        self.k = min(args.top_k, len(class_names))
        self.unreadable: list[tuple[str, str]] = []

    def write(self, name: str, seen, heat, class_index: int, rows, fractions=True) -> None:
        """Write one overlay; ``rows`` are the image's predictions ``(index, name, value)``,
        best first (`camutils.course.tasks.predictions`), values fractions or not."""
        from .images import save_image
        from .plot import overlay

        class_name = self.class_names[int(class_index)] if class_index >= 0 else "score"
        path = self.folder / f"{_slug(name)}_{_slug(self.method)}_{_slug(class_name)}.png"
        save_image(path, overlay(seen, heat, self.args.alpha, self.args.cmap))
        lines = [] if self.args.quiet else [f"{name}:"] + [
            f"  {rank}. {label:<24s} " + (f"{value:6.1%}" if fractions else f"{value:8.3f}")
            for rank, (_, label, value) in enumerate(rows[:self.k], start=1)]
        lines.append(str(path) if self.args.quiet else
                     f"  {self.method} map of '{class_name}' at {self.layer}: {path}")
        self.bar.write("\n".join(lines), file=self.out)

    def skip(self, name: str, message: str) -> None:
        self.unreadable.append((name, message))
        self.bar.write(f"{PROG}: skipped {name}: {' '.join(str(message).split())}",
                       file=sys.stderr)


def run_explain(args, out=None) -> int:
    """The ``explain`` command; returns the exit status."""
    out = sys.stdout if out is None else out
    from .methods.registry import method_info

    method = method_info(args.method).name
    _check_cmap(args.cmap)
    if args.max_channels is not None and \
            "max_channels" not in method_info(method).option_names:
        raise CommandError(f"--max-channels applies to {_labels_with_option('max_channels')} "
                           f"only, not to {method!r}.")
    folder = Path(args.out).expanduser()
    images = collect_images(args.images, exclude=folder)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {args.out!r} is a file, not a folder.")
    folders = [Path(a).expanduser() for a in args.images if Path(a).expanduser().is_dir()]

    from tqdm.auto import tqdm

    from .methods.layers import resolve_layer
    from .widgets.classes import find_class

    zoo = load_cli_model(args.model, args.classes)
    layer = resolve_layer(zoo.model, zoo.cam_layer if args.layer is None else args.layer)
    target = None if args.target is None else find_class(args.target, zoo.class_names)
    _check_target(zoo, target, folders)
    options = {} if args.max_channels is None else {"max_channels": args.max_channels}
    show_bar = not args.quiet and len(images) > 1
    with tqdm(total=len(images), desc=f"{method} on {zoo.name}", unit="image",
              disable=not show_bar, file=sys.stderr) as bar:
        where = method_info(method).map_source or layer  # "attention": rollout has no layer
        overlays = _Overlays(args, folder, method, where, zoo.class_names, out, bar)
        if folders:
            _explain_as_dataset(args, zoo, images, folders, method, layer, target, options,
                                overlays, bar)
        else:
            _explain_files(args, zoo, images, method, layer, target, options, overlays, bar)
    failed = len(overlays.unreadable)
    if not failed:
        return 0
    if failed == len(images) == 1:
        raise CommandError(overlays.unreadable[0][1])
    explained = len(images) - failed
    print(f"{PROG}: error: {failed} of {len(images)} image(s) could not be read (named above)"
          + (f"; the other {explained} were explained." if explained else "; none was "
             "explained."), file=sys.stderr)
    return 1 if explained else 2


def _check_target(zoo, index, folders) -> None:
    """Refuse a target that does not fit the model before any image is read or any file
    written: the target that ``index`` means for the model's task, checked against its
    output (`camutils.targets.bind`)."""
    from .course.tasks import natural_target
    from .methods.pipeline import output_of
    from .targets import bind

    if folders and zoo.task != "classification":
        raise CommandError(
            f"A folder is explained as a dataset, which explains classifiers; {zoo.name!r} is "
            f"a {zoo.task} model. Pass its image files instead (e.g. folder/*.png).")
    output = output_of(zoo.model)
    blank = np.zeros((1, *(s or 1 for s in output.shape[1:])), np.float32)
    bind(natural_target(zoo, index, blank), output, 1, zoo.class_names)


def _explain_files(args, zoo, images, method, layer, target, options, overlays, bar) -> None:
    """Images one batch at a time: load each (an unreadable one is named and skipped),
    explain the batch, write the overlays."""
    from .course.tasks import natural_target, predictions, values_are_fractions
    from .images import load_image
    from .methods import explain

    for start in range(0, len(images), args.batch_size):
        batch = images[start:start + args.batch_size]
        names, pictures = [], []
        for name, source in batch:
            try:
                pictures.append(load_image(source))
                names.append(name)
            except (OSError, ValueError) as error:
                if len(images) == 1:
                    raise CommandError(str(error)) from None
                overlays.skip(name, str(error))
        if pictures:
            inputs, seen = zoo.preprocess(pictures)
            outputs = zoo.predict_inputs(inputs, batch_size=args.batch_size)
            explanation = explain(zoo.model, inputs, method=method,
                                  target=natural_target(zoo, target, outputs), layer=layer,
                                  class_names=zoo.class_names, **options)
            rows = predictions(zoo, outputs, args.top_k)
            for i, name in enumerate(names):
                overlays.write(name, seen[i], explanation.maps[i],
                               explanation.class_index[i], rows[i], values_are_fractions(zoo))
        bar.update(len(batch))


def _explain_as_dataset(args, zoo, images, folders, method, layer, target, options, overlays,
                        bar) -> None:
    """A folder: `camutils.dataset.explain_dataset` into --out (resumable shards), with the
    overlays and the top classes written as each batch comes."""
    from .dataset.runner import explain_with_callback

    names = [name for name, _ in images]
    if len(args.images) == 1:
        source = folders[0]  # ids relative to the folder, as the names are
    else:
        source = [str(s) for _, s in images]
    model = zoo
    if zoo.info.get("source"):  # a model file: explain_dataset's own resize and scale
        model = zoo.model

    def on_batch(rows, unreadable):
        for index, message in unreadable:
            overlays.skip(names[index], message)
        for i in np.flatnonzero(rows["ok"]):
            probabilities = rows["probabilities"][i]
            order = np.argsort(-probabilities, kind="stable")[:args.top_k]
            overlays.write(names[int(rows["index"][i])], rows["seen"][i], rows["maps"][i],
                           rows["class_index"][i],
                           [(c, zoo.class_names[c], probabilities[c]) for c in order])

    run = explain_with_callback(model, source, method, target, layer,
                                out=Path(args.out).expanduser(), batch_size=args.batch_size,
                                class_names=zoo.class_names, options=options,
                                on_batch=on_batch, bar=bar)
    for index, _, message in run.resumed_unreadable:  # named again: the run still lacks them
        overlays.skip(names[index], message + " (in an earlier run)")


MODEL_SUFFIXES = (".keras",)


def load_cli_model(spec: str, classes: str | None = None):
    """A `ZooModel` from a zoo name, or from a Keras model file (``.keras``).

    A model file gets plain preprocessing: each image resized (no crop) to the model's input
    size and scaled to [0, 1]. ``classes`` names a text file with one class name per line.
    """
    path = Path(spec).expanduser()
    if path.suffix.lower() not in MODEL_SUFFIXES:
        if classes is not None:
            raise CommandError("--classes is only for a model file (.keras); zoo models know "
                               "their class names.")
        from .zoo import load_model

        try:
            return load_model(spec)
        except ValueError as error:
            raise CommandError(f"{error} Or pass a Keras model file (.keras).") from None
    if not path.is_file():
        raise CommandError(f"No model file at {spec!r}: the file does not exist.")
    import keras
    import numpy as np

    from .images import resize
    from .methods.layers import resolve_layer
    from .zoo import ZooModel

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise CommandError(f"Cannot load the Keras model {spec!r}: {error}") from None
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise CommandError(f"The model {spec!r} takes inputs of shape {shape}; the command "
                           "line needs a fixed (batch, height, width, channels) image input.")
    size = (int(shape[1]), int(shape[2]))
    count = int(model.output_shape[-1])
    names = [f"class_{i}" for i in range(count)]
    if classes is not None:
        names_path = Path(classes).expanduser()
        if not names_path.is_file():
            raise CommandError(f"No class-name file at {classes!r}: the file does not exist.")
        names = [line.strip() for line in names_path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        if len(names) != count:
            raise CommandError(f"{classes!r} has {len(names)} class names but the model has "
                               f"{count} outputs: give one name per line, in output order.")
    try:
        layer = resolve_layer(model)
    except ValueError:  # a per-pixel output: --layer is needed (resolve_layer says so later)
        layer = None
    return ZooModel(
        name=path.stem, model=model, input_size=size, class_names=names,
        cam_layer=layer,
        prepare=lambda images: np.stack([resize(image, size) for image in images]),
        normalize=lambda seen: np.asarray(seen, np.float32) / 255.0,
        info={"source": str(path)},
    )


# --------------------------------------------------------------------------- the others


def run_audit(args, out=None) -> int:
    """The ``audit`` command: print the findings and the per-class table, write the report."""
    out = sys.stdout if out is None else out
    from .dataset.auditing import audit

    run = Path(args.run).expanduser()
    if not run.is_dir():
        raise CommandError(f"No folder at {args.run!r}: pass the --out folder of "
                           "'camutils explain FOLDER'.")
    summary = audit(run, border=args.border, corner=args.corner, top=args.top,
                    folder=None if args.report is None else Path(args.report).expanduser())
    print(str(summary), file=out)
    print(f"\nReport: {summary.report}", file=out)
    return 0


def run_models(out=None) -> int:
    out = sys.stdout if out is None else out
    from .zoo import list_models

    offline = list_models(offline_only=True)
    for name, description in list_models().items():
        where = "offline" if name in offline else "online once"
        print(f"{name:20s} {where:12s} {description}", file=out)
    return 0


def run_layers(args, out=None) -> int:
    out = sys.stdout if out is None else out
    from .methods.layers import spatial_layers

    zoo = load_cli_model(args.model)
    for path in spatial_layers(zoo.model):
        print(f"{path}{'   (default)' if path == zoo.cam_layer else ''}", file=out)
    return 0


def run_samples(out=None) -> int:
    out = sys.stdout if out is None else out
    from .samples import SAMPLES

    for name, sample in SAMPLES.items():
        print(f"{name:14s} {sample.description}", file=out)
    return 0


def run_prefetch(args) -> int:
    from .zoo.keras_apps import main as keras_apps_main

    return keras_apps_main(["prefetch", *args.names, "--timeout", str(args.timeout)])


# --------------------------------------------------------------------------- main


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    return " ".join(text.split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input, 1 failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # No TensorFlow start-up chatter on the terminal, and the same numbers as the notebooks.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        if args.command == "explain":
            return run_explain(args)
        if args.command == "audit":
            return run_audit(args)
        if args.command == "models":
            return run_models()
        if args.command == "layers":
            return run_layers(args)
        if args.command == "samples":
            return run_samples()
        if args.command == "prefetch":
            return run_prefetch(args)
        if args.command == "doctor":
            from .preflight import doctor

            return 0 if doctor(kernel=not args.no_kernel) else 1
        parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks
    except (CommandError, ValueError, TypeError, KeyError, FileNotFoundError) as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # e.g. weights that cannot be downloaded: still one clear line
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
