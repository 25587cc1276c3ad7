"""``ccs-data doctor`` (issue 15): each check against the real machine and against a faked one (a PATH without a
JavaScript runtime, a fake ffmpeg, an unreadable cookies file, a disk too small, missing weights, no CUDA...), the
targets' needs, and the exit status."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shutil
import stat
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import yt_dlp
from click.testing import CliRunner

from pipelines import doctor, doctor_checks as dc
from pipelines.cli import main as cli_main
from pipelines.contract import DatasetLayout
from pipelines.doctor import Environment, TargetOptions, resolve_target, run_checks
from pipelines.errors import InputError
from pipelines.ffmpeg import ffmpeg_exe
from pipelines.recipes.youtube import YtdlpConfig, ytdlp_options
from pipelines.synth.fakeshards import make_fake_dataset
from pipelines.weights import URL_ENV, cache_dir
from tests.helpers.weights import make_resnet18_file

NOBODY = 65534


def script(folder: Path, name: str, body: str) -> Path:
    """An executable shell script ``folder/name`` (a fake tool)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def as_user(uid: int, fn, *args):
    """``fn(*args)`` in a forked child running as ``uid`` (root reads every file: permissions need another user)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the user, run, send the result back, never return into pytest
        try:
            os.close(read)
            os.setgid(uid)
            os.setuid(uid)
            os.write(write, pickle.dumps(fn(*args)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


def denied(fn, *args):
    """``fn(*args)`` as a user without the permissions the test took away (root: another user; else this one)."""
    return as_user(NOBODY, fn, *args) if os.geteuid() == 0 else fn(*args)


@pytest.fixture
def open_dir():
    """A folder every user may enter (the test's own tmp folder is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ccs-doctor-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ ffmpeg


def test_ffmpeg_filters_and_codecs_of_the_real_binary():
    exe = ffmpeg_exe()
    assert dc.check_ffmpeg(exe).status == "ok" and "ffmpeg version" in dc.check_ffmpeg(exe).detail
    assert dc.check_v360(exe).status == "ok"
    opus = dc.check_opus(exe)
    assert opus.status == "ok" and "libopus" in opus.detail and "encoder present" in opus.detail


def test_ffmpeg_checks_with_a_fake_binary(tmp_path):
    assert dc.check_ffmpeg(str(tmp_path / "nothing")).status == "missing"
    assert "$CCS_FFMPEG" in dc.check_ffmpeg(str(tmp_path / "nothing")).fix
    table = "Filters:\\n  T.. = Timeline support\\n  ------\\n .. scale  V->V  Scale.\\n .S v360x  V->V  Not it.\\n"
    codecs = "Codecs:\\n ------\\n A....D aac  AAC\\n A....D flac FLAC\\n"
    fake = script(tmp_path, "ffmpeg", f'case "$2" in -version) echo "ffmpeg version 4.0";; -filters) printf "{table}";;'
                                      f' *) printf "{codecs}";; esac')
    assert dc.ffmpeg_names(table.replace("\\n", "\n")) == {"scale", "v360x"}
    assert dc.check_ffmpeg(str(fake)).status == "ok"
    v360 = dc.check_v360(str(fake))
    assert v360.status == "missing" and "no v360 filter" in v360.detail
    opus = dc.check_opus(str(fake))
    assert opus.status == "missing" and "cannot decode opus" in opus.detail


# ------------------------------------------------------------------------------------------------ yt-dlp


def test_ytdlp_age():
    assert dc.ytdlp_release_date("2026.10.26.234015") == dt.date(2026, 10, 26)
    assert dc.ytdlp_age_check("2026.10.26", dt.date(2026, 11, 5)).status == "ok"
    old = dc.ytdlp_age_check("2025.01.15", dt.date(2026, 12, 1))
    assert old.status == "warn" and "685 days old" in old.detail and old.fix == "pip install -U yt-dlp"
    assert dc.ytdlp_age_check("nightly", dt.date(2026, 1, 1)).status == "warn"
    installed = dc.ytdlp_release_date(yt_dlp.version.__version__)
    assert dc.check_ytdlp(installed).status == "ok"


def test_js_runtime_follows_what_ytdlp_enables():
    # the doctor asks for the runtimes yt-dlp enables by default; the toolkit's options keep that default
    assert "js_runtimes" not in ytdlp_options(YtdlpConfig(), "best", "out.%(ext)s")
    with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
        assert tuple(ydl.params["js_runtimes"]) == dc.YTDLP_JS_RUNTIMES


def test_js_runtime_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # no JavaScript runtime anywhere
    none = dc.check_js_runtime()
    assert none.status == "missing" and "no deno on PATH" in none.detail and "install deno 2.3" in none.fix
    script(bin_dir, "node", "echo v22.1.0")
    only_node = dc.check_js_runtime()
    assert only_node.status == "missing" and "found node 22.1.0" in only_node.detail
    script(bin_dir, "deno", "echo 'deno 1.46.3 (stable, release, x86_64-unknown-linux-gnu)'")
    old = dc.check_js_runtime()
    assert old.status == "missing" and "1.46.3 is older" in old.detail
    script(bin_dir, "deno", "echo 'deno 2.5.6 (stable, release, x86_64-unknown-linux-gnu)'")
    ok = dc.check_js_runtime()
    assert ok.status == "ok" and ok.detail.startswith("deno 2.5.6")


# ------------------------------------------------------------------------------------------------ cookies

COOKIES = "# Netscape HTTP Cookie File\n\n{rows}\n"
ROW = ".youtube.com\tTRUE\t/\tTRUE\t{expires}\t{name}\tvalue"


def test_cookies_file(tmp_path):
    now = time.time()
    assert dc.check_cookies(None).status == "ok"
    good = tmp_path / "good.txt"
    good.write_text(COOKIES.format(rows="\n".join([ROW.format(expires=int(now) + 86400, name="SID"),
                                                   ROW.format(expires=int(now) - 86400, name="OLD"),
                                                   "#HttpOnly_" + ROW.format(expires=0, name="SESSION")])))
    ok = dc.check_cookies(good, now=now)
    assert ok.status == "ok" and "3 cookies, 3 for youtube.com (1 expired)" in ok.detail
    stale = tmp_path / "stale.txt"
    stale.write_text(COOKIES.format(rows=ROW.format(expires=int(now) - 1, name="SID")))
    assert dc.check_cookies(stale, now=now).status == "warn"
    as_json = tmp_path / "cookies.json"
    as_json.write_text('[{"domain": ".youtube.com", "name": "SID"}]')
    bad = dc.check_cookies(as_json, now=now)
    assert bad.status == "missing" and "not a Netscape cookies file" in bad.detail and "Netscape" in bad.fix
    assert dc.check_cookies(tmp_path / "absent.txt").status == "missing"


def test_cookies_file_without_read_permission(open_dir):
    cookies = open_dir / "cookies.txt"
    cookies.write_text(COOKIES.format(rows=ROW.format(expires=int(time.time()) + 86400, name="SID")))
    cookies.chmod(0)
    check = denied(dc.check_cookies, cookies)
    assert check.status == "missing" and "cannot be read" in check.detail and "chmod u+r" in check.fix


# ------------------------------------------------------------------------------------------------ torch, CUDA, weights


def test_torch_and_torchvision_pairing():
    assert dc.torch_pair_check("2.14.1+cu130", "0.29.1+cu130", "13.0").status == "ok"
    bad = dc.torch_pair_check("2.14.1", "0.28.0", None)
    assert bad.status == "missing" and "torchvision==0.29.*" in bad.fix and "CPU-only" in bad.detail
    assert dc.check_torch().status == "ok"  # the installed pair


def test_cuda_devices_and_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    none = dc.check_cuda()
    assert none.status == "missing" and "--preset cpu-small" in none.fix
    props = namedtuple("Props", "name total_memory")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props(f"GPU{i}", (80 + i) * 2**30))
    two = dc.check_cuda()
    assert two.status == "ok" and two.detail == "cuda:0 GPU0 80 GiB; cuda:1 GPU1 81 GiB"


def test_weights_missing_damaged_present(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    missing = dc.check_weights()
    assert missing.status == "missing" and missing.fix.startswith("ccs-data fetch-weights")
    good = make_resnet18_file(cache_dir())
    assert dc.check_weights().status == "ok"
    good.write_bytes(good.read_bytes()[:-1])
    damaged = dc.check_weights()
    assert damaged.status == "missing" and "damaged" in damaged.detail and "fetch-weights" in damaged.fix


# ------------------------------------------------------------------------------------------------ folders


def test_write_access(tmp_path, open_dir):
    assert dc.check_writable(tmp_path).detail.endswith(": writable")
    assert "will be created in" in dc.check_writable(tmp_path / "a" / "b").detail
    (tmp_path / "file").write_text("x")
    under_file = dc.check_writable(tmp_path / "file" / "data")
    assert under_file.status == "missing" and "is a file" in under_file.detail and "--root" in under_file.fix
    locked = open_dir / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    check = denied(dc.check_writable, locked / "data", "--out")
    assert check.status == "missing" and "cannot write" in check.detail and "--out" in check.fix
    assert not [p for p in tmp_path.rglob(".ccs-doctor-*")]  # the probe file is removed


def test_free_space_against_the_need(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    assert dc.check_disk(tmp_path, 1, "one byte").status == "ok"
    short = dc.check_disk(tmp_path / "new", free + 10 * dc.GB, "a dataset")
    assert short.status == "missing" and "a dataset" in short.detail and "larger disk" in short.fix


# ------------------------------------------------------------------------------------------------ targets, CLI


def test_targets_name_what_their_command_needs(tmp_path):
    options = TargetOptions(root=tmp_path / "data")
    music = resolve_target("fetch", "music-stereo", options)
    assert {"yt-dlp", "js-runtime", "cookies", "ffmpeg", "disk", "writable"} == set(music.needs)
    fair = resolve_target("fetch", "fair-play", options)
    assert "js-runtime" not in fair.needs and fair.disk_bytes == int(doctor.FOOTPRINT_GB["fair-play"][0] * dc.GB)
    assert {"v360", "opus"} <= set(resolve_target("prepare", "yt-music", options).needs)
    assert not {"v360", "opus"} & set(resolve_target("prepare", "music-stereo", options).needs)
    # what is on disk already counts against the need
    media = DatasetLayout(options.root, "fair-play").media_dir
    media.mkdir(parents=True)
    (media / "000001.mp4").write_bytes(b"\0" * 10**6)
    assert resolve_target("fetch", "fair-play", options).disk_bytes == fair.disk_bytes - 10**6
    paper = resolve_target("bench", "2", options)
    assert {"weights", "cuda", "torch"} <= set(paper.needs) and paper.extra[0].status == "missing"
    small = resolve_target("bench", "2", TargetOptions(root=options.root, preset="cpu-small"))
    assert not {"weights", "cuda"} & set(small.needs)
    with pytest.raises(InputError, match="unknown dataset"):
        resolve_target("fetch", "imagenet", options)
    with pytest.raises(InputError, match="known: bench, fetch, prepare"):
        resolve_target("train", "2", options)


def test_report_needed_checks_decide(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no deno: only YouTube fetches need it
    options = TargetOptions(root=tmp_path / "data")
    env = Environment(ffmpeg=ffmpeg_exe())
    usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(dc.shutil, "disk_usage", lambda p: usage(10**15, 0, 10**15))  # a disk big enough
    fair = run_checks(options, resolve_target("fetch", "fair-play", options), env)
    assert fair.ready and any(c.name == "js-runtime" and c.status == "missing" and not needed
                              for c, needed in fair.checks)
    music = run_checks(options, resolve_target("fetch", "music-stereo", options), env)
    assert [c.name for c in music.missing] == ["js-runtime"]
    lines = doctor.render(music)
    assert "MISSING  js-runtime" in "\n".join(lines) and "fix: install deno" in "\n".join(lines)
    assert lines[-1].startswith("1 needed piece(s) missing: js-runtime")


def test_cli_exit_status(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(URL_ENV, raising=False)
    root = tmp_path / "data"
    make_fake_dataset(root, n_clips=6, protocols={"5-split": 5}, frame_size=(24, 48))
    runner = CliRunner()
    res = runner.invoke(cli_main, ["doctor", "--for", "bench", "synthetic", "--root", str(root)])
    assert res.exit_code == 0, res.output  # cpu-small: no weights, no GPU; the shards are there
    assert "everything needed is here" in res.output and "ok       data" in res.output
    res = runner.invoke(cli_main, ["doctor", "--for", "bench", "2", "--root", str(root)])
    assert res.exit_code == 1 and "MISSING  weights" in res.output and "fix: ccs-data fetch-weights" in res.output
    make_resnet18_file(cache_dir())
    props = namedtuple("Props", "name total_memory")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props("H200", 141 * 2**30))
    res = runner.invoke(cli_main, ["doctor", "--for", "bench", "2", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert "cuda:0 H200 141 GiB" in res.output
    res = runner.invoke(cli_main, ["doctor", "--for", "bench", "3", "--root", str(root)])
    assert res.exit_code == 1 and "no shards of music-stereo" in res.output
    res = runner.invoke(cli_main, ["doctor", "--for", "fetch", "nowhere", "--root", str(root)])
    assert res.exit_code == 1 and res.output.startswith("ccs-data doctor: error: unknown dataset")
