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

A file that cannot be read (cut short, overwritten, edited) raises `DamagedRunFile`, which
names it and says what to do: a damaged shard is re-run by deleting its two files and
explaining the dataset again with the same arguments.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_write_json, atomic_writer, is_temporary, json_default

__all__ = [
    "FORMAT", "FORMAT_VERSION", "FIELDS", "CSV_COLUMNS", "MANIFEST", "INDEX", "SHARDS",
    "shard_name", "shard_count", "complete_shards", "write_manifest", "read_manifest",
    "write_shard", "read_shard", "iter_shards", "read_table", "write_index", "check_shards",
    "ArgumentsDiffer", "DamagedRunFile", "check_arguments", "Shard",
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


class DamagedRunFile(ValueError):
    """A file of a dataset run cannot be read; the message names it and says what to do.

    Attributes:
        paths: the files that could not be read.
        shards: the numbers of the damaged shards (to re-run), if any.
    """

    def __init__(self, message: str, paths, shards=()):
        super().__init__(message)
        self.paths = [Path(p) for p in paths]
        self.shards = sorted(shards)


class _Unreadable(Exception):
    """A run's file that could not be read, and why (turned into `DamagedRunFile`)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


def _why(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


#: Manifest keys every reader needs, and their types.
_MANIFEST_KEYS = {"arguments": dict, "images": int, "shards": int, "map_shape": list}


def write_manifest(out: Path, manifest: dict) -> None:
    atomic_write_json(Path(out) / MANIFEST, manifest, durable=True)


def read_manifest(out) -> dict:
    """The manifest of the run in ``out``.

    Raises:
        FileNotFoundError: ``out`` holds no run (the message says what a run looks like).
        DamagedRunFile: the manifest cannot be read, or lacks what a run's manifest holds.
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged_manifest(out, path, _why(error)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not the manifest of a camutils dataset run.")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} was written by a newer camutils (format version "
                         f"{manifest['format_version']}); upgrade camutils to read it.")
    wrong = [f"{key} ({kind.__name__})" for key, kind in _MANIFEST_KEYS.items()
             if not isinstance(manifest.get(key), kind)]
    if wrong:
        raise _damaged_manifest(out, path, f"it lacks {', '.join(wrong)}")
    return manifest


def _damaged_manifest(out, path: Path, why: str) -> DamagedRunFile:
    return DamagedRunFile(
        f"Cannot read the manifest {str(path)!r} of the run in {str(out)!r} ({why}): the file is "
        "damaged. It records the run's arguments and cannot be rebuilt from the shards: restore "
        "it from a copy, or explain the dataset again into an empty folder (delete "
        f"{str(out)!r} first, or pass another out=).", [path])


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


def _read_arrays(path: Path, fields=None) -> dict:
    """The arrays of a shard's ``.npz`` (``fields``: only these; None: every field)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in (fields or FIELDS) if name not in data.files]
            if missing:
                raise _Unreadable(path, f"it lacks the field(s) {', '.join(missing)}")
            return {name: data[name] for name in (fields or data.files)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise _Unreadable(path, _why(error)) from None


def _read_text(path: Path) -> str:
    """A CSV table's text, as written (no newline translation)."""
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _Unreadable(path, _why(error)) from None


def _read_rows(path: Path, text: str | None = None) -> list[dict]:
    """The rows of one of the run's CSV tables (a shard's or ``index.csv``), checked: the
    format's header, and every row with every column."""
    text = _read_text(path) if text is None else text
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
    except csv.Error as error:
        raise _Unreadable(path, _why(error)) from None
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise _Unreadable(path, "its first line is not the table's header")
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise _Unreadable(path, f"row {line} has too few or too many columns")
    return rows


def _read_shard_files(out, number: int, fields=None, table_needed: bool = False):
    """Shard ``number``'s arrays and CSV rows (None when its CSV is absent and not
    ``table_needed``), the rows checked against the arrays' ``index``."""
    folder = Path(out) / SHARDS
    arrays = _read_arrays(folder / shard_name(number), fields)
    table = folder / shard_name(number, ".csv")
    if not (table_needed or table.is_file()):
        return arrays, None
    rows = _read_rows(table)
    if [row["index"] for row in rows] != [str(int(i)) for i in arrays["index"]]:
        raise _Unreadable(table, f"its rows are not the {len(arrays['index'])} images of "
                                 f"{shard_name(number)}")
    return arrays, rows


def _damaged_shards(out, problems: dict[int, _Unreadable]) -> DamagedRunFile:
    """The error for damaged shards: each file named, and how to re-run those shards."""
    out = Path(out)
    numbers = sorted(problems)
    named = "; ".join(f"{problems[k].path.relative_to(out).as_posix()} ({problems[k].reason})"
                      for k in numbers)
    files = ", ".join(f"{shard_name(k)} and {shard_name(k, '.csv')}" for k in numbers)
    these = "that shard" if len(numbers) == 1 else f"those {len(numbers)} shards"
    return DamagedRunFile(
        f"Cannot read the run in {str(out)!r}: {named}. The file is damaged (cut short or "
        f"overwritten). To re-run {these}, delete {files} from {str(out / SHARDS)!r}, then "
        "explain the dataset again with the same arguments and out= (camutils.explain_dataset, "
        "or the same python -m camutils explain command): it explains the missing shards and "
        "keeps the others.", [problems[k].path for k in numbers], numbers)


def read_shard(out, number: int) -> Shard:
    """Shard ``number`` of the run in ``out`` (its arrays, and the errors from its CSV).

    Raises:
        DamagedRunFile: a file of the shard cannot be read (named, with what to do).
    """
    try:
        arrays, rows = _read_shard_files(out, number)
    except _Unreadable as problem:
        raise _damaged_shards(out, {number: problem}) from None
    errors = [row["error"] for row in rows] if rows is not None else [""] * len(arrays["index"])
    return Shard(number, arrays, errors)


def check_shards(out, numbers) -> dict[int, list[dict]]:
    """The CSV rows of each complete shard in ``numbers``, after a check of both its files
    (its ``.npz`` opens and holds every field, its CSV is whole and lists the same images):
    what a resumed run relies on, without reading the maps.

    Raises:
        DamagedRunFile: naming every damaged shard among ``numbers`` and what to do.
    """
    rows, problems = {}, {}
    for number in sorted(numbers):
        try:
            rows[number] = _read_shard_files(out, number, fields=("index",), table_needed=True)[1]
        except _Unreadable as problem:
            problems[number] = problem
    if problems:
        raise _damaged_shards(out, problems)
    return rows


def iter_shards(out, numbers=None) -> Iterator[Shard]:
    """The complete shards of the run in ``out``, in order, one at a time (memory: one shard)."""
    for number in sorted(complete_shards(out) if numbers is None else numbers):
        yield read_shard(out, number)


def read_table(out) -> list[dict]:
    """Every row of the run's CSV tables (``index.csv`` when written, else the shards'), as
    dicts of strings, in index order."""
    out = Path(out)
    if not (out / INDEX).is_file():
        return [row for rows in check_shards(out, complete_shards(out)).values() for row in rows]
    try:
        return _read_rows(out / INDEX)
    except _Unreadable as problem:
        raise DamagedRunFile(
            f"Cannot read {str(out / INDEX)!r} ({problem.reason}): the file is damaged. Delete "
            "it, then explain the dataset again with the same arguments and out=: every shard "
            "is complete, so nothing is explained again, and index.csv is written anew from "
            "the shards' tables.", [out / INDEX]) from None


def write_index(out, shards: int) -> Path | None:
    """Join the shards' CSV tables into ``index.csv`` once all ``shards`` are complete
    (else do nothing and return None). Several workers may do it at once: each writes the
    same file under its own temporary name.

    Raises:
        DamagedRunFile: a shard's CSV table cannot be read (named, with what to do).
    """
    out = Path(out)
    if complete_shards(out) != set(range(shards)):
        return None
    with atomic_writer(out / INDEX, "w", encoding="utf-8", newline="") as target:
        for k in range(shards):
            path = out / SHARDS / shard_name(k, ".csv")
            try:
                text = _read_text(path)
                _read_rows(path, text)
            except _Unreadable as problem:
                raise _damaged_shards(out, {k: problem}) from None
            lines = text.splitlines(keepends=True)
            target.writelines(lines if k == 0 else lines[1:])
    return out / INDEX
