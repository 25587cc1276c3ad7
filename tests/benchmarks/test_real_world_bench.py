"""The projection evaluation (``ccs-bench projection``) and the inference memory benchmark (``ccs-bench speed
infer-memory``) on small inputs: they run end to end and report what BENCHMARKS.md quotes."""

from __future__ import annotations

import numpy as np

from benchmarks.infer_memory import measure_infer_memory
from benchmarks.projection_eval import evaluate_projection, threshold_baseline
from ccstereo.infer import window_starts
from pipelines.synth.textures import panorama
from tests.helpers.prepare_world import convert_image


def test_projection_evaluation_on_a_small_set():
    result = evaluate_projection(seed=3, scenes_per_kind=1, yaws_per_scene=2, kinds=("photos", "dark-room"))
    s = result["summary"]
    assert s["frames"] == 8 and s["videos"] == 4 and len(result["frames"]) == 8
    assert s["frame_accuracy"] == 1.0 and s["video_accuracy"] == 1.0
    assert s["correct_upstream_overridden"] == 0 and s["wrong_upstream_corrected"] == 4
    assert sum(b["frames"] for b in s["calibration"].values()) == 8
    assert {r["truth"] for r in result["videos"]} == {"ER", "EAC"}


def test_threshold_baseline_is_the_old_cue_vote():
    pano = panorama("room", np.random.default_rng(0), 1024, 512)
    eac = convert_image(pano, "v360=input=e:output=eac:w=768:h=512", 768, 512)
    assert threshold_baseline(convert_image(pano, "scale=768:512", 768, 512)) == "ER"
    assert threshold_baseline(eac) == "EAC"
    assert threshold_baseline(np.full((512, 768, 3), 90, np.uint8)) is None


def test_infer_memory_benchmark_runs(tmp_path):
    r = measure_infer_memory([2.0], preset_name="cpu-small", hop=10_080, batch_size=4, baseline_max_s=2.0,
                             work=tmp_path)
    run = r["runs"][0]
    assert run["stream"]["samples"] == run["in_memory"]["samples"] == 32_000
    assert run["stream"]["windows"] == run["in_memory"]["windows"] == len(window_starts(32_000, 10_080))
    assert run["stream"]["peak_rss_mb"] >= r["imports_only"]["peak_rss_mb"] * 0.9 > 0
    assert (tmp_path / "test-2s.mp4").is_file() and r["stream_peak_spread"] == 0.0
