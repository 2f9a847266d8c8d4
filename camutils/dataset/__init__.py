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

from .auditing import AuditSummary, audit
from .format import ArgumentsDiffer, DamagedRunFile, iter_shards, read_manifest
from .runner import DatasetRun, explain_dataset, load_results

__all__ = ["explain_dataset", "DatasetRun", "load_results", "iter_shards", "read_manifest",
           "audit", "AuditSummary", "ArgumentsDiffer", "DamagedRunFile"]
