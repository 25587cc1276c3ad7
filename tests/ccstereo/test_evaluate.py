"""Full-clip evaluation (ccstereo.evaluate): the one code path of model selection and of ccs-bench."""

import numpy as np
import pytest
import torch

from ccstereo.evaluate import EvalSettings, evaluate_clips, shuffled_pairs
from ccstereo.metrics import compute_metrics
from pipelines.shards import iter_clips
from pipelines.synth.fakeshards import make_fake_dataset

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_dataset(tmp_path_factory.mktemp("eval"), n_clips=6, protocols={"5-split": 1},
                             frame_size=(36, 72), clips_per_shard=3)


class ZeroModel(torch.nn.Module):
    """Predicts no difference: through the sliding windows it must score exactly as Mono-Mono."""

    def forward(self, mono_spec, frame):
        return torch.zeros_like(mono_spec)


def test_mono_mono_rows_equal_the_metrics_of_half_the_mono_in_both_channels(fake):
    keys = sorted(fake.splits[("5-split", "1")]["test"] + fake.splits[("5-split", "1")]["val"])
    rows = evaluate_clips(fake.shards, keys, None, None, EvalSettings(), where="fake test")
    assert [r["key"] for r in rows] == keys
    for clip, row in zip(sorted(iter_clips(fake.shards, keys), key=lambda c: c.key), rows):
        mono = clip.audio.sum(0)
        want = compute_metrics(np.stack([mono / 2, mono / 2]), clip.audio)
        assert row["key"] == clip.key
        assert {k: row[k] for k in want} == pytest.approx(want, rel=1e-9)
    via_windows = evaluate_clips(fake.shards, keys, ZeroModel(), {"resize": (36, 72), "crop": (32, 64)},
                                 EvalSettings(hop=5040, tdss=True, batch_size=7), where="fake test")
    for a, b in zip(rows, via_windows):
        assert a["STFT"] == pytest.approx(b["STFT"], rel=1e-5, abs=1e-9)


def test_errors_name_the_list(fake):
    with pytest.raises(ValueError, match="fake val: the list is empty"):
        evaluate_clips(fake.shards, [], None, None, EvalSettings(), where="fake val")
    with pytest.raises(ValueError, match="needs >= 2 clips"):
        evaluate_clips(fake.shards, fake.splits[("5-split", "1")]["test"][:1], None, None,
                       EvalSettings(shuffle_frames=True), where="fake test")
    with pytest.raises(ValueError, match="not found in the shards"):
        evaluate_clips(fake.shards, ["nope_0000"], None, None, EvalSettings(), where="fake test")


def test_shuffled_pairs_never_give_a_clip_its_own_frames():
    class C:
        def __init__(self, k):
            self.key, self.frames = k, [k]

    pairs = list(shuffled_pairs(iter([C("a"), C("b"), C("c")])))
    assert [(c.key, f[0]) for c, f in pairs] == [("a", "b"), ("b", "c"), ("c", "a")]
