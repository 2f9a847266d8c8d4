"""Audit a finished dataset run: where do the maps look, class by class?

    summary = camutils.audit("maps/")        # reads maps/, writes maps/audit/report.html
    print(summary)                           # the findings and the per-class table
    summary.classes["circle"]["corner_share"]

A shortcut (a tag, a watermark, a ruler, a hospital's marker) usually sits where the object
does not: at the image's border, often in a corner. So the audit measures, for every map,
the share of its energy (the raw map, after the ReLU, upsampled to the input's size as
`camutils.explain` upsamples it) that falls in the image's **border** (the outer ``border``
fraction of each side) and in its four **corners** (squares of ``corner`` times each side),
and compares it with those regions' share of the image's area: a *lift* of 1 is what a map
spread evenly over the image gives; a class whose maps put several times their area's share
of energy in the corners reads something there. It also finds where each map peaks, each
class's mean map (every map scaled to sum 1, then averaged), and how unlike its class's mean
each map is (1 - cosine similarity), and lists the suspects:

* **classes** whose corner or border lift is at least `SUSPECT_LIFT`;
* **images** whose maps put the largest share of their energy in the corners and border;
* **images least like their class's mean** (a different explanation of the same class).

The shards are read twice, one at a time (the class means first, then each map's distance
to its mean), so an audit's memory does not grow with the dataset beyond a few numbers per
image. The report (``report.html``, with PNG figures and CSV tables beside it) opens in a
browser.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import format as fmt

__all__ = ["audit", "AuditSummary", "SUSPECT_LIFT", "region_weights", "bilinear_matrix"]

#: A class whose maps put at least this many times the area's share of their energy in the
#: corners or the border, or peak in the corners this many times as often as the corners'
#: share of the map's cells, is listed as a suspect.
SUSPECT_LIFT = 1.5


def bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """``(out_size, in_size)``: the weights of bilinear resizing along one axis with half-pixel
    centres (``tf.image.resize(..., "bilinear")`` when enlarging, and OpenCV's INTER_LINEAR),
    so that ``A_y @ raw @ A_x.T`` is the upsampled map."""
    matrix = np.zeros((out_size, in_size))
    position = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    position = np.clip(position, 0, in_size - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, in_size - 1)
    frac = position - low
    matrix[np.arange(out_size), low] += 1 - frac
    matrix[np.arange(out_size), high] += frac
    return matrix


def region_masks(size: tuple[int, int], border: float, corner: float) -> dict[str, np.ndarray]:
    """Boolean masks ``(H, W)`` of the border (the outer ``border`` of each side) and the four
    corners (squares of ``corner`` times each side)."""
    height, width = size
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    bh, bw = max(1, round(border * height)), max(1, round(border * width))
    ch, cw = max(1, round(corner * height)), max(1, round(corner * width))
    edge_y, edge_x = (ys < bh) | (ys >= height - bh), (xs < bw) | (xs >= width - bw)
    near_y, near_x = (ys < ch) | (ys >= height - ch), (xs < cw) | (xs >= width - cw)
    return {"border": edge_y | edge_x, "corners": near_y & near_x}


def region_weights(map_shape, input_size, border: float, corner: float) -> dict[str, np.ndarray]:
    """For each region, ``W`` of the map's shape ``(h, w)`` such that ``sum(W * raw)`` is the
    energy the upsampled map puts in the region (``"all"``: in the whole image)."""
    ay = bilinear_matrix(input_size[0], map_shape[0])
    ax = bilinear_matrix(input_size[1], map_shape[1])
    masks = region_masks(input_size, border, corner)
    masks["all"] = np.ones(input_size, bool)
    return {name: ay.T @ mask.astype(float) @ ax for name, mask in masks.items()}


@dataclass
class AuditSummary:
    """The audit of a run.

    Attributes:
        classes: per explained class (by name): ``images``, ``accuracy`` (None without
            labels), ``border_share`` / ``corner_share`` (mean share of map energy),
            ``border_lift`` / ``corner_lift`` (those over the regions' share of the area),
            ``corner_peaks`` (share of maps that peak in a corner), ``dissimilarity`` (mean
            1 - cosine similarity to the class's mean map), ``suspect`` (bool).
        overall: the same over every explained image.
        area: the regions' share of the image (``border``, ``corners``).
        findings: sentences that say what the numbers show.
        suspects: the images whose maps put the most energy in corners and border (dicts).
        least_typical: the images least like their class's mean map (dicts).
        unreadable: how many images of the run could not be read.
        report: the report's path (None when not written).
    """

    classes: dict
    overall: dict
    area: dict
    findings: list
    suspects: list
    least_typical: list
    unreadable: int = 0
    images: int = 0
    report: Path | None = None
    mean_maps: dict = field(default_factory=dict, repr=False)
    peaks: np.ndarray | None = field(default=None, repr=False)

    def table(self) -> str:
        """The per-class table as text."""
        head = (f"{'class':<16}{'images':>7}{'accuracy':>9}{'border':>8}{'corners':>8}"
                f"{'corner lift':>12}{'corner peaks':>13}{'unlike mean':>12}")
        lines = [head]
        rows = list(self.classes.items()) + [("(all)", self.overall)]
        for name, row in rows:
            accuracy = "-" if row.get("accuracy") is None else f"{row['accuracy']:.3f}"
            lines.append(f"{name[:15]:<16}{row['images']:>7d}{accuracy:>9}"
                         f"{row['border_share']:>8.1%}{row['corner_share']:>8.1%}"
                         f"{row['corner_lift']:>12.2f}{row['corner_peaks']:>13.1%}"
                         f"{row['dissimilarity']:>12.3f}" + ("  suspect" if row.get("suspect") else ""))
        lines.append(f"{'area':<16}{'':>7}{'':>9}{self.area['border']:>8.1%}"
                     f"{self.area['corners']:>8.1%}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return "\n".join(self.findings) + "\n\n" + self.table()

    def to_dict(self) -> dict:
        return {"images": self.images, "unreadable": self.unreadable, "area": self.area,
                "overall": self.overall, "classes": self.classes, "findings": self.findings,
                "suspects": self.suspects, "least_typical": self.least_typical}


def _per_image(raw: np.ndarray, weights: dict, corner_cells: np.ndarray):
    """Energy shares, peak cells and sum-1 maps of a shard's raw maps ``(n, h, w)``."""
    raw = np.maximum(np.nan_to_num(raw.astype(np.float64)), 0.0)
    total = np.einsum("nhw,hw->n", raw, weights["all"])
    with np.errstate(invalid="ignore", divide="ignore"):
        border = np.einsum("nhw,hw->n", raw, weights["border"]) / total
        corners = np.einsum("nhw,hw->n", raw, weights["corners"]) / total
        normalised = raw / raw.sum(axis=(1, 2), keepdims=True)
    peak = raw.reshape(len(raw), -1).argmax(axis=1)
    return total > 0, border, corners, peak, corner_cells.reshape(-1)[peak], normalised


def _cosine_distance(maps: np.ndarray, means: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of each map ``(n, h, w)`` with its own mean map ``(n, h, w)``."""
    a, b = maps.reshape(len(maps), -1), means.reshape(len(means), -1)
    denominator = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - np.einsum("nk,nk->n", a, b) / denominator


_COLUMNS = ("index", "class_index", "label", "border_share", "corner_share", "peak",
            "peak_in_corner", "shard")


def audit(out, report: bool = True, border: float = 0.125, corner: float = 0.25,
          top: int = 12, model=None, folder=None) -> AuditSummary:
    """Summarise the run in ``out`` (see the module's docstring); write the report.

    Args:
        out: the output folder of `camutils.explain_dataset` (or of ``python -m camutils
            explain FOLDER --out DIR``). A run still in progress is audited on its complete
            shards.
        report: write ``report.html`` with its figures and tables into ``folder``.
        border: the border's width, as a fraction of each side (0.125: an eighth).
        corner: each corner square's side, as a fraction of each side (0.25: a quarter).
        top: how many suspects and least typical images to list.
        model: the zoo model the run used, to show the suspects' images as the network saw
            them (without it, images from files are shown resized when the run resized them,
            and only the maps otherwise).
        folder: where the report goes (default: ``out/audit``).

    Returns:
        An `AuditSummary`.
    """
    if not (0 < border < 0.5 and 0 < corner <= 0.5):
        raise ValueError(f"border must be in (0, 0.5) and corner in (0, 0.5]; got {border}, "
                         f"{corner}.")
    top = max(1, int(top))
    out = Path(out)
    manifest = fmt.read_manifest(out)
    numbers = sorted(fmt.complete_shards(out))
    if not numbers:
        raise ValueError(f"The run in {str(out)!r} has no complete shard yet: nothing to audit.")
    regions = _Regions.of(manifest, border, corner)
    table, means, skipped = _measure(out, numbers, regions,
                                     int(manifest["arguments"]["model"]["classes"]))
    table["dissimilarity"] = _dissimilarity(out, numbers, table, means, regions)
    summary = _summarise(manifest, table, means, regions, top, skipped, len(numbers))
    if report:
        folder = Path(folder) if folder is not None else out / "audit"
        summary.report = _write_report(folder, out, manifest, summary, table, regions, model)
    return summary


@dataclass
class _Regions:
    """Where the border and the corners are, on the input and on the map's cells."""

    input_size: tuple
    map_shape: tuple
    masks: dict          # bool (H, W) at the input's size: "border", "corners"
    weights: dict        # (h, w): each region's energy from a raw map (`region_weights`)
    corner_cells: np.ndarray  # bool (h, w): the map's cells whose centre is in a corner
    areas: dict          # each region's share of the image (and of the map's cells)

    @classmethod
    def of(cls, manifest: dict, border: float, corner: float) -> "_Regions":
        input_size = tuple(manifest["arguments"]["model"]["input_shape"][:2])
        map_shape = tuple(manifest["map_shape"])
        masks = region_masks(input_size, border, corner)
        centres_y = ((np.arange(map_shape[0]) + 0.5) * input_size[0] / map_shape[0]).astype(int)
        centres_x = ((np.arange(map_shape[1]) + 0.5) * input_size[1] / map_shape[1]).astype(int)
        corner_cells = masks["corners"][centres_y][:, centres_x]
        areas = {"border": float(masks["border"].mean()),
                 "corners": float(masks["corners"].mean()),
                 "corner_cells": float(corner_cells.mean())}
        return cls(input_size, map_shape, masks,
                   region_weights(map_shape, input_size, border, corner), corner_cells, areas)


def _measure(out: Path, numbers: list[int], regions: _Regions, classes_count: int):
    """The first pass over the shards: each map's numbers (a table of `_COLUMNS`, ``id``),
    each class's mean sum-1 map, and how many images were unreadable or had an empty map."""
    parts: dict[str, list] = {name: [] for name in _COLUMNS}
    ids: list = []
    mean_sums = np.zeros((classes_count, *regions.map_shape))
    skipped = {"unreadable": 0, "empty": 0}
    for shard in fmt.iter_shards(out, numbers):
        a = shard.arrays
        live, border_share, corner_share, peak, in_corner, normalised = _per_image(
            a["raw"], regions.weights, regions.corner_cells)
        keep = a["ok"] & live
        skipped["unreadable"] += int((~a["ok"]).sum())
        skipped["empty"] += int((a["ok"] & ~live).sum())
        cls = a["class_index"][keep]
        np.add.at(mean_sums, cls, normalised[keep])
        for name, values in (("index", a["index"]), ("class_index", a["class_index"]),
                             ("label", a["label"]), ("border_share", border_share),
                             ("corner_share", corner_share), ("peak", peak),
                             ("peak_in_corner", in_corner),
                             ("shard", np.full(len(keep), shard.number))):
            parts[name].append(np.asarray(values)[keep])
        ids.append(a["id"][keep])
    table = {name: np.concatenate(values) for name, values in parts.items()}
    table["id"] = np.concatenate(ids)
    if not len(table["index"]):
        raise ValueError(f"The run in {str(out)!r} has no explained image with a non-empty map: "
                         "nothing to audit.")
    counts = np.bincount(table["class_index"], minlength=classes_count)
    return table, mean_sums / np.maximum(counts, 1)[:, None, None], skipped


def _dissimilarity(out: Path, numbers: list[int], table: dict, means: np.ndarray,
                   regions: _Regions) -> np.ndarray:
    """The second pass over the shards: each listed map's distance to its class's mean map,
    in the table's order."""
    order = np.argsort(table["index"])
    distance = np.full(len(order), np.nan)
    for shard in fmt.iter_shards(out, numbers):
        a = shard.arrays
        *_, normalised = _per_image(a["raw"], regions.weights, regions.corner_cells)
        rows = np.searchsorted(table["index"][order], a["index"])
        rows = np.minimum(rows, len(order) - 1)
        found = table["index"][order][rows] == a["index"]
        cls = np.where(found, a["class_index"], 0)
        distance[order[rows[found]]] = _cosine_distance(normalised[found], means[cls[found]])
    return distance


def _summarise(manifest: dict, table: dict, means: np.ndarray, regions: _Regions, top: int,
               skipped: dict, shards: int) -> AuditSummary:
    """The per-class rows, the findings and the listed images (the table gains each image's
    ``shortcut_score``)."""
    areas = regions.areas
    labelled = manifest["arguments"].get("labels") is not None
    class_names = manifest.get("class_names")
    name_of = _namer(class_names)
    present = np.flatnonzero(np.bincount(table["class_index"], minlength=len(means)))
    classes = {name_of(c): _class_row(table, table["class_index"] == c, areas, labelled)
               for c in present}
    count = len(table["index"])
    overall = _class_row(table, np.ones(count, bool), areas, labelled)
    table["shortcut_score"] = (table["corner_share"] / areas["corners"]
                               + table["border_share"] / areas["border"])

    def listed(key):
        ranked = np.lexsort((table["index"], -table[key]))[:top]
        return [_public(table, i, name_of) for i in ranked]

    return AuditSummary(
        classes=classes, overall=overall, area=areas,
        findings=_findings(classes, overall, areas, skipped["unreadable"], skipped["empty"],
                           count, shards, manifest["shards"]),
        suspects=listed("shortcut_score"), least_typical=listed("dissimilarity"),
        unreadable=skipped["unreadable"], images=count,
        mean_maps={name_of(c): means[c] for c in present},
        peaks=np.bincount(table["peak"],
                          minlength=int(np.prod(regions.map_shape))).reshape(regions.map_shape))


def _namer(class_names):
    """A class's name from its index: the run's class names, or ``"class 3"``."""
    if class_names:
        return lambda c: str(class_names[c])
    return lambda c: f"class {c}"


def _public(table: dict, i: int, name_of) -> dict:
    return {"index": int(table["index"][i]), "id": str(table["id"][i]),
            "class_name": name_of(int(table["class_index"][i])), "label": int(table["label"][i]),
            "border_share": float(table["border_share"][i]),
            "corner_share": float(table["corner_share"][i]),
            "peak_in_corner": bool(table["peak_in_corner"][i]),
            "dissimilarity": float(table["dissimilarity"][i]),
            "shortcut_score": float(table["shortcut_score"][i]),
            "shard": int(table["shard"][i])}


def _class_row(table: dict, rows: np.ndarray, areas: dict, labelled: bool) -> dict:
    border, corners = float(table["border_share"][rows].mean()), \
        float(table["corner_share"][rows].mean())
    peaks = float(table["peak_in_corner"][rows].mean())
    known = rows & (table["label"] >= 0)
    accuracy = float(np.mean(table["label"][known] == table["class_index"][known])) \
        if labelled and known.any() else None
    row = {"images": int(rows.sum()), "accuracy": accuracy,
           "border_share": border, "corner_share": corners,
           "border_lift": border / areas["border"], "corner_lift": corners / areas["corners"],
           "corner_peaks": peaks, "corner_peak_lift": peaks / areas["corner_cells"],
           "dissimilarity": float(np.nanmean(table["dissimilarity"][rows]))}
    row["suspect"] = bool(max(row["corner_lift"], row["border_lift"],
                              row["corner_peak_lift"]) >= SUSPECT_LIFT)
    return row


def _findings(classes, overall, areas, unreadable, empty, count, shards, total) -> list[str]:
    lines = [f"Audited {count} maps from {shards} of {total} shards"
             + (f"; {unreadable} unreadable image(s) skipped" if unreadable else "")
             + (f"; {empty} map(s) all zero left out" if empty else "") + "."]
    suspects = [name for name, row in classes.items() if row["suspect"]]
    lines.append(
        f"Over all maps, {overall['corner_share']:.0%} of the energy lies in the corners "
        f"({areas['corners']:.0%} of the image: lift {overall['corner_lift']:.1f}) and "
        f"{overall['border_share']:.0%} in the border ({areas['border']:.0%}: lift "
        f"{overall['border_lift']:.1f}); {overall['corner_peaks']:.0%} of the maps peak in a "
        f"corner ({areas['corner_cells']:.0%} of the map's cells: lift "
        f"{overall['corner_peak_lift']:.1f}).")
    if suspects:
        shown = ", ".join(
            f"{name} (corners: energy {classes[name]['corner_lift']:.1f}x, peaks "
            f"{classes[name]['corner_peak_lift']:.1f}x; border {classes[name]['border_lift']:.1f}x)"
            for name in suspects[:6])
        lines.append(
            f"SHORTCUT SUSPECT: {len(suspects)} of {len(classes)} classes put at least "
            f"{SUSPECT_LIFT:g} times their area's share of map energy, or of map peaks, in the "
            f"corners or the border: {shown}{', ...' if len(suspects) > 8 else ''}. Something "
            "at the image's edge predicts these classes: look at the corners of the suspect "
            "images, and test the model on images where that something is removed or "
            "randomised.")
    else:
        lines.append(f"No class puts {SUSPECT_LIFT:g} times its area's share of map energy or "
                     "peaks in the corners or the border.")
    accuracies = [row["accuracy"] for row in classes.values() if row["accuracy"] is not None]
    if accuracies and suspects and min(accuracies) > 0.95:
        lines.append("The suspect classes are also predicted almost perfectly: a high accuracy "
                     "does not rule a shortcut out; it is what a shortcut gives on data that "
                     "carries it.")
    return lines


# --------------------------------------------------------------------------- the report


def _view(manifest: dict, model):
    """A function from a listed image's row to the uint8 image the network saw, or None when
    that cannot be rebuilt (a dataset source, or an unknown preprocessing)."""
    from ..images import load_image, resize

    arguments = manifest["arguments"]
    kind = arguments["source"]["kind"]
    size = tuple(arguments["model"]["input_shape"][:2])
    if kind not in ("folder", "files"):
        return None
    if model is None and arguments.get("preprocessing", "").startswith("the zoo model"):
        try:  # the zoo model's own preprocessing (crop, resize)
            from ..zoo import list_models, load_model

            name = arguments["model"]["name"]
            if name in list_models(offline_only=True):
                model = load_model(name)
        except Exception:  # noqa: BLE001 - the report then shows the maps alone
            model = None
    if model is not None and hasattr(model, "prepare"):
        prepare = lambda image: np.asarray(model.prepare([image]))[0]  # noqa: E731
    elif arguments.get("preprocessing", "").startswith("resized to"):
        prepare = lambda image: resize(image, size)  # noqa: E731
    else:
        return None
    root = Path(manifest.get("source_root") or "")

    def view(row):
        path = root / row["id"] if kind == "folder" else Path(row["id"])
        try:
            return prepare(load_image(path))
        except (OSError, ValueError):
            return None

    return view


def _write_report(folder: Path, out: Path, manifest, summary: AuditSummary, table: dict,
                  regions: _Regions, model) -> Path:
    """The report in ``folder``: its figures, its tables (CSV, JSON) and ``report.html``."""
    from ..atomic import atomic_writer
    from . import audit_figures

    folder.mkdir(parents=True, exist_ok=True)
    name_of = _namer(manifest.get("class_names"))
    # the figures (camutils.dataset.audit_figures): the suspects figure shows every class
    suspects = audit_figures.strongest_per_class(table, "shortcut_score", _public, name_of)
    raws = _raw_maps(out, suspects + summary.least_typical)
    audit_figures.write(folder, summary, regions.masks, regions.input_size, suspects, raws,
                        _view(manifest, model))
    _write_tables(folder, summary, table, name_of)
    path = folder / "report.html"
    with atomic_writer(path, "w", encoding="utf-8") as handle:
        handle.write(_html(manifest, summary, out, folder))
    return path


def _write_tables(folder: Path, summary: AuditSummary, table: dict, name_of) -> None:
    """``classes.csv``, ``images.csv`` (in index order) and ``summary.json``."""
    from ..atomic import atomic_write_json

    _write_csv(folder / "classes.csv", ["class"] + list(summary.overall),
               [[n] + list(r.values()) for n, r in summary.classes.items()])
    order = np.argsort(table["index"])
    map_width = summary.peaks.shape[1]
    columns = ["index", "id", "class_index", "class_name", "label", "border_share",
               "corner_share", "peak_row", "peak_col", "peak_in_corner", "dissimilarity"]
    _write_csv(folder / "images.csv", columns, (
        [int(table["index"][i]), str(table["id"][i]), int(table["class_index"][i]),
         name_of(int(table["class_index"][i])), int(table["label"][i]),
         float(table["border_share"][i]), float(table["corner_share"][i]),
         int(table["peak"][i]) // map_width, int(table["peak"][i]) % map_width,
         bool(table["peak_in_corner"][i]), float(table["dissimilarity"][i])]
        for i in order))
    atomic_write_json(folder / "summary.json", summary.to_dict())


def _raw_maps(out: Path, rows: list[dict]) -> dict:
    """The raw maps of the listed images, by index (only their shards are read)."""
    wanted = {r["index"] for r in rows}
    found = {}
    for shard in fmt.iter_shards(out, sorted({r["shard"] for r in rows})):
        for i, index in enumerate(shard.arrays["index"]):
            if int(index) in wanted:
                found[int(index)] = np.maximum(shard.arrays["raw"][i], 0)
    return found


def _write_csv(path: Path, header, rows) -> None:
    import csv

    from ..atomic import atomic_writer

    with atomic_writer(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _html(manifest: dict, summary: AuditSummary, out: Path, folder: Path) -> str:
    e = html.escape
    a = manifest["arguments"]
    link = os.path.relpath(out, folder)

    def cells(values, tag="td"):
        return "".join(f"<{tag}>{e(str(v))}</{tag}>" for v in values)

    def percent(v):
        return "-" if v is None else f"{v:.1%}"

    rows = []
    for name, r in list(summary.classes.items()) + [("(all)", summary.overall)]:
        rows.append(("<tr class='suspect'>" if r.get("suspect") else "<tr>") + cells([
            name, r["images"], "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
            percent(r["border_share"]), f"{r['border_lift']:.2f}", percent(r["corner_share"]),
            f"{r['corner_lift']:.2f}", percent(r["corner_peaks"]), f"{r['dissimilarity']:.3f}",
            "suspect" if r.get("suspect") else ""]) + "</tr>")
    rows.append("<tr class='area'>" + cells(["(share of the image)", "", "",
                                              percent(summary.area["border"]), "1",
                                              percent(summary.area["corners"]), "1", "", "", ""])
                + "</tr>")

    def listing(items):
        return "".join("<tr>" + cells([r["id"], r["class_name"], percent(r["corner_share"]),
                                       percent(r["border_share"]), f"{r['dissimilarity']:.3f}"])
                       + "</tr>" for r in items)

    head = cells(["image", "class", "corners", "border", "unlike its class"], "th")
    findings = "".join(f"<li>{e(line)}</li>" for line in summary.findings)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>camutils audit: {e(a['model']['name'])}, {e(a['method'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1.5rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tr.suspect td {{ background: #fde8e8; }} tr.area td {{ color: #777; font-style: italic; }}
img {{ max-width: 100%; }} code {{ background: #f3f3f3; padding: 0 0.2rem; }}
</style></head><body>
<h1>Audit of a dataset run</h1>
<p>Model <code>{e(a['model']['name'])}</code>, method <code>{e(a['method'])}</code> at layer
<code>{e(str(a['layer']))}</code>; {summary.images} maps audited, {summary.unreadable} unreadable
image(s). Run folder: <code>{e(link)}</code> (its <code>index.csv</code> lists every image).</p>
<h2>Findings</h2><ul>{findings}</ul>
<h2>Per class</h2>
<p>Share of each map's energy (the raw map after its ReLU, upsampled to the input) in the
image's border (outer {summary.area['border']:.0%} of the area) and corners ({summary.area['corners']:.0%});
the lift is that share over the region's share of the area (1: as much as an even map);
"corner peaks": maps whose maximum lies in a corner; "unlike the mean": 1 - cosine similarity
to the class's mean map. Classes with a lift of {SUSPECT_LIFT:g} or more are marked.</p>
<table><tr>{cells(["class", "images", "accuracy", "border", "border lift", "corners",
                   "corner lift", "corner peaks", "unlike the mean", ""], "th")}</tr>
{''.join(rows)}</table>
<p><img src="energy.png" alt="energy in corners and border per class"></p>
<h2>Mean maps and peaks</h2>
<p><img src="class_means.png" alt="mean map of each class"></p>
<p><img src="peaks.png" alt="where the maps peak"></p>
<h2>Top suspects: most energy at the edge</h2>
<p><img src="suspects.png" alt="suspect images"></p>
<table><tr>{head}</tr>{listing(summary.suspects)}</table>
<h2>Least like their class</h2>
<p><img src="least_typical.png" alt="least typical images"></p>
<table><tr>{head}</tr>{listing(summary.least_typical)}</table>
<p>Tables: <a href="classes.csv">classes.csv</a>, <a href="images.csv">images.csv</a>
(every image), <a href="summary.json">summary.json</a>. A map shows where the evidence for a
class was found, not why: confirm a suspect with a controlled test (remove or randomise what
the maps point at, and measure the accuracy again).</p>
</body></html>
"""
