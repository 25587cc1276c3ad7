"""The report tables and the aggregation (pandas) against a direct numpy / csv-module computation on a small
fake result set: the same numbers to the last bit, the same CSV bytes."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import report
from benchmarks.tables import get_table, paper_row
from ccstereo.metrics import METRIC_NAMES

TABLE = get_table("1")  # FAIR-Play, 10 splits: enough splits for numpy's pairwise summation to matter
METHODS = ("Mono-Mono", "Mono2Binaural", "CCStereo")


def fake_results(seed: int = 0, splits: tuple[str, ...] = TABLE.sections[0].splits) -> list[dict]:
    """Result records as ``benchmarks.records.result_record`` writes them (the fields the reports read), in
    an order unlike the reports' (splits and methods reversed)."""
    rng = np.random.default_rng(seed)
    out = []
    for split in reversed(splits):
        for method in reversed(METHODS):
            clips = [{"key": f"vid{k:05d}_{k:06d}", **{c: float(rng.lognormal(0, 2)) for c in METRIC_NAMES}}
                     for k in range(int(rng.integers(2, 6)))]
            out.append({"dataset": "fair-play", "protocol": "10-split", "split": split, "method": method,
                        "method_slug": method.lower(), "n_clips": len(clips), "clips": clips,
                        "metrics": {c: float(np.mean([x[c] for x in clips])) for c in METRIC_NAMES},
                        "tdss": method == "CCStereo", "checkpoint": None if method == "Mono-Mono" else f"{split}.pt"})
    return out


def test_summary_numbers_equal_a_direct_numpy_computation():
    results = fake_results()
    summary = report.build_summary(TABLE, results, meta={})
    methods = summary["sections"][0]["methods"]
    assert [m["method"] for m in methods] == list(METHODS)
    for m in methods:
        mine = sorted((r for r in results if r["method"] == m["method"]), key=lambda r: int(r["split"]))
        assert list(m["per_split"]) == [r["split"] for r in mine] == [str(i) for i in range(1, 11)]
        assert m["n_clips"] == {r["split"]: r["n_clips"] for r in mine}
        row = paper_row("1", m["method"], "fair-play")
        paper = row["values"] if row else None
        assert m["paper"] == paper and (m["relative_difference"] is None) == (paper is None)
        for c in TABLE.columns:
            vals = np.array([r["metrics"][c] for r in mine], dtype=np.float64)
            assert [m["per_split"][s][c] for s in m["per_split"]] == vals.tolist()
            assert m["mean"][c] == float(vals.mean())  # exact: same summation order
            assert m["std"][c] == float(vals.std(ddof=1))
            if paper is not None:
                want = None if paper[c] is None else (float(vals.mean()) - paper[c]) / abs(paper[c])
                assert m["relative_difference"][c] == want
        assert m["tdss"] == (m["method"] == "CCStereo")
        assert m["checkpoints"] == {r["split"]: r["checkpoint"] for r in mine}
    assert any(m["paper"] for m in methods) and not all(m["paper"] for m in methods)
    one = report.build_summary(TABLE, fake_results(1, ("4",)), meta={})["sections"][0]["methods"][0]
    assert one["n_splits"] == 1 and set(one["std"].values()) == {0.0}


def test_relative_difference_is_none_without_a_paper_number():
    rel = report.relative_difference({"STFT": 0.9, "ENV": 0.2, "SNR": 5.0}, {"STFT": 1.0, "ENV": 0, "WAV": 1.0,
                                                                             "SNR": None})
    assert rel == {"STFT": (0.9 - 1.0) / 1.0, "ENV": None, "WAV": None, "SNR": None}


def _csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def test_csv_tables_equal_the_csv_module_with_repr_floats(tmp_path):
    results = fake_results()
    results[0]["clips"][0]["SNR"] = math.nan  # how a missing number is written
    results[1]["method"] = "CCStereo, frames shuffled across clips"  # a name the CSV must quote
    results[0]["metrics"]["ENV"] = 1e-7
    report.write_splits_table(tmp_path / "splits.csv", results)
    order = sorted(results, key=lambda r: (r["dataset"], r["protocol"], int(r["split"]), r["method"]))
    want = _csv([["dataset", "protocol", "split", "method", "n_clips", *METRIC_NAMES]]
                + [[r["dataset"], r["protocol"], r["split"], r["method"], r["n_clips"],
                    *(repr(float(r["metrics"][c])) for c in METRIC_NAMES)] for r in order])
    assert (tmp_path / "splits.csv").read_text() == want
    assert '"CCStereo, frames shuffled across clips"' in want and ",1e-07," in want

    _, csv_path = report.write_split_files(tmp_path / "splits", results[0])
    r = results[0]
    want = _csv([["key", *METRIC_NAMES]]
                + [[c["key"], *(repr(float(c[m])) for m in METRIC_NAMES)] for c in r["clips"]]
                + [["mean", *(repr(float(r["metrics"][m])) for m in METRIC_NAMES)]])
    assert csv_path.read_text() == want and ",nan\n" in want
    assert csv_path == tmp_path / "splits" / "fair-play-10-split-10" / "ccstereo.csv"


@pytest.mark.parametrize("seed", range(20))
def test_aggregate_is_numpy_exactly(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 13))
    values = rng.lognormal(0, 3, (n, len(METRIC_NAMES)))
    frame = pd.DataFrame(values, index=[str(i) for i in range(n)], columns=list(METRIC_NAMES))
    mean, std = report.aggregate(frame, METRIC_NAMES)
    columns = [np.ascontiguousarray(values[:, j]) for j in range(len(METRIC_NAMES))]  # as the old code had them
    assert list(mean.values()) == [float(col.mean()) for col in columns]
    assert list(std.values()) == [float(col.std(ddof=1)) for col in columns]
