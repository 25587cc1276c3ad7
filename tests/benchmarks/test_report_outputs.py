"""What a finished run writes beside report.md: report.html (self-contained, every number of the tables, the
chosen clips), the spatial columns marked as beyond the paper, fields added by others rendered generically, bars
whose labels are not cut, outputs created with the user's umask, ``ccs-bench report`` and ``ccs-infer --report``."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from matplotlib.backends.backend_agg import FigureCanvasAgg

from benchmarks import plots, report
from benchmarks.cli import main as bench_main
from benchmarks.html_report import choose_clips
from benchmarks.plots import plot_bars
from benchmarks.tables import slugify
from ccstereo.cli import infer_command
from ccstereo.metrics import compute_metrics
from tests.helpers.media import make_video

REPORT_METHODS = ("Mono-Mono", "CCStereo", "CCStereo, frames shuffled across clips")  # what the fixture ran


class _Refs(HTMLParser):
    """Every src/href of a page, and its audio elements' attributes."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.audio: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in a.items() if k in ("src", "href")]
        if tag == "audio":
            self.audio.append(a)


def _parse(page: Path) -> _Refs:
    refs = _Refs()
    refs.feed(page.read_text(encoding="utf-8"))
    return refs


def test_report_html_is_self_contained_and_holds_the_tables(finished_run):
    page = finished_run / "report.html"
    refs = _parse(page)
    assert refs.refs and all(not re.match(r"^[a-z]+:", r) and not r.startswith("/") for r in refs.refs), refs.refs
    for r in refs.refs:  # every file the page names is in the folder
        assert (finished_run / r).is_file(), r
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["beyond_paper_columns"] == ["ILD", "ITD", "IC", "SWAP"] and summary["html"] == "report.html"
    text = page.read_text(encoding="utf-8")
    methods = summary["sections"][0]["methods"]
    assert [m["method"] for m in methods] == list(REPORT_METHODS)
    for m in methods:
        for c in (*summary["columns"], *summary["beyond_paper_columns"]):
            assert f">{m['mean'][c]:.3f}<" in text, (m["method"], c)
    for key in ("commit", "packages", "checkpoints", "data_manifests"):
        assert f"<td>{key}</td>" in text
    # every chosen clip: mono, truth, and each method's prediction and error, all 10 s 16 kHz WAVs
    rec = json.loads((finished_run / "splits" / "fair-play-5-split-1" / "ccstereo.json").read_text())
    chosen = choose_clips(rec["clips"], seed=0)
    assert len(refs.audio) == len(chosen) * (2 + 2 * len(REPORT_METHODS))
    for a in refs.audio:
        info = sf.info(finished_run / a["src"])
        assert info.samplerate == 16_000 and info.frames == 160_000 and float(a["data-duration"]) == 10.0
    for n, (key, why) in enumerate(chosen):
        assert f"{key} ({why})" in text
        # the clip predicted again is the one that was scored: its STFT distance from the (16-bit) WAVs
        truth, _ = sf.read(finished_run / "listen" / f"fair-play-5-split-1-{n}-truth.wav", always_2d=True)
        for j, method in enumerate(REPORT_METHODS):
            pred, _ = sf.read(finished_run / "listen" / f"fair-play-5-split-1-{n}-pred{j}.wav", always_2d=True)
            scored = json.loads((finished_run / "splits" / "fair-play-5-split-1" / f"{slugify(method)}.json"
                                 ).read_text())
            want = next(c for c in scored["clips"] if c["key"] == key)["STFT"]
            assert compute_metrics(pred.T, truth.T)["STFT"] == pytest.approx(want, rel=2e-3), (key, method)
    md = (finished_run / "report.md").read_text()
    assert "| method | STFT ↓ | ENV ↓ | WAV ↓ | Mag ↓ | Phs ↓ | SNR ↑ | ILD† ↓ | ITD† ↓ | IC† ↓ | SWAP† ↑ |" in md
    assert "† Beyond the paper" in md and "[report.html](report.html)" in md
    # Mono-Mono cannot tell left from right: SWAP equals STFT, clip by clip
    mono = json.loads((finished_run / "splits" / "fair-play-5-split-1" / "mono-mono.json").read_text())
    assert all(c["SWAP"] == pytest.approx(c["STFT"], rel=1e-12) for c in mono["clips"])


def test_outputs_are_created_with_the_users_umask(finished_run, tmp_path):
    for p in [finished_run / "report.html", finished_run / "summary.json", *(finished_run / "listen").iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~_umask(), p
    code = ("import os, sys, stat; from pipelines.io import atomic_write_text; os.umask(int(sys.argv[1], 8)); "
            "atomic_write_text(sys.argv[2], 'x'); print(oct(stat.S_IMODE(os.stat(sys.argv[2]).st_mode)))")
    for mask, want in (("077", "0o600"), ("002", "0o664"), ("022", "0o644")):
        out = subprocess.run([sys.executable, "-c", code, mask, str(tmp_path / f"f{mask}")], check=True,
                             capture_output=True, text=True, cwd=Path(__file__).parents[2])
        assert out.stdout.strip() == want, (mask, out.stdout, out.stderr)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_choose_clips_best_median_worst_and_a_seeded_sample():
    rows = [{"key": f"k{i}", "STFT": v} for i, v in enumerate([5.0, 1.0, 3.0, 9.0, 2.0, 7.0, 4.0])]
    chosen = choose_clips(rows, seed=3)
    assert chosen[:3] == [("k1", "best by STFT"), ("k6", "median by STFT"), ("k3", "worst by STFT")]
    assert len(chosen) == 5 and len({k for k, _ in chosen}) == 5 and chosen == choose_clips(rows, seed=3)
    assert choose_clips(rows[:1], seed=0) == [("k0", "best by STFT")]


def _summary_with_notes() -> dict:
    cols = ["STFT", "SNR"]
    method = {"method": "CCStereo, frames shuffled across clips", "n_splits": 2, "n_clips": {"1": 3, "2": 3},
              "per_split": {"1": {"STFT": 1.0, "SNR": 5.0, "LOC": 20.0}, "2": {"STFT": 2.0, "SNR": 6.0, "LOC": 30.0}},
              "mean": {"STFT": 1.5, "SNR": 5.5, "LOC": 25.0}, "std": {"STFT": 0.7, "SNR": 0.7, "LOC": 7.0},
              "paper": {"STFT": 1.25, "SNR": 6.0}, "relative_difference": {"STFT": 0.2, "SNR": -1 / 12},
              "note": "the project's own seeded split"}
    return {"table": "x", "title": "t", "columns": cols, "beyond_paper_columns": ["LOC"],
            "lower_is_better": {"STFT": True, "SNR": False, "LOC": True}, "aggregation": "mean",
            "meta": {"commit": "abc", "recipe": "official", "validation_source": {"fair-play": "val"}},
            "sections": [{"dataset": "fair-play", "protocol": "5-split", "splits": ["1", "2"], "methods": [method],
                          "paper_rows": [{"method": "CMC", "values": {"STFT": 0.9, "SNR": None},
                                          "note": "the paper's own re-implementation (grey in the paper)"}]}]}


def test_markdown_renders_notes_and_meta_it_does_not_know_and_beyond_columns():
    md = report.render_markdown(_summary_with_notes())
    assert "| recipe | official |" in md and '| validation_source | {"fair-play": "val"} |' in md
    assert "| CCStereo, frames shuffled across clips | 1.500 ± 0.700 | 5.500 ± 0.700 | 25.000 ± 7.000 | " \
           "the project's own seeded split |" in md
    assert "| CMC | 0.900 | - | - | the paper's own re-implementation (grey in the paper) |" in md
    assert "| method | STFT ↓ | SNR ↑ | LOC† ↓ | note |" in md and "LOC: localisation error" in md


def test_bars_label_every_row_without_cutting_or_overlapping(tmp_path, monkeypatch):
    summary = _summary_with_notes()
    path = plot_bars(summary, tmp_path / "bars.png")
    assert path.stat().st_size > 5000
    # the figure as drawn: every label inside the canvas, the names left of the first panel only
    drawn = []
    monkeypatch.setattr(plots, "save_png", lambda fig, p: drawn.append(fig) or p)
    plot_bars(summary, tmp_path / "again.png")
    fig = drawn[0]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    axes = fig.axes
    names = [t for t in axes[0].get_yticklabels() if t.get_text()]
    assert [t.get_text() for t in names] == ["CCStereo, frames shuffled across clips (ours)", "CMC (paper)"]
    for t in names:
        box = t.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width and 0 <= box.y0 <= box.y1 <= height
        assert box.x1 <= axes[0].get_window_extent(renderer).x0 + 1  # left of the panel, not inside it
    assert all(not t.get_text() for ax in axes[1:] for t in ax.get_yticklabels())


def test_ccs_bench_report_rebuilds_an_existing_run(finished_run):
    before = json.loads((finished_run / "summary.json").read_text())
    (finished_run / "report.html").unlink()
    res = CliRunner().invoke(bench_main, ["report", str(finished_run.parent)])
    assert res.exit_code == 0, res.output
    assert (finished_run / "report.html").is_file() and "report.html" in res.output
    after = json.loads((finished_run / "summary.json").read_text())
    assert after["sections"] == before["sections"]
    res = CliRunner().invoke(bench_main, ["report", str(finished_run / "listen")])
    assert res.exit_code != 0 and "no summary.json" in res.output


def test_ccs_infer_report_for_a_stereo_and_a_mono_video(finished_run, tmp_path):
    checkpoint = finished_run.parents[1] / "ccstereo.pt"
    for stereo in (True, False):
        video = tmp_path / f"in-{stereo}.mp4"
        make_video(video, seconds=1.5, stereo=stereo)
        out = tmp_path / f"report-{stereo}"
        res = CliRunner().invoke(infer_command, [str(video), "-c", str(checkpoint), "-o", str(tmp_path / "o.wav"),
                                                 "--hop", "4000", "--report", str(out)])
        assert res.exit_code == 0, res.output
        refs = _parse(out / "report.html")
        for r in refs.refs:
            assert (out / r).is_file(), r
        labels = (out / "report.html").read_text()
        assert len(refs.audio) == (4 if stereo else 2)  # mono, [truth], prediction, [error]
        assert ("<figcaption>ground truth</figcaption>" in labels) == stereo and ("ILD (dB)†" in labels) == stereo
        pred, rate = sf.read(out / "listen" / "video-pred0.wav")
        assert rate == 16_000 and pred.shape[1] == 2 and abs(pred.shape[0] - 24_000) < 1000
        assert np.abs(pred).max() > 0
