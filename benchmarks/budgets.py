"""The performance budgets of the course's design, checked against measured results.

    rows = evaluate(models, course)      # one `BudgetRow` per budget (and per notebook)

The ratio budgets are judged where the design sets them: on EfficientNet-Lite0, at batch
32, at the last convolutional layer (``head_relu6``), on the paired CPU-time ratio (see
`benchmarks.timing` for why; the wall-time ratios are reported beside it); the other models
and batch sizes are reported for information. The peer budget holds at every batch size on every
model: its figure is the worst (largest) ratio of camutils' time to the peer's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .results import PERTURBATION_BLOCKS, DatasetResult, Measured, ModelResult

__all__ = ["BudgetRow", "evaluate", "BUDGET_MODEL", "BUDGET_BATCH", "COST_BUDGETS",
           "ratio_budgets", "display_name", "NOTEBOOK_SECONDS", "NOTEBOOK_MIB",
           "TEST_SUITE_SECONDS", "UNIT_TEST_SECONDS", "DATASET_THROUGHPUT", "DATASET_MEMORY",
           "FIRST_MAP_SECONDS", "SWITCH_RATIO", "dataset_rows", "latency_rows", "target_rows",
           "VIT_MODEL", "VIT_BUDGETS", "vit_rows"]

BUDGET_MODEL = "efficientnet_lite0"
BUDGET_BATCH = "32"

#: The design's ratio budgets by cost class (see `camutils.methods.registry.COSTS`):
#: (limit, what the ratio is taken against). Methods of another cost class (Eigen-CAM's SVD)
#: are measured but have no budget.
COST_BUDGETS: dict[str, tuple[float, str]] = {
    "forward": (1.05, "forward"),          # CAM: the forward pass and one small einsum
    "layer gradient": (1.2, "forward"),    # the Grad-CAM family: plus a backward pass to the layer
    "input gradient": (2.5, "forward"),    # the guided methods: one forward pass, one backward
                                           # pass to the pixels
    "per channel": (1.2, "passes"),        # Score-CAM, Ablation-CAM: the passes they must run
}

#: The design's budgets on the course ViT (at the token layer camutils chooses, batch
#: `BUDGET_BATCH`, against one forward pass): method -> limit.
VIT_MODEL = "shapes_vit"
VIT_BUDGETS = {"gradcam": 1.2, "rollout": 1.5}

#: The first map of a model (one image; the model's analysis, the tracing and compiling of
#: its pass included), on `BUDGET_MODEL`: at most this many seconds.
FIRST_MAP_SECONDS = 1.0
#: The first call of another method on the same pass (same model, layer and target): at
#: most this many times a warm call (no new trace).
SWITCH_RATIO = 2.0


def ratio_budgets() -> dict[str, tuple[float, str]]:
    """method -> (limit, what the ratio is taken against), from the method table."""
    from camutils.methods.registry import method_table

    return {m.name: COST_BUDGETS[m.cost] for m in method_table() if m.cost in COST_BUDGETS}

#: explain_dataset (Grad-CAM, EfficientNet-Lite0, a folder of JPEGs): at least this share of
#: the throughput of a forward-only tf.data pipeline over the same folder.
DATASET_THROUGHPUT = 0.85
#: The peak RSS of a 10,000-image explain_dataset run: at most this many times a 1,000-image run's.
DATASET_MEMORY = 1.10

NOTEBOOK_SECONDS = 90.0
NOTEBOOK_MIB = 1.5e9 / 2**20  # 1.5 GB (decimal), in MiB: 1430.5
#: `make test` as a whole (notebooks included), and its unit tests, on 2 cores.
TEST_SUITE_SECONDS = 7 * 60.0
UNIT_TEST_SECONDS = 2 * 60.0

def display_name(method: str) -> str:
    """The method's name as the papers write it (its label in the method table)."""
    from camutils.methods.registry import method_table

    return next((m.label for m in method_table() if m.name == method), method)


@dataclass
class BudgetRow:
    """One budget: what it asks, the measured figure, and whether it holds.

    ``status`` is ``"pass"``, ``"miss"``, ``"not measured"`` or ``"failed"`` (the notebook
    or the test suite did not run through, so its figure is not the one asked for).
    """

    budget: str
    measured: str
    value: float | None
    limit: float
    status: str
    where: str = ""


def _status(value: float | None, limit: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    return "pass" if value <= limit else "miss"


def method_timings(result: ModelResult, batch: str, method: str) -> Measured | None:
    """The timings of ``method`` at ``batch`` in a model's result (None if not measured)."""
    return result.candidate(batch, method)


def method_ratio(result: ModelResult, batch: str, method: str) -> float | None:
    """The judged ratio of ``method`` to its baseline at ``batch`` (`Measured.judged_ratio`:
    the paired CPU-time ratio, see `benchmarks.timing`), or None."""
    timings = method_timings(result, batch, method)
    return None if timings is None else timings.judged_ratio


def peer_ratios(result: ModelResult) -> list[dict]:
    """Every (peer, batch) comparison in a model's result: camutils' time over the peer's.

    Each item has ``peer``, ``method``, ``batch``, ``ours_s``, ``theirs_s``, ``ratio`` and
    ``block`` (the block both were timed in, interleaved).
    """
    rows = []
    for batch, entry in result.batches.items():
        for block_name, block in entry.items():
            candidates = block.candidates
            for peer, method in (block.peer_of or {}).items():
                if peer not in candidates or method not in candidates:
                    continue
                ours, theirs = candidates[method].median_s, candidates[peer].median_s
                row = {"peer": peer, "method": method, "batch": int(batch),
                       "ours_s": ours, "theirs_s": theirs, "ratio": ours / theirs,
                       "block": block_name}
                if block.peer_masked_images:
                    row["note"] = (f"masked images: tf-keras-vis {block.peer_masked_images}"
                                   f", camutils {block.passes}")
                rows.append(row)
            for peer, skipped in (block.skipped or {}).items():
                method = PERTURBATION_BLOCKS[block_name]
                rows.append({"peer": peer, "method": method, "batch": int(batch),
                             "ours_s": candidates[method].median_s,
                             "theirs_s": None, "ratio": None, "block": block_name,
                             "skipped": skipped})
    return rows


def dataset_rows(dataset: DatasetResult | None) -> list[BudgetRow]:
    """The two budgets of explaining a whole dataset (`benchmarks.dataset_bench`)."""
    throughput = None if dataset is None else dataset.throughput_ratio
    rows = []
    if throughput is None:
        rows.append(BudgetRow(f"explain_dataset throughput >= {DATASET_THROUGHPUT} x a "
                              "forward-only tf.data pipeline", "-", None, DATASET_THROUGHPUT,
                              "not measured"))
    else:
        t = dataset.throughput
        rows.append(BudgetRow(
            f"explain_dataset throughput >= {DATASET_THROUGHPUT} x a forward-only tf.data "
            "pipeline",
            f"{throughput:.2f} x (wall {t['throughput_ratio_wall']:.2f} x, CPU "
            f"{t['throughput_ratio_cpu']:.2f} x; {t['candidate_images_per_s']:.0f} against "
            f"{t['baseline_images_per_s']:.0f} images/s)",
            throughput, DATASET_THROUGHPUT,
            "pass" if throughput >= DATASET_THROUGHPUT else "miss",
            f"{t['model']}, Grad-CAM, {t['images']} JPEGs, batch {t['batch']}"))
    memory = None if dataset is None else dataset.memory_ratio
    if memory is None:
        rows.append(BudgetRow(f"explain_dataset peak RSS, 10,000 images <= {DATASET_MEMORY} x "
                              "1,000 images", "-", None, DATASET_MEMORY, "not measured"))
    else:
        small, large = dataset.memory["runs"][0], dataset.memory["runs"][-1]
        rows.append(BudgetRow(
            f"explain_dataset peak RSS, {large['images']:,} images <= {DATASET_MEMORY} x "
            f"{small['images']:,} images",
            f"{memory:.3f} x ({large['peak_rss_mib']:.0f} MiB against "
            f"{small['peak_rss_mib']:.0f} MiB)", memory, DATASET_MEMORY,
            _status(memory, DATASET_MEMORY),
            f"{dataset.memory['model']}, Grad-CAM, batch {dataset.memory['batch']}"))
    return rows


def evaluate(models: dict[str, ModelResult], course: dict | None = None,
             dataset: DatasetResult | None = None, targets: dict | None = None
             ) -> list[BudgetRow]:
    """Every budget of the design against the measured ``models``, ``course``,
    ``dataset`` and ``targets`` results.

    Args:
        models: model name -> its `benchmarks.results.ModelResult`.
        course: the notebook and test-suite figures (`benchmarks.course`), or None.
        dataset: explain_dataset's figures (`benchmarks.dataset_bench`), or None.
        targets: Grad-CAM with the ready-made targets (`benchmarks.targets_bench`), or None.
    """
    lite0 = models.get(BUDGET_MODEL)
    return (ratio_rows(lite0) + vit_rows(models.get(VIT_MODEL)) + latency_rows(lite0)
            + target_rows(targets) + peer_rows(models) + dataset_rows(dataset)
            + notebook_rows(course) + suite_rows(course))


def target_rows(targets: dict | None) -> list[BudgetRow]:
    """A target adds no pass: Grad-CAM with each ready-made target <= the gradient methods'
    budget x one forward pass, on each model of `benchmarks.targets_bench` (judged on the
    paired CPU-time ratio)."""
    limit = COST_BUDGETS["layer gradient"][0]
    if not targets or not targets.get("models"):
        return [BudgetRow(f"Grad-CAM with any ready-made target <= {limit} x one forward pass",
                          "-", None, limit, "not measured",
                          "run `python -m benchmarks --targets`")]
    rows = []
    for model, block in targets["models"].items():
        for label, timings in block["candidates"].items():
            if not timings.get("judged", True):
                continue  # for information (a layer deep in the network): the report shows it
            value = timings.get("cpu_ratio")
            rows.append(BudgetRow(
                f"Grad-CAM, {label} <= {limit} x one forward pass",
                "-" if value is None else
                f"{value:.2f} x CPU (wall {timings['ratio']:.2f} x)",
                value, limit, _status(value, limit),
                f"{model}, {timings.get('layer', '?')}, batch {block['batch']}"))
    return rows


def ratio_rows(lite0: ModelResult | None) -> list[BudgetRow]:
    """One row per method whose cost class has a ratio budget (`ratio_budgets`)."""
    rows = []
    for method, (limit, against) in ratio_budgets().items():
        timings = method_timings(lite0, BUDGET_BATCH, method) if lite0 else None
        value = None if timings is None else timings.judged_ratio
        reference = "one forward pass" if against == "forward" else "the passes it must run"
        rows.append(BudgetRow(
            budget=f"{display_name(method)} <= {limit} x {reference}",
            measured=_measured(timings),
            value=value, limit=limit, status=_status(value, limit),
            where=f"{BUDGET_MODEL}, batch {BUDGET_BATCH}",
        ))
    return rows


def _measured(timings: Measured | None) -> str:
    """A judged ratio as the budget tables show it: CPU, with the wall ratios beside."""
    if timings is None:
        return "-"
    measured = f"{timings.judged_ratio:.2f} x" + (" CPU" if timings.cpu_ratio is not None else "")
    if timings.cpu_ratio is not None:
        measured += (f" (wall {timings.ratio:.2f} x, ratio of wall medians "
                     f"{timings.ratio_of_medians:.2f} x)")
    return measured


def vit_rows(vit: ModelResult | None) -> list[BudgetRow]:
    """The design's budgets on the course ViT (`VIT_BUDGETS`): Grad-CAM on its token grid
    and attention rollout, each against one forward pass."""
    rows = []
    for method, limit in VIT_BUDGETS.items():
        timings = method_timings(vit, BUDGET_BATCH, method) if vit else None
        value = None if timings is None else timings.judged_ratio
        where = f"{VIT_MODEL}, batch {BUDGET_BATCH}" + (f", at {vit.layer}" if vit else "")
        rows.append(BudgetRow(f"{display_name(method)} on the course ViT <= {limit} x one "
                              "forward pass", _measured(timings), value, limit,
                              _status(value, limit), where))
    return rows


def latency_rows(lite0: ModelResult | None) -> list[BudgetRow]:
    """The first map of the model, and the first call of each method that shares its pass
    against a warm call (`benchmarks.model_bench.measure_latency`)."""
    latency = {} if lite0 is None else lite0.latency
    first = latency.get("first_map")
    where = f"{BUDGET_MODEL}, 1 image"
    if first is None:
        rows = [BudgetRow(f"first map <= {FIRST_MAP_SECONDS} s", "-", None, FIRST_MAP_SECONDS,
                          "not measured", where)]
    else:
        rows = [BudgetRow(
            f"first map ({display_name(first['method'])}) <= {FIRST_MAP_SECONDS} s",
            f"{first['wall_s']:.2f} s (CPU {first['cpu_s']:.2f} s)", first["wall_s"],
            FIRST_MAP_SECONDS, _status(first["wall_s"], FIRST_MAP_SECONDS), where)]
    switches = latency.get("switch", {})
    if not switches:
        rows.append(BudgetRow(f"another method on the same pass <= {SWITCH_RATIO} x a warm "
                              "call", "-", None, SWITCH_RATIO, "not measured", where))
        return rows
    # Judged on CPU time where it was kept (one call each: wall time on a shared machine
    # says little), as the ratio budgets are.
    cpu = "switch_cpu" in latency
    times, warm = ((latency["switch_cpu"], latency["warm_cpu_s"]) if cpu
                   else (switches, latency["warm_s"]))
    worst = max(times, key=lambda m: times[m])
    value = times[worst] / warm
    wall = switches[worst] / latency["warm_s"]
    rows.append(BudgetRow(
        f"another method on the same pass <= {SWITCH_RATIO} x a warm call (no new trace)",
        f"{value:.2f} x{' CPU' if cpu else ''} at worst ({display_name(worst)}: "
        f"{times[worst] * 1000:.0f} ms against {warm * 1000:.0f} ms"
        + (f"; wall {wall:.2f} x)" if cpu else ")"),
        value, SWITCH_RATIO, _status(value, SWITCH_RATIO), where))
    return rows


def peer_rows(models: dict[str, ModelResult]) -> list[BudgetRow]:
    """One row per peer: camutils' worst time over the peer's, over models and batches."""
    peers: dict[str, list[dict]] = {}
    for name, result in models.items():
        for row in peer_ratios(result):
            peers.setdefault(row["peer"], []).append({**row, "model": name})
    rows = []
    for peer, items in peers.items():
        measured = [i for i in items if i["ratio"] is not None]
        worst = max(measured, key=lambda i: i["ratio"]) if measured else None
        value = None if worst is None else worst["ratio"]
        skipped = len(items) - len(measured)
        note = f"; {skipped} batch size(s) not run (see the peers table)" if skipped else ""
        rows.append(BudgetRow(
            budget=f"faster than {peer} at every batch size",
            measured="-" if worst is None else
            f"camutils takes {value:.2f} x its time at worst ({worst['model']}, batch "
            f"{worst['batch']}){note}",
            value=value, limit=1.0, status=_status(value, 1.0 - 1e-12),
            where=", ".join(sorted({i["model"] for i in items})),
        ))
    return rows


def notebook_rows(course: dict | None) -> list[BudgetRow]:
    """Each notebook's time and peak memory."""
    notebooks = (course or {}).get("notebooks", {}).get("results", [])
    if not notebooks:
        return [BudgetRow(f"every notebook <= {NOTEBOOK_SECONDS:.0f} s", "-", None,
                          NOTEBOOK_SECONDS, "not measured"),
                BudgetRow("every notebook <= 1.5 GB peak RSS", "-", None, NOTEBOOK_MIB,
                          "not measured")]
    rows = []
    for item in notebooks:
        failed = item.get("error")
        seconds = None if failed else item.get("seconds")
        mib = None if failed else item.get("peak_rss_mib")
        load = item.get("load_average")
        under = "" if not load or None in load else \
            f" (load average {load[0]:.1f} -> {load[1]:.1f})"
        rows.append(BudgetRow(
            f"{item['notebook']} <= {NOTEBOOK_SECONDS:.0f} s",
            f"it failed: {failed}" if failed else f"{seconds:.1f} s{under}", seconds,
            NOTEBOOK_SECONDS, "failed" if failed else _status(seconds, NOTEBOOK_SECONDS)))
        rows.append(BudgetRow(
            f"{item['notebook']} <= 1.5 GB peak RSS",
            "-" if failed else f"{mib:.0f} MiB", mib, NOTEBOOK_MIB,
            "failed" if failed else _status(mib, NOTEBOOK_MIB)))
    return rows


def suite_rows(course: dict | None) -> list[BudgetRow]:
    """`make test` and its unit tests."""
    suite = (course or {}).get("make_test")
    seconds = None if not suite else suite.get("seconds")
    measured = "-" if not suite else (
        f"{seconds / 60:.1f} min (exit status {suite.get('returncode')}, {suite.get('date')})")
    status = _status(seconds, TEST_SUITE_SECONDS)
    if suite and suite.get("returncode") != 0:
        status = "failed"  # the time of a failing suite says little about a passing one
    rows = [BudgetRow("`make test` <= 7 min", measured, seconds, TEST_SUITE_SECONDS, status)]
    unit = None if not suite else unit_test_seconds(suite.get("summary", []))
    status = "failed" if suite and suite.get("returncode") != 0 else _status(unit, UNIT_TEST_SECONDS)
    rows.append(BudgetRow("its unit tests <= 2 min", "-" if unit is None else f"{unit:.0f} s",
                          unit, UNIT_TEST_SECONDS, status))
    return rows


def unit_test_seconds(summary: list[str]) -> float | None:
    """The unit tests' time, from pytest's first count line of `make test` ("... in 108.70s")."""
    found = re.search(r" in ([\d.]+)s", summary[0]) if summary else None
    return float(found.group(1)) if found else None
