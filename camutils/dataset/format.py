"""The on-disk format of a dataset run: a manifest, shards of numpy arrays, CSV tables.

    OUT/
      manifest.json              what was run: the arguments (checked when a run resumes),
                                 the model's class names, the map size, the fields below
      shards/shard-00000.npz     the arrays of images 0 .. S-1 (numpy.load, no pickle)
      shards/shard-00000.csv     one row per image of the shard (pandas.read_csv, or csv)
      shards/shard-00001.npz ...
      index.csv                  every shard's rows, written when the last shard is done

Everything is read without camutils::

    import json, glob, numpy as np, pandas as pd
    manifest = json.load(open("OUT/manifest.json"))
    table = pd.read_csv("OUT/index.csv")                          # or the shards' CSVs
    shard = np.load("OUT/shards/shard-00000.npz")                 # allow_pickle stays False
    shard["raw"].shape, shard["class_index"], shard["id"]

A shard holds the images whose `index` (their position in the run's ordered list) lies in
``[k S, (k + 1) S)``, ``S`` the shard size. Each file is written under a temporary name and
renamed when complete (`camutils.atomic`), the CSV first: a shard is complete when its
``.npz`` exists, and a run interrupted at any moment resumes after its last complete shard.
Numpy and the standard library write everything, so the format needs neither pandas nor
pyarrow (pandas reads it, if you have it).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_write_json, atomic_writer, is_temporary, json_default

__all__ = [
    "FORMAT", "FORMAT_VERSION", "FIELDS", "CSV_COLUMNS", "MANIFEST", "INDEX", "SHARDS",
    "shard_name", "shard_count", "complete_shards", "write_manifest", "read_manifest",
    "write_shard", "read_shard", "iter_shards", "read_table", "write_index",
    "ArgumentsDiffer", "check_arguments", "Shard",
]

FORMAT = "camutils-explanations"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX = "index.csv"
SHARDS = "shards"

#: The arrays of a shard's ``.npz`` (``n`` images; ``h x w`` the layer's map; ``t`` top classes).
FIELDS = {
    "index": "int64 (n,): the image's position in the run's ordered list of images",
    "id": "str (n,): the image's path relative to the source folder, the path as given, or "
          "the dataset element's id (its position when it has none)",
    "ok": "bool (n,): whether the image was read and explained (False: see the CSV's error)",
    "label": "int64 (n,): the given label (a class index of the model when the names match "
             "its classes, else an index into the manifest's label_names); -1 when none",
    "class_index": "int64 (n,): the class the map explains; -1 for an unreadable image",
    "score": "float32 (n,): that class's logit; NaN for an unreadable image",
    "probability": "float32 (n,): that class's softmax probability; NaN for an unreadable image",
    "top_index": "int64 (n, t): the t most probable classes, best first (-1: unreadable)",
    "top_probability": "float32 (n, t): their probabilities (NaN: unreadable)",
    "raw": "float32 (n, h, w): the map at the layer's resolution, after the ReLU and before "
           "upsampling and normalisation (Explanation.raw); zeros for an unreadable image",
}

#: The columns of the CSV tables (one row per image).
CSV_COLUMNS = ("index", "id", "ok", "error", "label", "label_name", "class_index",
               "class_name", "score", "probability")

_SHARD = re.compile(r"^shard-(\d{5,})\.npz$")


def shard_name(k: int, suffix: str = ".npz") -> str:
    return f"shard-{k:05d}{suffix}"


def shard_count(images: int, shard_size: int) -> int:
    return max(1, math.ceil(images / shard_size))


# --------------------------------------------------------------------------- the manifest


class ArgumentsDiffer(ValueError):
    """The output folder holds a run with other arguments (the message says which)."""


def write_manifest(out: Path, manifest: dict) -> None:
    atomic_write_json(Path(out) / MANIFEST, manifest, durable=True)


def read_manifest(out) -> dict:
    """The manifest of the run in ``out``.

    Raises:
        FileNotFoundError: ``out`` holds no run (the message says what a run looks like).
        ValueError: the manifest is not one camutils wrote, or a newer format.
    """
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"No dataset run in {str(out)!r}: it has no {MANIFEST}. Explain a dataset into it "
            "first: camutils.explain_dataset(model, images, out=...) or "
            "python -m camutils explain FOLDER --out DIR.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not a readable manifest ({error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not the manifest of a camutils dataset run.")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} was written by a newer camutils (format version "
                         f"{manifest['format_version']}); upgrade camutils to read it.")
    return manifest


def _flatten(value, prefix="") -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def check_arguments(out: Path, stored: dict, wanted: dict) -> None:
    """Refuse to resume a run whose arguments differ from ``wanted`` (JSON-like dicts).

    Raises:
        ArgumentsDiffer: naming each argument that differs, its old and new value, and what
            to do instead.
    """
    old, new = _flatten(_normalised(stored)), _flatten(_normalised(wanted))
    differ = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    if not differ:
        return
    shown = "; ".join(f"{key}: {_short(old.get(key))} then, {_short(new.get(key))} now"
                      for key in differ[:6])
    more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
    raise ArgumentsDiffer(
        f"{str(out)!r} holds a run with other arguments ({shown}{more}); resuming it would mix "
        "two runs. Write to another folder, or delete this one to start over; to resume it, "
        "pass the arguments it was started with (its manifest.json lists them).")


def _normalised(value):
    return json.loads(json.dumps(value, default=json_default))


def _short(value) -> str:
    text = "(none)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- shards


@dataclass
class Shard:
    """One shard's arrays (`FIELDS`) and its CSV rows' error messages, in index order."""

    number: int
    arrays: dict
    errors: list

    def __len__(self) -> int:
        return len(self.arrays["index"])


def complete_shards(out) -> set[int]:
    """The numbers of the shards whose ``.npz`` exists (temporary files are ignored)."""
    folder = Path(out) / SHARDS
    if not folder.is_dir():
        return set()
    found = set()
    for path in folder.iterdir():
        match = _SHARD.match(path.name)
        if match and not is_temporary(path):
            found.add(int(match.group(1)))
    return found


def write_shard(out, number: int, arrays: dict, errors: list, class_names=None,
                label_names=None) -> Path:
    """Write shard ``number``: its CSV table, then its arrays (the ``.npz`` marks it complete).

    ``arrays`` holds every field of `FIELDS`; ``errors`` one message (or "") per image.
    """
    folder = Path(out) / SHARDS
    missing = set(FIELDS) - set(arrays)
    if missing:
        raise ValueError(f"A shard needs every field; missing: {sorted(missing)}.")
    with atomic_writer(folder / shard_name(number, ".csv"), "w", durable=True,
                       encoding="utf-8", newline="") as handle:
        handle.write(_csv_text(arrays, errors, class_names, label_names))
    with atomic_writer(folder / shard_name(number), "wb", durable=True) as handle:
        np.savez(handle, **{name: np.asarray(arrays[name]) for name in FIELDS})
    return folder / shard_name(number)


def _name(names, index: int) -> str:
    if names is None or index < 0 or index >= len(names):
        return ""
    return str(names[index])


def _number(value: float) -> str:
    return "" if not np.isfinite(value) else repr(float(value))


def _csv_text(arrays: dict, errors: list, class_names, label_names) -> str:
    label_names = class_names if label_names is None else label_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in range(len(arrays["index"])):
        label, cls = int(arrays["label"][i]), int(arrays["class_index"][i])
        writer.writerow([
            int(arrays["index"][i]), str(arrays["id"][i]), bool(arrays["ok"][i]), errors[i],
            label if label >= 0 else "", _name(label_names, label),
            cls if cls >= 0 else "", _name(class_names, cls),
            _number(arrays["score"][i]), _number(arrays["probability"][i]),
        ])
    return buffer.getvalue()


def read_shard(out, number: int) -> Shard:
    """Shard ``number`` of the run in ``out`` (its arrays, and the errors from its CSV)."""
    folder = Path(out) / SHARDS
    with np.load(folder / shard_name(number), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    errors = [""] * len(arrays["index"])
    table = folder / shard_name(number, ".csv")
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as handle:
            errors = [row["error"] for row in csv.DictReader(handle)]
    return Shard(number, arrays, errors)


def iter_shards(out, numbers=None) -> Iterator[Shard]:
    """The complete shards of the run in ``out``, in order, one at a time (memory: one shard)."""
    for number in sorted(complete_shards(out) if numbers is None else numbers):
        yield read_shard(out, number)


def read_table(out) -> list[dict]:
    """Every row of the run's CSV tables (``index.csv`` when written, else the shards'), as
    dicts of strings, in index order."""
    out = Path(out)
    paths = [out / INDEX] if (out / INDEX).is_file() else [
        out / SHARDS / shard_name(k, ".csv") for k in sorted(complete_shards(out))]
    rows = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def write_index(out, shards: int) -> Path | None:
    """Join the shards' CSV tables into ``index.csv`` once all ``shards`` are complete
    (else do nothing and return None). Several workers may do it at once: each writes the
    same file under its own temporary name."""
    out = Path(out)
    if complete_shards(out) != set(range(shards)):
        return None
    with atomic_writer(out / INDEX, "w", encoding="utf-8", newline="") as target:
        for k in range(shards):
            with open(out / SHARDS / shard_name(k, ".csv"), encoding="utf-8", newline="") as part:
                lines = part.read().splitlines(keepends=True)
            target.writelines(lines if k == 0 else lines[1:])
    return out / INDEX
