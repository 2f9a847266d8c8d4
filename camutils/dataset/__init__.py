"""Explaining a whole dataset: streaming, resumable, distributed, and audited.

    run = camutils.explain_dataset(model, "photos/", "gradcam", out="maps/")   # shards on disk
    results = camutils.dataset.load_results("maps/")     # numpy arrays, joined over shards
    summary = camutils.audit("maps/")                     # report.html: where the maps look

`explain_dataset` (`camutils.dataset.runner`) reads a folder, a list of files or a
``tf.data.Dataset`` through a tf.data pipeline (`camutils.dataset.sources`), explains each
batch in one compiled step (on every replica of a ``tf.distribute`` strategy, if given) and
writes the results shard by shard in an open format (`camutils.dataset.format`: ``.npz`` and
CSV files with a JSON manifest, which numpy and pandas read without camutils). `audit`
(`camutils.dataset.auditing`) summarises a finished run: per-class mean maps, the share of the
maps' energy in the image's border and corners, the images least like their class, and the
suspects for a shortcut, as an HTML report with figures.
"""

from __future__ import annotations

import importlib

__all__ = ["explain_dataset", "DatasetRun", "load_results", "iter_shards", "read_manifest",
           "audit", "AuditSummary", "ArgumentsDiffer"]

_WHERE = {
    "explain_dataset": "runner", "DatasetRun": "runner", "load_results": "runner",
    "iter_shards": "format", "read_manifest": "format", "ArgumentsDiffer": "format",
    "audit": "auditing", "AuditSummary": "auditing",
}


_SUBMODULES = ("format", "sources", "runner", "auditing")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__) + list(_SUBMODULES)
