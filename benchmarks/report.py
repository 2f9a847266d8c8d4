"""Write ``docs/benchmarks.md`` and its plot from the measured results.

    write_report(models, course, run, docs_dir, dataset)   # -> (markdown path, plot path)

``models`` maps a model name to its `benchmarks.results.ModelResult`,
``course`` holds the notebook and test-suite figures (`benchmarks.course`) or None, and
``run`` describes this run (machine, command, wall time), and ``dataset`` holds
explain_dataset's figures (`benchmarks.results.DatasetResult`) or None.
"""

from __future__ import annotations

import math
from pathlib import Path

from .budgets import (BUDGET_BATCH, BUDGET_MODEL, NOTEBOOK_MIB, NOTEBOOK_SECONDS,
                      display_name, evaluate, peer_ratios)
from .results import PERTURBATION_BLOCKS, DatasetResult, Measured, ModelResult, block_key

__all__ = ["write_report", "render_markdown", "plot_batches", "PLOT_NAME", "DOC_NAME"]

DOC_NAME = "benchmarks.md"
PLOT_NAME = "benchmarks_batch.png"


def _plotted() -> list[str]:
    """The methods drawn in the plot (all are in the tables): the first of each cost class
    in the method table."""
    from camutils.methods.registry import method_table

    first: dict[str, str] = {}
    for row in method_table():
        first.setdefault(row.cost, row.name)
    return list(first.values())

_PLOTTED_PEERS = ("tf-keras-vis Gradcam", "Keras example (GradientTape)")


def _ms(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    value = seconds * 1000
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _x(ratio) -> str:
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "-"
    return f"{ratio:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _batches(result: ModelResult) -> list[str]:
    return result.batch_sizes()


# --------------------------------------------------------------------------- sections


def _machine_section(run: dict, models: dict) -> list[str]:
    machine = run.get("machine", {})
    environment = next((r.environment for r in models.values() if r.environment), {})
    lines = ["## The machine", ""]
    rows = [
        ["CPU", machine.get("cpu", "-")],
        ["usable cores", machine.get("cores", "-")],
        ["memory", f"{machine['memory_gib']:.1f} GiB" if machine.get("memory_gib") else "-"],
        ["OS", machine.get("os", "-")],
        ["Python", environment.get("python", machine.get("python", "-"))],
        ["TensorFlow", environment.get("tensorflow", "-")],
        ["Keras", environment.get("keras", "-")],
        ["NumPy", environment.get("numpy", "-")],
        ["tf-keras-vis", environment.get("tf_keras_vis", "-")],
        ["TF_ENABLE_ONEDNN_OPTS", environment.get("onednn", "-")],
        ["load average at the start (1, 5, 15 min)", machine.get("load_average", "-")],
        ["load average at the end", run.get("load_average_end", "-")],
        ["date", machine.get("date", "-")],
    ]
    lines += _table(["", ""], rows)
    return lines


def _budget_section(models: dict, course: dict | None,
                    dataset: DatasetResult | None = None, targets: dict | None = None
                    ) -> list[str]:
    rows = evaluate(models, course, dataset, targets)
    marks = {"pass": "pass", "miss": "**miss**", "not measured": "not measured",
             "failed": "**failed**"}
    lines = ["## Budgets", "",
             f"Ratios are judged where the design sets them: `{BUDGET_MODEL}`, batch "
             f"{BUDGET_BATCH}, 224 x 224, at the last convolutional layer. The judged figure is "
             "the median over interleaved rounds of a run's CPU time over that of the "
             "baseline run next to it; the same with wall time, and the ratio of the wall "
             "medians, are shown beside it (see *How it is measured* for why).", ""]
    lines += _table(["budget", "measured", "limit", "result", "where"], [
        [r.budget, r.measured, f"{r.limit:g}" if r.limit < 100 else f"{r.limit:.0f}",
         marks[r.status], r.where] for r in rows])
    return lines


def _both(timings: Measured | None) -> str:
    """``"1.03 (1.05)"``: the paired CPU-time ratio, then the paired wall-time ratio."""
    if timings is None:
        return "-"
    if timings.cpu_ratio is None:
        return _x(timings.ratio)
    return f"{_x(timings.cpu_ratio)} ({_x(timings.ratio)})"


def _model_section(name: str, result: ModelResult) -> list[str]:
    facts = result.facts
    lines = [f"## {name}", "",
             f"Layer `{result.layer}` {tuple(facts.get('layer_shape', ()))}, input "
             f"{tuple(facts.get('input_size', ()))}, {facts.get('images', '')}; weights: "
             f"{result.weights or '-'}. Measured in {result.seconds:.0f} s "
             f"(loading {result.load_s or 0:.0f} s).", ""]
    batches = _batches(result)
    if not batches:
        return lines
    hurried = [f"{b}: {k}" for b in batches for k, block in result.batches[b].items()
               if block.hurried]
    if hurried:
        lines += ["The run reached its deadline: these blocks ran one round only: "
                  + ", ".join(hurried) + ".", ""]
    single = {b: result.batches[b]["single"] for b in batches}
    methods = list(single[batches[0]].candidates)
    header = ["per batch"] + [f"batch {b}: ms" for b in batches] + \
             [f"batch {b}: x forward, CPU (wall)" for b in batches]
    rows = [["plain forward pass"] + [_ms(single[b].baseline.median_s) for b in batches]
            + ["1" for _ in batches]]
    for method in methods:
        cells = [single[b].candidates.get(method) for b in batches]
        rows.append([display_name(method)] + [_ms(c and c.median_s) for c in cells]
                    + [_both(c) for c in cells])
    counts = ", ".join(f"batch {b}: {single[b].rounds or '?'}" for b in batches)
    lines += ["Single-pass methods against the plain forward pass: median wall ms per batch, "
              "and the median over interleaved rounds of each run's CPU time (wall time) "
              f"over the forward pass run next to it (rounds: {counts}):", ""]
    lines += _table(header, rows)

    rows = []
    for key, method in PERTURBATION_BLOCKS.items():
        label = display_name(method) + (", all channels" if key != method else "")
        for b in batches:
            block = result.block(b, key)
            if not block:
                continue
            ours = block.candidates[method]
            what = (f"{block.passes} head passes" if block.channels is None else
                    f"{block.passes} masked images ({block.channels} channels)")
            rows.append([label, b, what, _ms(block.baseline.median_s),
                         _ms(ours.median_s), _both(ours)])
    if rows:
        lines += ["Perturbation methods against the passes they must run (the batch's "
                  "forward pass included; see *How it is measured*):", ""]
        lines += _table(["method", "batch", "passes", "reference ms", "camutils ms",
                         "x reference, CPU (wall)"], rows)

    lines += _latency_lines(result)
    first = result.first_call
    if first:
        smallest = batches[0]
        rows = [[display_name(m), _ms(ms)] for m, ms in first.get("single", {}).items()
                if m != "(baseline)"]
        for key, method in PERTURBATION_BLOCKS.items():
            if key == method and method in first.get(key, {}):
                rows.append([display_name(method), _ms(first[key][method])])
        lines += [f"First call at batch {smallest} (tracing and compilation included; "
                  "camutils traces once for every batch size), ms:", ""]
        lines += _table(["method", "first call ms"], rows)
    return lines


def _latency_lines(result: ModelResult) -> list[str]:
    """The first map of the model, and the first call of each method on the same pass."""
    latency = result.latency
    if not latency:
        return []
    first, warm = latency["first_map"], latency["warm_s"]
    warm_cpu = latency.get("warm_cpu_s")
    cpu = latency.get("switch_cpu", {})
    rows = [[f"first map ({display_name(first['method'])}, a new model)",
             _ms(first["wall_s"]), _ms(first["cpu_s"]), _x(first["wall_s"] / warm), "-"]]
    rows += [[f"then {display_name(m)}, first call", _ms(s), _ms(cpu.get(m)), _x(s / warm),
              _x(cpu[m] / warm_cpu) if m in cpu and warm_cpu else "-"]
             for m, s in latency["switch"].items()]
    rows.append([f"{display_name(first['method'])}, warm (median)", _ms(warm), _ms(warm_cpu),
                 "1", "1"])
    return ["Latency on one image: the first map of a model (its analysis, and tracing and "
            "compiling its pass, included), then the first call of each other method that "
            "reads the same compiled pass (no new trace):", ""] + \
        _table(["call", "wall ms", "CPU ms", "x a warm call (wall)", "x a warm call (CPU)"],
               rows)


def _peers_section(models: dict) -> list[str]:
    lines = ["## Peers", "",
             "Same model, inputs, classes and layer. Agreement compares unnormalised maps at "
             "the layer's resolution before any timing: the largest difference over the "
             "largest value of the peer's map, and the correlation over all pixels.", ""]
    rows = []
    for name, result in models.items():
        for a in result.agreement:
            rows.append([name, a["peer"], display_name(a["method"]), f"`{a['layer']}`",
                         a["images"], f"{a['max_rel_diff']:.1e}", f"{a['correlation']:.6f}",
                         "exact" if a.get("exact") else "by correlation"])
    if rows:
        lines += _table(["model", "peer", "method", "layer", "images", "max rel. diff",
                         "correlation", "expected"], rows)
        exact_rows = any(a["method"] == "scorecam" and a.get("exact")
                         for r in models.values() for a in r.agreement)
        where = ("the row at such a layer checks that" if exact_rows else
                 "no benchmarked model has such a layer; tests/test_methods_tfkerasvis.py "
                 "checks it on a test model")
        lines += ["Expected differences: tf-keras-vis' Grad-CAM++ keeps the paper's factor "
                  "exp(S) (camutils' raw map times exp(S) is compared); its Score-CAM "
                  "upsamples masks with corner-aligned interpolation (camutils: half-pixel "
                  "centres, as its maps), so on every channel the two agree to rounding only "
                  f"at a layer with the input's resolution ({where}) and closely elsewhere; "
                  "with `max_N` it keeps, for the whole batch, the union of each image's "
                  "channels of highest standard deviation, camutils' `max_channels` each "
                  "image's channels of highest mean, so those maps differ by design (and "
                  "tf-keras-vis runs every image with every channel of the union: more masked "
                  "images, as the peers table says).", ""]
    rows = []
    for name, result in models.items():
        for r in peer_ratios(result):
            if r["ratio"] is None:
                rows.append([name, r["peer"], display_name(r["method"]), r["batch"],
                             "not run", _ms(r["ours_s"]), "-", r["skipped"]["reason"]])
                continue
            rows.append([name, r["peer"], display_name(r["method"]), r["batch"],
                         _ms(r["theirs_s"]), _ms(r["ours_s"]), f"{1 / r['ratio']:.1f} x",
                         r.get("note", "")])
    if rows:
        lines += ["Time per batch (median ms, measured interleaved in the same block):", ""]
        lines += _table(["model", "peer", "method", "batch", "peer ms", "camutils ms",
                         "camutils faster by", "note"], rows)
    return lines


def _dataset_section(dataset: DatasetResult | None) -> list[str]:
    lines = ["## Explaining a dataset", ""]
    if dataset is None or not dataset.throughput:
        return lines + ["Not measured yet: run `python -m benchmarks --dataset`.", ""]
    t, m = dataset.throughput, dataset.memory
    base, ours = dataset.timings("baseline"), dataset.timings("candidate")
    load = dataset.machine.get("load_average")
    machine = dataset.machine
    lines += [f"Measured by `python -m benchmarks --dataset` on {dataset.date}, on "
              f"{machine.get('cpu', 'an unknown CPU')} ({machine.get('cores')} usable cores"
              + (f", load average {load[0]:.1f} at the start" if load else "")
              + "). `camutils.explain_dataset` with Grad-CAM on "
              f"`{t['model']}`, against a forward-only tf.data pipeline over the same folder of "
              f"{t['images']} JPEG photos ({t['jpeg_bytes']['smallest'] // 1000} to "
              f"{t['jpeg_bytes']['largest'] // 1000} kB: the sample photos cropped, flipped "
              "and resized at random): `tf.io.decode_jpeg`, Lite0's centre crop, bicubic "
              f"resize and normalisation in a parallel map, batches of {t['batch']}, prefetch, "
              "the compiled forward pass. explain_dataset decodes with camutils.images (the "
              "header checked against the pixel limit first, the EXIF orientation applied) "
              "in its own parallel map, explains each batch and writes its shards. Interleaved "
              f"rounds: {t['rounds']}.", ""]
    lines += _table(["run of the folder", "median wall s", "median CPU s", "images / s (wall)"], [
        ["forward-only tf.data pipeline", f"{base.median_s:.2f}", f"{base.cpu_median_s:.2f}",
         f"{t['baseline_images_per_s']:.1f}"],
        ["explain_dataset, Grad-CAM", f"{ours.median_s:.2f}", f"{ours.cpu_median_s:.2f}",
         f"{t['candidate_images_per_s']:.1f}"],
    ])
    lines += [f"Throughput ratio (the forward-only pipeline's time over explain_dataset's, "
              f"median over paired rounds): wall {t['throughput_ratio_wall']:.2f}, CPU "
              f"{t['throughput_ratio_cpu']:.2f}; the budget is judged on the smaller. (The "
              f"ratio of the wall medians, {base.median_s / ours.median_s:.2f}, depends on "
              "which runs the machine's other load happened to slow down.)", ""]
    if m:
        lines += [f"Memory: one fresh process per run, `{m['model']}` (64 x 64 PNG files), "
                  f"Grad-CAM, batch {m['batch']}; peak resident memory (`ru_maxrss`).", ""]
        lines += _table(["images", "peak RSS MiB", "before the run MiB", "seconds",
                         "images / s"], [
            [f"{r['images']:,}", f"{r['peak_rss_mib']:.0f}", f"{r['before_run_mib']:.0f}",
             f"{r['seconds']:.1f}", f"{r['images_per_s']:.0f}"] for r in m["runs"]])
        lines += [f"Peak of the largest run over the smallest: {m['peak_ratio']:.3f}.", ""]
    return lines


def _targets_section(targets: dict | None) -> list[str]:
    """Grad-CAM with the ready-made targets against one forward pass, per model."""
    lines = ["## Targets", ""]
    if not targets or not targets.get("models"):
        return lines + ["Not measured yet: run `python -m benchmarks --targets`.", ""]
    load = targets.get("machine", {}).get("load_average")
    lines += [f"Measured by `python -m benchmarks --targets` on {targets['date']}"
              + (f" (load average {load[0]:.1f} at the start)" if load else "") + ". "
              "A target's choice and score are a few ops on the outputs of the same compiled "
              "pass, so Grad-CAM with any ready-made target keeps the gradient methods' "
              f"budget ({targets['budget']} x one forward pass). Each model is one "
              "interleaved block: the compiled forward pass, then `camutils.explain(..., "
              "'gradcam', target=...)` with each target (warm), CPU-time ratio first, "
              "wall-time ratio in brackets.", ""]
    rows = []
    for model, block in targets["models"].items():
        base = block["baseline"]
        for label, t in block["candidates"].items():
            rows.append([model, label, str(block["batch"]), t.get("layer", "-"),
                         _ms(base["median_s"]), _ms(t["median_s"]),
                         f"{_x(t['cpu_ratio'])} ({_x(t['ratio'])})",
                         "yes" if t.get("judged", True) else "no (information)"])
    lines += _table(["model", "target", "batch", "layer", "forward ms", "Grad-CAM ms",
                     "ratio CPU (wall)", "judged"], rows)
    lines += ["The budget is judged at each model's last convolutional layer, as on "
              "EfficientNet-Lite0; a row at a deeper layer (the segmenter's default "
              "`decoder16_relu`) adds the backward pass through the layers after it, whatever "
              "the target, and is shown for information.", ""]
    return lines


def _course_section(course: dict | None) -> list[str]:
    lines = ["## The course", ""]
    notebooks = (course or {}).get("notebooks")
    if notebooks:
        lines += [f"Each notebook executed in a fresh kernel by `python -m benchmarks "
                  f"--course` on {notebooks['date']} (cell execution wall time; the "
                  f"kernel's peak resident memory). Budgets: {NOTEBOOK_SECONDS:.0f} s and "
                  f"1.5 GB ({NOTEBOOK_MIB:.0f} MiB).", ""]
        def load(n):
            value = n.get("load_average")
            return "-" if not value or None in value else f"{value[0]:.1f} -> {value[1]:.1f}"

        dates = {n.get("date", notebooks["date"])[:10] for n in notebooks["results"]}
        dated = len(dates) > 1  # measured on different days: each row says when
        lines += _table(["notebook", "seconds", "peak RSS MiB", "load average (1 min)"]
                        + (["measured on"] if dated else []), [
            ([n["notebook"], f"failed: {n['error']}", "-", load(n)] if n.get("error") else
             [n["notebook"], f"{n['seconds']:.1f}", f"{n['peak_rss_mib']:.0f}", load(n)])
            + ([n.get("date", notebooks["date"])[:10]] if dated else [])
            for n in notebooks["results"]])
        lines += ["Notebook times are wall times of a kernel that shares the machine: under a "
                  "load average well above the 2 cores they stretch with the load.", ""]
    else:
        lines += ["Notebooks not measured yet: run `python -m benchmarks --course`.", ""]
    suite = (course or {}).get("make_test")
    if suite:
        lines += [f"`make test` (unit tests and every notebook under nbval) took "
                  f"{suite['seconds'] / 60:.1f} min on {suite['date']}, exit status "
                  f"{suite['returncode']}; measured by `python -m benchmarks --make-test`, "
                  "which runs it and times it from the outside. pytest said: "
                  + "; ".join(f"`{s}`" for s in suite.get("summary", [])) + ".", ""]
        failures = suite.get("failures") or []
        if failures:
            shown = failures[:12]
            more = len(failures) - len(shown)
            lines += ["Failures:", ""] + [f"* `{f}`" for f in shown]
            lines += ([f"* ... and {more} more (at most 30 are kept)"] if more else []) + [""]
    else:
        lines += ["`make test` not timed yet: run `python -m benchmarks --make-test`.", ""]
    return lines


_METHOD_NOTES = """## How it is measured

* One process per model (`python -m benchmarks.model_bench`), TensorFlow on the CPU with
  `TF_ENABLE_ONEDNN_OPTS=0` and `TF_CPP_MIN_LOG_LEVEL=3` as everywhere in the course.
* **Plain forward pass**: `model(images, training=False)` compiled with `tf.function`
  (batch-agnostic signature), logits fetched as numpy. Every camutils call is the public
  `camutils.explain(model, images, method, layer=...)` with numpy images in and the
  `Explanation` (maps upsampled to the input and normalised) out.
* **Warm-up**: every callable runs once at the smallest batch size first (tracing;
  reported as the first call): camutils' functions and the references are traced once for
  every batch size. Then the batch sizes run from the largest down.
* **Interleaved rounds**: each round runs the baseline and the candidates in turn
  (baseline, candidate, baseline, candidate, ...; two candidates per baseline run in the
  peers blocks; the order rotates each round). Every run records its wall time and the
  CPU time of the process (all threads).
* **The judged figure** is the median over rounds of a run's CPU time over the CPU time of
  the baseline run next to it. This machine is shared: while other processes take the
  CPU, wall time stretches and CPU time does not (in one measured case Lite0's forward pass
  at batch 32 took 1.4 s to 3.1 s of wall time in four rounds, and 0.99 s to 1.01 s of
  CPU). The paired wall-time ratio (in parentheses in the tables) and the ratio of the wall
  medians are kept beside it. On an idle machine the two agree, except that CPU time
  weighs serial work (Python between TensorFlow calls) half as much as the forward pass,
  which runs on both cores: where they differ on a quiet run, the wall figure is the one a
  user sees.
* **Rounds** go on up to a maximum, or until a minimum number of rounds and a time budget
  are both reached. Each model also has a deadline (a share of a 9-minute limit): past it,
  every block runs one round (the tables say which), so that a busy machine keeps within
  10 minutes. tf-keras-vis' Scorecam, many times slower, takes part in fewer rounds, and
  is left out where its forward passes alone would cost more than 15 s of CPU or its
  masked images more than 2 GB of memory (the peers table gives the measured reason).
* **Score-CAM's passes**: it needs the batch's activations (one forward pass of the `N`
  images) and then one forward pass of the whole network per masked image: `N x M` images,
  `M` the channels used (all `C`, or `max_channels`). The reference runs the plain forward
  pass on the batch, then on `N x M` images in batches of the same sizes as Score-CAM's
  (32 masked images per pass), built beforehand: only the network's arithmetic.
* **Ablation-CAM's passes**: it needs the batch's activations (one forward pass), then the
  head (the layers from the explained layer to the logits) once per image and channel:
  `N x C` head passes. The reference runs the plain forward pass on the batch, then the
  compiled head on `N x C` activation maps (the layer's real output, repeated) in batches of
  Ablation-CAM's size (128), built beforehand: no ablated copies.
"""


def render_markdown(models: dict, course: dict | None, run: dict,
                    dataset: DatasetResult | None = None, targets: dict | None = None) -> str:
    """The whole of ``docs/benchmarks.md``."""
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`python -m benchmarks`); do not edit by hand. "
             f"This run took {run.get('wall_s', float('nan')):.0f} s "
             f"(`{run.get('command', 'python -m benchmarks')}`).", ""]
    lines += _budget_section(models, course, dataset, targets)
    lines += _machine_section(run, models)
    for name, result in models.items():
        lines += _model_section(name, result)
    lines += _peers_section(models)
    lines += _targets_section(targets)
    lines += _dataset_section(dataset)
    lines += _course_section(course)
    lines += [f"![time per batch against batch size]({PLOT_NAME})", ""]
    lines += _METHOD_NOTES.rstrip().splitlines()
    lines += _scorecam_notes(models) + [""]
    return "\n".join(lines)


def _scorecam_notes(models: dict) -> list[str]:
    """Which Score-CAM variants ran on each model, and why not every channel everywhere."""
    lines = []
    for name, result in models.items():
        settings = result.settings
        channels = settings.get("scorecam_channels")
        full = settings.get("full_scorecam") or []
        total = (result.facts.get("layer_shape") or [None])[-1]
        text = (f"* **Score-CAM on {name}** uses `max_channels={channels}` (tf-keras-vis: "
                f"`max_N={channels}`)")
        if full:
            text += f", and every channel ({total}) at batch {', '.join(map(str, full))}."
        else:
            text += (f"; every channel ({total}) would take {total} forward passes per image, "
                     "which does not fit the 10-minute run, so Score-CAM on every channel "
                     "(and tf-keras-vis' full Scorecam) is measured on the other model.")
        lines.append(text)
    return lines


def plot_batches(models: dict, path: Path) -> Path:
    """Time per batch against batch size, one panel per model (log-log), as a small PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [n for n, r in models.items() if _batches(r)]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.4),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        result = models[name]
        batches = _batches(result)
        xs = [int(b) for b in batches]

        def series(getter):
            values = [getter(result.batches[b]) for b in batches]
            return [v * 1000 if v is not None else float("nan") for v in values]

        ax.plot(xs, series(lambda e: e["single"].baseline.median_s), "k-o", lw=2,
                ms=3, label="forward pass")
        for method in _plotted():
            getter = (lambda e, m=method: getattr(
                e[block_key(m)].candidates.get(m) if block_key(m) in e else None, "median_s",
                None))
            values = series(getter)
            if not all(math.isnan(v) for v in values):
                ax.plot(xs, values, "-o", ms=3, lw=1, label=display_name(method))
        for peer in _PLOTTED_PEERS:
            values = series(lambda e, p=peer: getattr(
                e["peers"].candidates.get(p) if "peers" in e else None, "median_s", None))
            if not all(math.isnan(v) for v in values):
                ax.plot(xs, values, "--x", ms=4, lw=1, label=peer)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel("batch size")
        ax.set_ylabel("ms per batch")
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
               frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(models: dict, course: dict | None, run: dict, docs_dir,
                 dataset: DatasetResult | None = None, targets: dict | None = None
                 ) -> tuple[Path, Path]:
    """Write the markdown and the plot into ``docs_dir``; return their paths."""
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_batches(models, docs_dir / PLOT_NAME)
    markdown = docs_dir / DOC_NAME
    markdown.write_text(render_markdown(models, course, run, dataset, targets))
    return markdown, plot
