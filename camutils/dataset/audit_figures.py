"""The figures of an audit's report (`camutils.audit`): drawn in the course's figure style
(`camutils.plot`: text of at least 8 points at notebook width, titles that never overlap, a
colour bar wherever a colour carries a value) and saved sharp for high-density screens.

* ``class_means.png``: each class's mean map on one shared colour scale, beside the regions;
* ``energy.png``: each class's share of map energy in the corners and the border;
* ``peaks.png``: where the maps peak;
* ``suspects.png``: the strongest suspects *of each class* (every class shows, with its
  images as the network saw them), and ``least_typical.png``: the images least like their
  class's mean map.

A notebook shows them sharp with ``IPython.display.Image(path, retina=True)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plot import DEFAULT_CMAP, NOTEBOOK_WIDTH_INCHES, SHARP_DPI, STYLE, overlay

#: Images shown per class in suspects.png.
SUSPECTS_PER_CLASS = 2
_TILE = 2.05  # inches per image panel: four of them and a colour bar fit a notebook's width
_COLS = 4


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(min(width, NOTEBOOK_WIDTH_INCHES), height), layout="constrained")


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=SHARP_DPI, facecolor="white")
    return path


def class_means(summary, masks: dict, input_size) -> object:
    """Each class's mean map (every map scaled to sum 1, then averaged: a share of the map's
    energy per cell), upsampled as the maps are, on one colour scale, after a panel of the
    regions."""
    from ..images import resize

    names = list(summary.mean_maps)
    cols = min(_COLS, len(names) + 1)
    rows = -(-(len(names) + 1) // cols)
    fig = _figure(cols * _TILE + 0.9, rows * (_TILE + 0.45) + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    regions = np.where(masks["corners"], 2, np.where(masks["border"], 1, 0))
    axes[0].imshow(regions, cmap="Greys", vmin=0, vmax=2.6, interpolation="nearest")
    axes[0].set_title("regions: corners\ndark, border grey")
    upsampled = {name: resize(summary.mean_maps[name].astype(np.float32), input_size,
                              interpolation="bilinear") for name in names}
    top = max(float(m.max()) for m in upsampled.values()) or 1.0
    shown = None
    for ax, name in zip(axes[1:], names):
        row = summary.classes[name]
        shown = ax.imshow(upsampled[name], cmap=DEFAULT_CMAP, vmin=0, vmax=top,
                          interpolation="bilinear")
        ax.set_title(f"{name[:16]} ({row['images']})\n{row['corner_share']:.0%} in corners")
    for ax in axes:
        _bare(ax)
    for ax in axes[len(names) + 1:]:
        ax.set_axis_off()
    if shown is not None:
        fig.colorbar(shown, ax=axes.tolist(), shrink=0.8,
                     label="energy share per cell")
    fig.suptitle("Mean map of each class (every map scaled to sum 1)")
    return fig


def energy(summary) -> object:
    """Each class's mean share of map energy in the corners and the border, against the
    regions' share of the image."""
    names = list(summary.classes)
    fig = _figure(max(4.5, 0.6 * len(names) + 2.5), 3.2)
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x - 0.2, [summary.classes[n]["corner_share"] for n in names], 0.4, label="corners")
    ax.bar(x + 0.2, [summary.classes[n]["border_share"] for n in names], 0.4, label="border")
    ax.axhline(summary.area["corners"], color="C0", ls="--", lw=1, label="corners' area")
    ax.axhline(summary.area["border"], color="C1", ls=":", lw=1, label="border's area")
    ax.set_xticks(x, names, rotation=45 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_ylabel("share of map energy")
    ax.set_ylim(0, 1)
    ax.legend(ncol=2, loc="upper right")
    ax.set_title("Map energy in the corners and the border, per class")
    return fig


def peaks(summary) -> object:
    """The share of maps that peak in each cell of the map."""
    fig = _figure(4.2, 3.4)
    ax = fig.subplots()
    shown = ax.imshow(summary.peaks / max(1, summary.peaks.sum()), cmap=DEFAULT_CMAP,
                      interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="share of the maps")
    ax.set_title("Where the maps peak (per cell)")
    _bare(ax)
    return fig


def strongest_per_class(table: dict, key: str, public, name_of, per_class: int = SUSPECTS_PER_CLASS):
    """The ``per_class`` rows of each class with the highest ``key``, classes in index order:
    so that a figure of suspects shows every class, not the one whose maps lean most."""
    chosen = []
    for c in np.unique(table["class_index"]):
        rows = np.flatnonzero(table["class_index"] == c)
        ranked = rows[np.lexsort((table["index"][rows], -table[key][rows]))][:per_class]
        chosen += [public(table, int(i), name_of) for i in ranked]
    return chosen


def images(listed: list[dict], raws: dict, view, input_size, title: str) -> object:
    """The listed images as the network saw them (or their maps alone), each with its map."""
    from ..images import resize

    cols = min(_COLS, max(1, len(listed)))
    rows = max(1, -(-len(listed) // cols))
    fig = _figure(cols * _TILE + 0.9, rows * (_TILE + 0.5) + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, row in zip(axes, listed):
        raw = raws[row["index"]]
        peak = raw.max()
        heat = resize((raw / peak if peak > 0 else raw).astype(np.float32), input_size,
                      interpolation="bilinear")
        seen = None if view is None else view(row)
        ax.imshow(overlay(seen, heat, 0.55) if seen is not None else heat, cmap=DEFAULT_CMAP,
                  vmin=0, vmax=1)
        label = row["id"] if len(row["id"]) <= 20 else "..." + row["id"][-17:]
        ax.set_title(f"{label}\n{row['class_name'][:12]}: {row['corner_share']:.0%} in corners")
    for ax in axes:
        _bare(ax)
    for ax in axes[len(listed):]:
        ax.set_axis_off()
    import matplotlib.cm
    import matplotlib.colors

    fig.colorbar(matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, 1), DEFAULT_CMAP),
                 ax=axes.tolist(), shrink=0.8, label="map, relative to its peak")
    fig.suptitle(title)
    return fig


def write(folder: Path, summary, masks: dict, input_size, suspects: list[dict],
          raws: dict, view) -> list[Path]:
    """Every figure of the report, into ``folder``; their paths. Drawn in the course's style
    whatever the caller's matplotlib settings."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        return _write(folder, summary, masks, input_size, suspects, raws, view)


def _write(folder, summary, masks, input_size, suspects, raws, view) -> list[Path]:
    return [
        _save(class_means(summary, masks, input_size), folder / "class_means.png"),
        _save(energy(summary), folder / "energy.png"),
        _save(peaks(summary), folder / "peaks.png"),
        _save(images(suspects, raws, view, input_size,
                     "Top suspects of each class: most map energy at the image's edge"),
              folder / "suspects.png"),
        _save(images(summary.least_typical, raws, view, input_size,
                     "Least like their class's mean map"), folder / "least_typical.png"),
    ]
