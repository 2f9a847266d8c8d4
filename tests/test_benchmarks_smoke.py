"""The benchmark harness (`python -m benchmarks`), run quickly on a tiny model.

No timing is asserted (the benchmark suite itself judges the budgets): these tests check
that the harness runs every method and peer, pairs candidates with their baselines as it
says, judges budgets as the design states them, and writes the docs. The last tests check
that the performance work the benchmark led to (Ablation-CAM through the pooled vector)
gives what ablating the whole activation map gives.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import _models as M

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import budgets, timing  # noqa: E402
from benchmarks.results import (  # noqa: E402
    ModelResult, StoredModels, load_models, save_models,
)
from benchmarks.report import DOC_NAME, PLOT_NAME, write_report  # noqa: E402


# --------------------------------------------------------------------------- timing


def test_block_interleaves_and_pairs_each_candidate_with_a_neighbouring_baseline():
    log = []

    def recorder(name):
        return lambda: log.append(name)

    block = timing.Block("t", recorder("b"), {n: recorder(n) for n in "xyz"},
                         min_rounds=2, max_rounds=2, budget_s=0, per_baseline=2)
    base, results = timing.run_block(block, progress=False)
    warm, rounds = log[:4], log[4:]
    assert warm == ["b", "x", "y", "z"]
    # round 1: b x y b z; round 2 (rotated): b y z b x
    assert rounds == ["b", "x", "y", "b", "z", "b", "y", "z", "b", "x"]
    assert len(base.samples) == 4
    for name in "xyz":
        assert len(results[name].samples) == 2 and len(results[name].baseline) == 2
        assert not math.isnan(results[name].first)
    # every paired baseline is one of the baseline's own samples
    assert all(b in base.samples for r in results.values() for b in r.baseline)


def test_ratio_is_the_median_of_paired_ratios_and_the_ratio_of_medians_is_kept():
    t = timing.Timings(first=1.0, samples=[2.0, 4.0, 9.0], baseline=[1.0, 4.0, 3.0])
    assert t.seconds == 4.0
    assert t.ratio == pytest.approx(2.0)               # median of 2, 1, 3
    assert t.ratio_of_medians == pytest.approx(4.0 / 3.0)
    assert math.isnan(timing.Timings(first=0.0, samples=[1.0]).ratio)  # no baseline


def test_block_without_warmup_and_with_a_time_budget():
    calls = []
    block = timing.Block("t", lambda: calls.append("b"), {"x": lambda: calls.append("x")},
                         min_rounds=1, max_rounds=50, budget_s=0.0, per_baseline=1,
                         warmup=False)
    base, results = timing.run_block(block, progress=False)
    assert calls == ["b", "x"]  # no warm-up; one round, then the budget (0 s) is spent
    assert math.isnan(results["x"].first)


def test_block_rejects_impossible_bounds():
    with pytest.raises(ValueError, match="min_rounds"):
        timing.run_block(timing.Block("t", lambda: None, {}, min_rounds=3, max_rounds=2),
                         progress=False)


# --------------------------------------------------------------------------- budgets


def _fake_result(ratios: dict, peer_ratio: float) -> ModelResult:
    """A model result with the given ratios at batch 32 (the JSON the harness writes)."""

    def cand(seconds, ratio):
        return {"median_s": seconds, "ratio": ratio, "cpu_ratio": ratio, "first_s": 0.1,
                "ratio_of_medians": ratio}

    single = {m: cand(r, r) for m, r in ratios.items() if m not in ("scorecam", "ablationcam")}
    return ModelResult.from_dict({"model": "fake", "layer": "conv", "batches": {"32": {
        "single": {"baseline": cand(1.0, float("nan")), "candidates": single},
        "peers": {"baseline": cand(1.0, float("nan")),
                  "candidates": {"gradcam": cand(1.0, 1.0), "P": cand(1.0 / peer_ratio, 1.0)},
                  "peer_of": {"P": "gradcam"}},
        "ablationcam": {"baseline": cand(1.0, float("nan")),
                        "candidates": {"ablationcam": cand(1.0, ratios["ablationcam"])}},
        "scorecam": {"baseline": cand(1.0, float("nan")),
                     "candidates": {"scorecam": cand(1.0, ratios["scorecam"])},
                     "peer_of": {}, "skipped": {}},
    }}})


def test_budgets_pass_and_miss_at_their_limits():
    ratios = {m: limit for m, (limit, _) in budgets.ratio_budgets().items()}
    ratios["gradcam++"] = 1.21    # just over its 1.2
    ratios["cam"] = 1.06          # just over its 1.05
    result = _fake_result(ratios, peer_ratio=0.5)
    rows = budgets.evaluate({budgets.BUDGET_MODEL: result}, course=None)
    status = {r.budget: r.status for r in rows}
    assert status["CAM <= 1.05 x one forward pass"] == "miss"
    assert status["Grad-CAM++ <= 1.2 x one forward pass"] == "miss"
    assert status["Grad-CAM <= 1.2 x one forward pass"] == "pass"
    assert status["Ablation-CAM <= 1.2 x the passes it must run"] == "pass"
    assert status["Guided Backprop <= 2.5 x one forward pass"] == "pass"
    assert status["faster than P at every batch size"] == "pass"
    assert status["`make test` <= 7 min"] == "not measured"

    slower = _fake_result(ratios, peer_ratio=1.5)
    rows = budgets.evaluate({budgets.BUDGET_MODEL: slower}, course=None)
    assert {r.budget: r.status for r in rows}["faster than P at every batch size"] == "miss"


def test_latency_budgets_pass_and_miss_at_their_limits():
    result = _fake_result({m: 1.0 for m in budgets.ratio_budgets()}, peer_ratio=0.5)
    result.latency = {"first_map": {"method": "gradcam", "wall_s": 0.99, "cpu_s": 0.9},
                      "switch": {"gradcam++": 0.2, "layercam": 0.05}, "warm_s": 0.04,
                      "switch_cpu": {"gradcam++": 0.05, "layercam": 0.081}, "warm_cpu_s": 0.04}
    rows = {r.budget: r for r in budgets.evaluate({budgets.BUDGET_MODEL: result})}
    assert rows["first map (Grad-CAM) <= 1.0 s"].status == "pass"
    switch = rows["another method on the same pass <= 2.0 x a warm call (no new trace)"]
    # judged on CPU time (one call each)
    assert switch.status == "miss" and switch.value == pytest.approx(0.081 / 0.04)
    assert "LayerCAM" in switch.measured
    result.latency["first_map"]["wall_s"] = 1.01
    result.latency["switch_cpu"]["layercam"] = 0.079
    rows = {r.budget: r for r in budgets.evaluate({budgets.BUDGET_MODEL: result})}
    assert rows["first map (Grad-CAM) <= 1.0 s"].status == "miss"
    assert rows["another method on the same pass <= 2.0 x a warm call (no new trace)"]\
        .status == "pass"
    rows = {r.budget: r for r in budgets.evaluate({})}
    assert rows["first map <= 1.0 s"].status == "not measured"


def test_notebook_budgets_and_failures():
    course = {"notebooks": {"date": "d", "results": [
        {"notebook": "a.ipynb", "seconds": 10.0, "peak_rss_mib": 2000.0},
        {"notebook": "b.ipynb", "error": "CellExecutionError: boom"},
    ]}, "make_test": {"seconds": 330.0, "returncode": 0, "date": "d", "summary": [
        "976 passed, 2 warnings in 108.70s (0:01:48)", "503 passed in 213.13s (0:03:33)"]}}
    rows = {r.budget: r for r in budgets.evaluate({}, course)}
    assert rows["a.ipynb <= 90 s"].status == "pass"
    assert rows["a.ipynb <= 1.5 GB peak RSS"].status == "miss"  # 2000 MiB > 1.5 GB
    assert rows["b.ipynb <= 90 s"].status == "failed"
    assert rows["`make test` <= 7 min"].status == "pass"
    assert rows["its unit tests <= 2 min"].status == "pass" and rows["its unit tests <= 2 min"].value == 108.7
    assert rows["CAM <= 1.05 x one forward pass"].status == "not measured"
    course["make_test"]["summary"][0] = "976 passed in 130.00s (0:02:10)"
    course["make_test"]["seconds"] = 480.0
    rows = {r.budget: r for r in budgets.evaluate({}, course)}
    assert rows["`make test` <= 7 min"].status == "miss"
    assert rows["its unit tests <= 2 min"].status == "miss"
    course["make_test"]["returncode"] = 2  # a failing suite's time is not the figure
    rows = {r.budget: r for r in budgets.evaluate({}, course)}
    assert rows["`make test` <= 7 min"].status == "failed"
    assert rows["its unit tests <= 2 min"].status == "failed"


def test_the_vit_budgets_are_judged_on_the_course_vit():
    """Grad-CAM <= 1.2 x and rollout <= 1.5 x one forward pass, on the course ViT alone."""
    def cand(ratio):
        return {"median_s": ratio, "ratio": ratio, "cpu_ratio": ratio, "first_s": 0.1,
                "ratio_of_medians": ratio}

    vit = ModelResult.from_dict({"model": budgets.VIT_MODEL, "layer": "encoder4_norm1",
                                 "batches": {"32": {"single": {
                                     "baseline": cand(float("nan")),
                                     "candidates": {"gradcam": cand(1.1), "rollout": cand(1.6)}}}}})
    rows = {r.budget: r for r in budgets.evaluate({budgets.VIT_MODEL: vit})}
    gradcam = rows["Grad-CAM on the course ViT <= 1.2 x one forward pass"]
    rollout = rows["Attention rollout on the course ViT <= 1.5 x one forward pass"]
    assert (gradcam.status, gradcam.value, rollout.status) == ("pass", 1.1, "miss")
    assert "encoder4_norm1" in gradcam.where and gradcam.measured.startswith("1.10 x CPU")
    rows = {r.budget: r for r in budgets.evaluate({})}
    assert rows["Grad-CAM on the course ViT <= 1.2 x one forward pass"].status == "not measured"


# --------------------------------------------------------------------------- the harness


@pytest.fixture(scope="module")
def tiny_subject():
    from benchmarks.subjects import Subject

    # first_stride=1: the layers keep the input's resolution, where tf-keras-vis' Score-CAM
    # must agree with camutils' to rounding (no mask upsampling).
    model = M.gap_model(size=(16, 16), channels=(4, 6), classes=5, seed=3, first_stride=1)
    pool = M.images(4, seed=1)
    return Subject("tiny", model, "conv2", lambda n: pool[np.arange(n) % 4], "random",
                   {"input_size": [16, 16]})


@pytest.fixture(scope="module")
def smoke_result(tiny_subject):
    from benchmarks.model_bench import Rounds, Settings, benchmark_subject

    subject = tiny_subject
    once = Rounds(1, 1, 0.0)
    settings = Settings(
        batches=(1, 2), single={"1": once, "2": once}, peers_rounds={"1": once, "2": once},
        perturbation={"1": once, "2": once}, scorecam_channels=2, full_scorecam=(2,),
        agreement_batch=2, progress=False,
    )
    return benchmark_subject(subject, settings)


def test_harness_measures_every_method_and_peer(smoke_result):
    from benchmarks.model_bench import single_pass_methods

    assert set(smoke_result.batches) == {"1", "2"}
    for entry in smoke_result.batches.values():
        # every single-pass method that applies to a CNN (rollout needs attention layers)
        assert set(entry["single"].candidates) == set(single_pass_methods()) & set(M.cnn_methods())
        assert {"tf-keras-vis Gradcam", "tf-keras-vis GradcamPlusPlus", "tf-keras-vis Layercam",
                "Keras example (GradientTape)"} <= set(entry["peers"].candidates)
        for key in ("ablationcam", "scorecam"):
            block = entry[key]
            assert block.passes > 0
            assert key in block.candidates
        for block in entry.values():
            for candidate in block.candidates.values():
                assert candidate.median_s > 0 and candidate.ratio > 0
    latency = smoke_result.latency  # the first map, then the methods of the same pass
    assert latency["first_map"]["method"] == "gradcam" and latency["first_map"]["wall_s"] > 0
    assert set(latency["switch"]) == {"gradcam++", "xgradcam", "hirescam", "layercam"}
    assert set(latency["switch_cpu"]) == set(latency["switch"])
    assert latency["warm_s"] > 0 and latency["warm_cpu_s"] > 0
    first = smoke_result.first_call
    assert set(first["single"]) == (set(single_pass_methods()) & set(M.cnn_methods())) | {"(baseline)"}
    assert "scorecam_full" in first  # warmed at its own (larger) batch size
    assert all(v > 0 for calls in first.values() for v in calls.values())
    for entry in smoke_result.batches.values():
        for name, candidate in entry["single"].candidates.items():
            assert candidate.cpu_ratio > 0 and len(candidate.cpu_s) == 1, name
    full = smoke_result.block("2", "scorecam_full")
    assert full.channels == 6 and full.passes == 2 * 6
    assert smoke_result.block("2", "ablationcam").passes == 2 * 6
    assert smoke_result.block("1", "scorecam_full") is None


def test_after_the_deadline_blocks_run_one_round_and_costly_peers_are_left_out(
        tiny_subject, smoke_result):
    from benchmarks.model_bench import Rounds, Settings, benchmark_subject

    three = Rounds(3, 3, 0.0)
    settings = Settings(batches=(2,), single={"2": three}, peers_rounds={"2": three},
                        perturbation={"2": three}, scorecam_channels=2, agreement_batch=2,
                        peers=True, progress=False, deadline=0.0, peer_cpu_limit_s=0.0)
    result = benchmark_subject(tiny_subject, settings)
    entry = result.batches["2"]
    assert all(block.hurried and block.rounds == 1 for block in entry.values())
    skipped = entry["scorecam"].skipped["tf-keras-vis Scorecam (max_N=2)"]
    assert "cannot be faster" in skipped["reason"] and skipped["masked_images"] >= 4
    rows = budgets.peer_ratios(result)
    assert any(r["ratio"] is None and r["peer"].startswith("tf-keras-vis Scorecam")
               for r in rows)


def test_peers_agree_where_the_definitions_coincide(smoke_result):
    rows = smoke_result.agreement
    peers = {r["peer"] for r in rows}
    assert {"tf-keras-vis Gradcam", "tf-keras-vis GradcamPlusPlus", "tf-keras-vis Layercam",
            "Keras example (GradientTape)", "tf-keras-vis Scorecam",
            "tf-keras-vis Scorecam (max_N=2)"} <= peers
    exact = [r for r in rows if r["exact"]]
    assert any(r["method"] == "scorecam" for r in exact)  # the input-resolution check ran
    for row in exact:
        assert row["max_rel_diff"] <= 1e-4, row


def test_docs_are_written_with_every_section(smoke_result, tmp_path):
    run = {"machine": {"cpu": "test cpu", "cores": 2, "date": "today"}, "wall_s": 1.0,
           "command": "pytest"}
    course = {"notebooks": {"date": "d", "results": [
        {"notebook": "00_start_here.ipynb", "seconds": 12.5, "peak_rss_mib": 500.0}]}}
    markdown, plot = write_report({"tiny": smoke_result}, course, run, tmp_path)
    assert markdown == tmp_path / DOC_NAME and plot == tmp_path / PLOT_NAME
    text = markdown.read_text()
    for heading in ("## Budgets", "## The machine", "## tiny", "## Peers", "## The course",
                    "## How it is measured"):
        assert heading in text
    assert "test cpu" in text and "00_start_here.ipynb" in text
    assert f"]({PLOT_NAME})" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- Ablation-CAM


def _mlp_head_model(pooling: str, keepdims: bool):
    """conv -> global pooling (optionally keepdims) -> Dense -> ReLU -> Dense: not a CAM
    head, but one that Ablation-CAM can run from the pooled vector."""
    import keras

    inputs = keras.Input((16, 16, 3))
    x = M.conv_stack(inputs, channels=(4, 6), seed=4)
    pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else \
        keras.layers.GlobalMaxPooling2D
    x = pool(keepdims=keepdims, name="pool")(x)
    if keepdims:
        x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(7, activation="relu", kernel_initializer=M._init(8),
                           bias_initializer=M._bias(9))(x)
    outputs = keras.layers.Dense(5, kernel_initializer=M._init(10),
                                 bias_initializer=M._bias(11))(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("pooling,keepdims", [("avg", False), ("max", False), ("avg", True)])
def test_ablationcam_through_the_pooled_vector_equals_ablating_the_maps(pooling, keepdims):
    import keras

    from camutils import methods as cm
    from camutils.methods.feature_model import feature_model

    model = _mlp_head_model(pooling, keepdims)
    x = M.images(3, seed=5)
    feature = feature_model(model, "conv2")
    assert feature.pooling == "pool"  # the shortcut applies
    activations, logits = feature(x)
    classes = logits.argmax(axis=1)
    # The head by hand, on each ablated activation map.
    head = keras.Sequential(model.layers[model.layers.index(model.get_layer("pool")):])
    channels = activations.shape[-1]
    ablated = np.stack([
        head(activations * (np.arange(channels) != k)).numpy()[np.arange(3), classes]
        for k in range(channels)
    ], axis=1)
    scores = logits[np.arange(3), classes]
    weights = (scores[:, None] - ablated) / np.abs(scores)[:, None]
    expected = np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0)
    e = cm.ablationcam(model, x, layer="conv2", batch_size=4)
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6)


def test_no_pooling_shortcut_where_the_layer_bypasses_the_pooling():
    from camutils.methods.feature_model import feature_model

    assert feature_model(M.skip_model(seed=2), "branch").pooling is None
    assert feature_model(M.gap_model(head="flatten"), "conv2").pooling is None
    assert feature_model(M.gap_model(dropout=0.5), "conv2").pooling is not None


def test_command_renders_stored_results_without_measuring(smoke_result, tmp_path, capsys):
    from benchmarks.__main__ import main

    results = tmp_path / "results"
    results.mkdir()
    run = {"machine": {"cpu": "stored cpu"}, "wall_s": 2.0, "command": "python -m benchmarks"}
    save_models(results / "models.json", StoredModels(run, {"tiny": smoke_result}))
    docs = tmp_path / "docs"
    assert main(["--skip-models", "--docs", str(docs), "--results", str(results)]) == 0
    text = (docs / DOC_NAME).read_text()
    assert "stored cpu" in text and "## tiny" in text
    assert (docs / PLOT_NAME).is_file()
    assert "Wrote" in capsys.readouterr().out


def test_stored_results_read_back_as_written(smoke_result, tmp_path):
    """The results schema round-trips: what the harness measured, written and read again."""
    save_models(tmp_path / "models.json", StoredModels({"wall_s": 1.0}, {"tiny": smoke_result}))
    again = load_models(tmp_path / "models.json")
    assert again.run == {"wall_s": 1.0}
    import json

    # (as JSON: NaN figures compare equal there, and tuples become lists)
    assert json.dumps(again.models["tiny"].to_dict()) == json.dumps(
        json.loads(json.dumps(smoke_result.to_dict())))
    assert again.models["tiny"].candidate("2", "gradcam").median_s == \
        smoke_result.candidate("2", "gradcam").median_s


def test_the_committed_results_follow_the_schema():
    """benchmarks/results/models.json reads into the typed results, and writes back the same
    (values that are None are left out)."""
    import json

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "models.json"
    stored = load_models(path)
    assert "efficientnet_lite0" in stored.models
    assert stored.models["efficientnet_lite0"].candidate("32", "cam").judged_ratio > 0

    def without_none(value):
        if isinstance(value, dict):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        return [without_none(v) for v in value] if isinstance(value, list) else value

    assert json.dumps(stored.to_dict()) == json.dumps(without_none(json.loads(path.read_text())))


# --------------------------------------------------------------------------- explaining a dataset


def _fake_dataset(throughput_wall: float, throughput_cpu: float, peak_ratio: float):
    from benchmarks.results import DatasetResult

    timings = {"median_s": 1.0, "cpu_median_s": 1.0, "samples_s": [1.0], "cpu_s": [1.0]}
    return DatasetResult.from_dict({
        "date": "d", "machine": {"load_average": [1.0, 1.0, 1.0], "cores": 2},
        "throughput": {"images": 64, "batch": 32, "model": "m", "rounds": 1,
                       "jpeg_bytes": {"largest": 9000, "smallest": 3000},
                       "baseline": timings, "candidate": timings,
                       "baseline_images_per_s": 60.0, "candidate_images_per_s": 55.0,
                       "throughput_ratio_wall": throughput_wall,
                       "throughput_ratio_cpu": throughput_cpu,
                       "throughput_ratio": min(throughput_wall, throughput_cpu)},
        "memory": {"model": "m", "batch": 32, "peak_ratio": peak_ratio, "runs": [
            {"images": 1000, "peak_rss_mib": 700.0, "before_run_mib": 600.0, "seconds": 1.0,
             "images_per_s": 1000.0},
            {"images": 10000, "peak_rss_mib": 700.0 * peak_ratio, "before_run_mib": 600.0,
             "seconds": 9.0, "images_per_s": 1111.0}]},
        "unknown_field": 1})


def test_dataset_budgets_pass_and_miss_at_their_limits(tmp_path):
    from benchmarks.results import load_dataset, save_dataset

    def status(result):
        return {r.budget.split(" ")[1]: r.status for r in budgets.dataset_rows(result)}

    assert status(_fake_dataset(0.90, 0.95, 1.02)) == {"throughput": "pass", "peak": "pass"}
    # judged on the smaller of the wall and CPU ratios; memory at most 1.10
    assert status(_fake_dataset(0.84, 0.95, 1.11)) == {"throughput": "miss", "peak": "miss"}
    assert status(None) == {"throughput": "not measured", "peak": "not measured"}
    rows = {r.budget: r for r in budgets.evaluate({}, None, _fake_dataset(0.9, 0.9, 1.0))}
    assert rows["explain_dataset throughput >= 0.85 x a forward-only tf.data pipeline"].value \
        == 0.9
    # the schema keeps unknown fields, and the report has its section
    save_dataset(tmp_path / "dataset.json", _fake_dataset(0.9, 0.9, 1.0))
    again = load_dataset(tmp_path / "dataset.json")
    assert again.extra == {"unknown_field": 1} and again.memory_ratio == 1.0
    from benchmarks.report import render_markdown

    text = render_markdown({}, None, {"wall_s": 1.0}, again)
    assert "## Explaining a dataset" in text and "explain_dataset, Grad-CAM" in text


def test_the_forward_only_baseline_does_the_same_work_as_lite0s_preprocessing(lite0, tmp_path):
    """The baseline pipeline reads the files with TensorFlow's decoder and preprocesses them
    as Lite0 does (crop, bicubic resize, (x - 127) / 128): its inputs differ from camutils'
    only by the two decoders' and resizers' rounding, so both pipelines do the same work."""
    import tensorflow as tf

    from benchmarks import dataset_bench

    paths = dataset_bench.jpeg_folder(tmp_path / "photos", 4)
    assert len({p.read_bytes() for p in paths}) == 4
    assert dataset_bench.forward_only_pipeline(lite0.model, paths, batch=3)() == 4
    for path in paths[:2]:
        image = tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3)
        shape = tf.shape(image)
        side = int(round(int(min(shape[0], shape[1])) * 0.875))
        top, left = (int(shape[0]) - side) // 2, (int(shape[1]) - side) // 2
        ours = (tf.clip_by_value(tf.image.resize(image[top:top + side, left:left + side],
                                                 (224, 224), "bicubic"), 0, 255) - 127) / 128
        theirs, _ = lite0.preprocess([path])
        assert np.abs(ours.numpy() - theirs[0]).mean() < 0.05


def test_measuring_some_notebooks_keeps_the_others_figures():
    from benchmarks.course import merge_notebooks

    stored = {"date": "2026-01-01T00:00", "results": [
        {"notebook": "00_a.ipynb", "seconds": 1.0, "peak_rss_mib": 500},
        {"notebook": "01_b.ipynb", "seconds": 2.0, "peak_rss_mib": 500}]}
    measured = {"date": "2026-02-02T00:00", "results": [
        {"notebook": "01_b.ipynb", "seconds": 3.0, "peak_rss_mib": 600, "date": "2026-02-02T00:00"},
        {"notebook": "08_c.ipynb", "seconds": 4.0, "peak_rss_mib": 700, "date": "2026-02-02T00:00"}]}
    merged = merge_notebooks(stored, measured)
    assert [(r["notebook"], r["seconds"], r["date"][:10]) for r in merged["results"]] == [
        ("00_a.ipynb", 1.0, "2026-01-01"), ("01_b.ipynb", 3.0, "2026-02-02"),
        ("08_c.ipynb", 4.0, "2026-02-02")]
    from benchmarks.report import render_markdown

    text = render_markdown({}, {"notebooks": merged}, {"wall_s": 1.0})
    assert "| measured on |" in text and "| 2026-01-01 |" in text
