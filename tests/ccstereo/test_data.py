"""Shard reading, the two samplers (split purity, determinism, resume, rank splitting, once per epoch), frames and
audio."""

import io
import shutil
import sys
import tarfile

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from ccstereo import audio, frames
from ccstereo.constants import MAX_SEGMENT_START
from ccstereo.data import EpochStream, ShardPlan, StreamConfig, TrainStream, _Batches
from ccstereo.frames import segment_frame_index
from pipelines.shards import (
    index_path,
    iter_clips,
    iter_raw_clips,
    list_shards,
    read_index,
    read_split_keys,
    shard_keys,
    trusted_index,
)
from pipelines.synth.fakeshards import make_fake_dataset

torch.set_num_threads(1)
FRAME = (36, 72)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_fake_dataset(root, n_clips=14, protocols={"5-split": 2}, frame_size=FRAME, clips_per_shard=4)


def stream_cfg(**kw):
    base = {"batch_size": 4, "samples_per_clip": 3, "shuffle_buffer": 8, "resize": (36, 72), "crop": (32, 64),
            "with_prev_frame": True, "seed": 0}
    base.update(kw)
    return StreamConfig(**base)


def take(stream, epoch, batches, start=0, workers=0):
    stream.set_epoch(epoch, batches, start)
    return list(DataLoader(stream, batch_size=None, num_workers=workers))


def same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["keys"] == y["keys"]
        for k in ("segment", "frame", "prev_frame", "brightness", "starts"):
            assert torch.equal(x[k], y[k]), k


def test_fixture_is_deterministic_and_in_the_shard_schema(fake, tmp_path):
    again = make_fake_dataset(tmp_path, n_clips=14, protocols={"5-split": 2}, frame_size=FRAME, clips_per_shard=4)
    assert [p.read_bytes() for p in again.shards] == [p.read_bytes() for p in fake.shards]
    assert list_shards(fake.root, "fair-play") == fake.shards and len(fake.shards) == 4
    with tarfile.open(fake.shards[0]) as tar:
        names = tar.getnames()
    assert names[:3] == ["000001_0000.audio.flac", "000001_0000.f000.jpg", "000001_0000.f001.jpg"]
    assert names[101] == "000001_0000.json"
    clip = next(iter_clips(fake.shards[:1]))
    assert clip.audio.shape == (2, 160000) and clip.audio.dtype == np.float32 and len(clip.frames) == 100
    assert clip.meta["n_frames"] == 100 and clip.meta["sample_rate"] == 16000
    # learnable: the sign of L - R follows the pan (the disc's side), L + R does not depend on it
    p0, _ = fake.pans[clip.key]
    left, right = clip.audio
    assert np.sign(np.sum((left - right)[:16000] * (left + right)[:16000])) == np.sign(p0)
    parts = fake.splits[("5-split", "1")]
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == sorted(fake.keys)
    assert read_split_keys(fake.root, "fair-play", "5-split", "1", "val") == parts["val"]


def test_split_list_and_shard_errors(fake, tmp_path):
    with pytest.raises(FileNotFoundError, match="splits/5-split/9/train.txt"):
        read_split_keys(fake.root, "fair-play", "5-split", "9", "train")
    with pytest.raises(ValueError, match="invalid protocol"):
        read_split_keys(fake.root, "fair-play", "..", "1", "train")
    bad = tmp_path / "fair-play" / "splits" / "p" / "1" / "train.txt"
    bad.parent.mkdir(parents=True)
    bad.write_text("000001_0000\nnot a key\n")
    with pytest.raises(ValueError, match=r"train.txt:2: malformed sample key"):
        read_split_keys(tmp_path, "fair-play", "p", "1", "train")
    with pytest.raises(FileNotFoundError, match="no shards"):
        list_shards(tmp_path, "fair-play")
    short = tmp_path / "short.tar"
    buf = io.BytesIO()
    sf.write(buf, np.zeros((100, 2)), 16000, format="FLAC")
    with tarfile.open(short, "w") as tar:
        for name, data in (("000009_0000.audio.flac", buf.getvalue()), ("000009_0000.f000.jpg", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"short.tar: clip 000009_0000: audio is 2 ch x 100 samples"):
        list(iter_clips([short]))


def released_frame(start: int) -> int:
    """The released evaluation's frame for a window of a 10 s clip (frames numbered from 1), made 0-based."""
    return int(round((((start + 10080 / 2.0) / 160000) * 10 + 0.1) * 10)) - 1


def test_frame_for_a_segment():
    assert segment_frame_index(0, 100) == 3  # centre 0.315 s -> nearest frame 3
    assert segment_frame_index(160000 - 10080, 100) == 97  # centre 9.685 s -> nearest frame 97
    assert segment_frame_index(160000 - 10080, 50) == 49  # clamped to the clip's frames
    # the released pairing for every window of the official hop, including the half-way case at window 45
    assert [segment_frame_index(k * 1008, 100) for k in range(150)] == [released_frame(k * 1008) for k in range(150)]
    assert segment_frame_index(45 * 1008, 100) == 31


def test_loader_yields_exactly_the_split_keys(fake):
    parts = fake.splits[("5-split", "1")]
    plan = ShardPlan.build(fake.shards, parts["train"])
    assert plan.n_clips == len(parts["train"]) and plan.missing == ()
    batches = take(TrainStream(plan, stream_cfg()), 0, 12)
    seen = {k for b in batches for k in b["keys"]}
    assert seen == set(parts["train"])
    b = batches[0]
    assert b["segment"].shape == (4, 2, 10080) and b["frame"].shape == (4, 3, 32, 64) and b["frame"].dtype == torch.uint8
    assert torch.allclose(audio.rms(b["segment"]), torch.full((4,), 0.1), rtol=1e-4)  # joint L, R RMS = 0.1
    assert ((b["brightness"] >= 0.7) & (b["brightness"] <= 1.3)).all()


def test_ranks_get_disjoint_clips_and_the_same_number_of_batches(fake):
    keys = fake.splits[("5-split", "2")]["train"]
    plan = ShardPlan.build(fake.shards, keys)
    seen = []
    for rank in range(2):
        batches = take(TrainStream(plan, stream_cfg(), rank=rank, world=2), 0, 5)
        assert len(batches) == 5
        seen.append({k for b in batches for k in b["keys"]})
    assert not seen[0] & seen[1] and seen[0] | seen[1] <= set(keys)
    # more streams than shards: interleaved clips, still disjoint
    sources = [plan.sources(0, 0, 0, s, 6) for s in range(6)]
    flat = [k for src in sources for _, ks in src for k in ks]
    assert sorted(flat) == sorted(keys)


def test_stream_is_deterministic_and_resumes_exactly(fake):
    plan = ShardPlan.build(fake.shards, fake.splits[("5-split", "1")]["train"])
    full = take(TrainStream(plan, stream_cfg()), 3, 6)
    same_batches(full, take(TrainStream(plan, stream_cfg()), 3, 6))
    same_batches(full[4:], take(TrainStream(plan, stream_cfg()), 3, 6, start=4))
    other = take(TrainStream(plan, stream_cfg()), 4, 2)
    assert not torch.equal(other[0]["segment"], full[0]["segment"])  # another epoch draws other samples


def test_worker_processes_resume_exactly(fake):
    plan = ShardPlan.build(fake.shards, fake.splits[("5-split", "1")]["train"])
    full = take(TrainStream(plan, stream_cfg(), num_workers=2), 0, 5, workers=2)
    same_batches(full[3:], take(TrainStream(plan, stream_cfg(), num_workers=2), 0, 5, start=3, workers=2))


def test_epoch_sampler_reads_each_clip_once_per_epoch(fake):
    keys = fake.splits[("5-split", "1")]["train"]
    plan = ShardPlan.build(fake.shards, keys)
    n_batches = len(keys) // 4
    epoch0 = take(EpochStream(plan, stream_cfg()), 0, n_batches)
    seen = [k for b in epoch0 for k in b["keys"]]
    assert len(seen) == len(set(seen)) == 4 * n_batches and set(seen) <= set(keys)  # no clip twice in an epoch
    assert seen != sorted(seen, key=[k for _, ks in plan.shards for k in ks].index)  # shuffled, not shard order
    epoch1 = take(EpochStream(plan, stream_cfg()), 1, n_batches)
    assert [k for b in epoch1 for k in b["keys"]] != seen  # another order in another epoch
    b = epoch0[0]
    assert b["segment"].shape == (4, 2, 10080) and b["prev_frame"].shape == (4, 3, 32, 64)
    assert torch.allclose(audio.rms(b["segment"]), torch.full((4,), 0.1), rtol=1e-4)
    assert all(0 <= s < MAX_SEGMENT_START for b in epoch0 for s in b["starts"].tolist())


def test_epoch_sampler_is_deterministic_resumes_and_splits_ranks(fake):
    keys = fake.splits[("5-split", "2")]["train"]
    plan = ShardPlan.build(fake.shards, keys)
    full = take(EpochStream(plan, stream_cfg()), 2, 2)
    same_batches(full, take(EpochStream(plan, stream_cfg()), 2, 2))
    same_batches(full[1:], take(EpochStream(plan, stream_cfg()), 2, 2, start=1))
    same_batches(full[1:], take(EpochStream(plan, stream_cfg(), num_workers=2), 2, 2, start=1, workers=2))
    # two ranks with half the per-rank batch read the two halves of each global batch, disjoint
    halves = [take(EpochStream(plan, stream_cfg(batch_size=2), rank=r, world=2), 2, 2) for r in range(2)]
    for i, whole in enumerate(full):
        assert halves[0][i]["keys"] + halves[1][i]["keys"] == whole["keys"]
        assert torch.equal(torch.cat([halves[0][i]["segment"], halves[1][i]["segment"]]), whole["segment"])


def test_frame_ops():
    img = torch.arange(3 * 6 * 10, dtype=torch.uint8).reshape(3, 6, 10)
    # frame numbers count from 1 (released code, paper Alg. 1): 0-based frame 4 is the 5th, top-left
    assert frames.tdss_box(4, (6, 10), (4, 6)) == (0, 0)
    assert frames.tdss_box(0, (6, 10), (4, 6)) == (0, 4)  # the 1st frame: top-right
    assert frames.tdss_box(2, (6, 10), (4, 6)) == (2, 4)  # bottom-right
    assert frames.tdss_box(8, (6, 10), (4, 6)) == (1, 2)  # the 9th frame: centre
    assert torch.equal(frames.crop(img, 2, 4, (4, 6)), img[:, 2:6, 4:10])
    with pytest.raises(ValueError, match="outside"):
        frames.crop(img, 3, 0, (4, 6))
    x = torch.rand(2, 3, 4, 5)
    ones = torch.ones(2)
    assert torch.allclose(frames.colour_jitter(x, ones, ones), x)
    grey = frames.colour_jitter(x, ones, torch.zeros(2))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    mean = torch.tensor(frames.IMAGENET_MEAN)[:, None, None].expand(3, 2, 2)
    assert torch.allclose(frames.normalise_imagenet(mean), torch.zeros(3, 2, 2), atol=1e-6)
    assert frames.resize(img, (3, 5)).shape == (3, 3, 5)


def test_audio_conventions():
    assert torch.allclose(audio.hann_window(), torch.from_numpy(scipy.signal.get_window("hann", 400)).float(), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    stereo = torch.randn(3, 2, 10080, generator=g)
    mono, diff = audio.to_mono_diff(stereo)
    assert torch.allclose(audio.from_mono_diff(mono, diff), stereo, atol=1e-6)
    assert audio.stft(mono).shape == (3, 257, 64)
    assert torch.allclose(audio.istft(audio.stft(mono), 10080), mono, atol=1e-4)
    m_spec, d_spec = audio.segment_specs(stereo)
    assert m_spec.shape == d_spec.shape == (3, 2, 257, 64)
    scaled, gain = audio.normalise_rms(stereo)
    assert torch.allclose(audio.rms(scaled), torch.full((3,), 0.1), rtol=1e-5)
    assert torch.allclose(scaled / gain[:, None, None], stereo, atol=1e-5)
    silent, _ = audio.normalise_rms(torch.zeros(1, 2, 100))
    assert torch.count_nonzero(silent) == 0


def test_tar_reader_handles_long_names_and_refuses_damage(fake, tmp_path):
    # pax and GNU long names (a writer may use either): a key of 115 characters gives member names over the
    # ustar header's 100; a member in a folder is refused, however it is spelt
    clip = next(iter_clips(fake.shards[:1]))
    buf = io.BytesIO()
    sf.write(buf, clip.audio.T, 16000, format="FLAC", subtype="PCM_16")
    members = {"audio.flac": buf.getvalue(), "f000.jpg": clip.frames[0], "json": b"{}"}
    long_key = "v" * 110 + "_0000"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        for key, prefix in ((long_key, ""), (clip.key, "d" * 120 + "/")):
            path = tmp_path / f"long{fmt}-{len(prefix)}.tar"
            with tarfile.open(path, "w", format=fmt) as tar:
                for ext, data in members.items():
                    info = tarfile.TarInfo(f"{prefix}{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            if prefix:
                with pytest.raises(ValueError, match=f"{path.name}: member .* has a path"):
                    shard_keys(path)
                continue
            assert shard_keys(path) == [long_key]
            (got,) = list(iter_clips([path]))
            assert got.key == long_key
            assert np.array_equal(got.audio, clip.audio) and got.frames == clip.frames[:1]
    data = fake.shards[0].read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.tar: truncated tar"):
        shard_keys(cut)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[:10] + b"X" + data[11:])  # a byte of the first header's name field
    with pytest.raises(ValueError, match="bad.tar: corrupt tar header"):
        list(iter_clips([bad]))


def headers_only_copy(fake, dest):
    """The fake shards without their index files: readers must parse the tar headers."""
    dest.mkdir()
    out = []
    for shard in fake.shards:
        out.append(dest / shard.name)
        shutil.copyfile(shard, out[-1])
    return out


def test_reader_with_and_without_index_gives_the_same_clips(fake, tmp_path):
    bare = headers_only_copy(fake, tmp_path / "bare")
    assert all(trusted_index(s, s.stat().st_size) is not None for s in fake.shards)
    assert all(not index_path(s).exists() for s in bare)
    with_index = [(c.key, c.members) for c in iter_raw_clips(fake.shards)]
    from_headers = [(c.key, c.members) for c in iter_raw_clips(bare)]
    assert with_index == from_headers and len(with_index) == len(fake.keys)
    wanted = fake.splits[("5-split", "1")]["val"]
    assert [c.key for c in iter_clips(fake.shards, wanted)] == [c.key for c in iter_clips(bare, wanted)] == wanted
    # the trainer's input: same plan, same samples in the same order
    keys = fake.splits[("5-split", "1")]["train"]
    plan, bare_plan = ShardPlan.build(fake.shards, keys), ShardPlan.build(bare, keys)
    assert [k for _, k in plan.shards] == [k for _, k in bare_plan.shards]
    same_batches(take(TrainStream(plan, stream_cfg()), 1, 4), take(TrainStream(bare_plan, stream_cfg()), 1, 4))


def test_a_stale_index_is_not_trusted(fake, tmp_path):
    """A tar rewritten after its index (here: another shard's bytes under its name) is read from its headers."""
    bare = headers_only_copy(fake, tmp_path / "shards")
    shard = bare[0]
    shutil.copyfile(index_path(fake.shards[0]), index_path(shard))
    assert trusted_index(shard, shard.stat().st_size) is not None
    shutil.copyfile(fake.shards[1], shard)
    assert trusted_index(shard, shard.stat().st_size) is None
    assert shard_keys(shard) == shard_keys(fake.shards[1]) != shard_keys(fake.shards[0])
    assert [c.members for c in iter_raw_clips([shard])] == [c.members for c in iter_raw_clips(fake.shards[1:2])]
    # a damaged index is not trusted either
    index_path(shard).write_text('{"format": "ccstereo-shard-index/1"}\n')
    with pytest.raises(ValueError, match="header does not describe"):
        read_index(shard)
    assert trusted_index(shard, shard.stat().st_size) is None
    assert shard_keys(shard) == shard_keys(fake.shards[1])


class _DeathSignal(_Batches):
    """Yields the signal the kernel sends this worker when its parent dies (prctl PR_GET_PDEATHSIG)."""

    def __iter__(self):
        import ctypes

        self._slot()
        sig = ctypes.c_int(-1)
        ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
        yield sig.value


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_loader_worker_dies_with_its_parent():
    """A killed trainer's loader workers read on for up to 5 s (torch's watchdog interval); the fault campaign
    counted them as outliving their parent. The kernel now kills them with it."""
    import signal

    got = list(DataLoader(_DeathSignal(None, None, num_workers=1), batch_size=None, num_workers=1))
    assert got == [signal.SIGKILL]
