"""Every command with each bad input a user can give (issue 10): one line ``<command>: error: ...`` naming the input
and the reason, the exit status of its class (input 1, usage 2, network 3; ``pipelines.errors``), no traceback.

The cases are those b9cde7f answered with a raw traceback or a silent wrong result: files where folders go, an
output under a file, a full disk, hostile specs, an undecodable or short FLAC in a shard during training, a
``best.pt`` resumed as ``last.pt``, ``--resume`` without a run, the same run folder given another way or moved,
unreadable inputs and mismatched weights for ccs-infer, an unreachable server.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from benchmarks.cli import main as bench_main
from ccstereo.checkpoint import load_checkpoint, save_checkpoint
from ccstereo.cli import infer_command, train_command
from ccstereo.train.trainer import BEST_KEYS
from pipelines.cli import main as data_main
from pipelines.contract import DatasetLayout
from pipelines.errors import EXIT_INPUT, EXIT_NETWORK, EXIT_USAGE
from pipelines.shards import read_index, write_shard
from pipelines.synth.fakeshards import make_fake_dataset
from tests.helpers.media import make_video
from tests.pipelines.test_shard import (
    DATASET as SHARD_DATASET,
    jpegs as jpegs,  # a fixture
    make_prepared,
)

TRAIN = ["--dataset", "fair-play", "--protocol", "5-split", "--split", "1", "--preset", "cpu-small",
         "--resize", "36x72", "--crop", "32x64", "--batch-size", "2", "--samples-per-clip", "1", "--threads", "1",
         "--val-hop", "10080", "--no-progress"]


def one_error(result: Result, code: int, *needles: str) -> str:
    """The command failed with ``code`` and one error line holding every needle; no traceback anywhere."""
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = [ln for ln in result.output.splitlines() if "error:" in ln.lower()]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def invoke(command, args: list[str]) -> Result:
    return CliRunner().invoke(command, [str(a) for a in args])


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake")
    make_fake_dataset(root, n_clips=8, protocols={"5-split": 1}, frame_size=(36, 72), clips_per_shard=4)
    return root


@pytest.fixture(scope="module")
def trained(fake, tmp_path_factory) -> Path:
    """A tiny run of 4 steps stopped after 2 (``--stop-after``): its folder."""
    out = tmp_path_factory.mktemp("run") / "run"
    res = invoke(train_command, ["--root", fake, "--out", out, "--max-steps", "4", "--stop-after", "2", *TRAIN])
    assert res.exit_code == 0, res.output
    return out


# ------------------------------------------------------------------------------------------------ ccs-data


@pytest.mark.parametrize("command", ["status", "prepare", "shard", "verify"])
def test_a_file_given_as_the_data_root_is_a_usage_error(tmp_path, command):
    (tmp_path / "file").write_text("x")
    res = invoke(data_main, [command, "music-stereo", "--root", tmp_path / "file"])
    assert res.exit_code == EXIT_USAGE and "is a file" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("command, blocked, kind", [
    ("fetch", "f/music-stereo", "file"),
    ("fetch", "f/music-stereo/media", "file"),
    ("fetch", "f/music-stereo/ledger", "file"),
    ("prepare", "f/music-stereo/prepared", "file"),
    ("prepare", "f/music-stereo/clips.jsonl", "dir"),  # a folder where a file goes
    ("prepare", "f/music-stereo/ledger/prepare.jsonl", "dir"),
    ("shard", "f/yt-music/shards", "file"),
    ("shard", "f/yt-music/splits", "file"),
    ("shard", "f/yt-music/splits/official", "file"),
    ("shard", "f/yt-music/ledger", "file"),
    ("shard", "f/yt-music/ledger/shard.lock", "dir"),
    ("shard", "f/yt-music/shards/yt-music-000000.tar", "dir"),
])
def test_a_file_where_a_folder_goes_is_one_line(tmp_path, jpegs, command, blocked, kind):  # noqa: F811
    """b9cde7f: NotADirectoryError / FileExistsError / IsADirectoryError tracebacks from the root down."""
    root = tmp_path / "f"
    if command == "shard":
        make_prepared(root, jpegs)
    if command == "prepare":  # a fetch that got nothing: prepare runs as far as its own folders
        (root / "music-stereo/ledger").mkdir(parents=True)
        (root / "music-stereo/ledger/fetch.jsonl").write_text("")
    target = tmp_path / blocked
    if target.is_dir():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dir":
        target.mkdir()
    else:
        target.write_text("in the way")
    dataset = SHARD_DATASET if command == "shard" else "music-stereo"
    args = [command, dataset, "--root", root] + (["--no-progress"] if command == "fetch" else [])
    one_error(invoke(data_main, args), EXIT_INPUT, f"ccs-data {command}: error:")


def test_disk_full_while_sharding_is_one_line_and_leaves_no_temporary_file(tmp_path, jpegs, monkeypatch):  # noqa: F811
    make_prepared(tmp_path, jpegs)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pipelines.io.os.fsync", full)
    one_error(invoke(data_main, ["shard", SHARD_DATASET, "--root", tmp_path]), EXIT_INPUT,
              "no space left on the device")
    assert not list(tmp_path.rglob("*.tmp")) and not list((tmp_path / SHARD_DATASET / "shards").glob("*.tar"))


def _spec(tmp_path: Path, old: str, new: str, dataset: str = "fair-play") -> Path:
    text = (Path("manifests") / f"{dataset}.toml").read_text()
    assert old in text
    path = tmp_path / f"{dataset}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, needle", [
    ('pattern = "splits/split{split}/{part}.h5"', 'pattern = "splits/split{split}/{0}{part}.h5"', "no other field"),
    ('path = "new_splits/split1/train.txt"', 'path = "new_splits/split1/tr\\u0000ain.txt"', "NUL"),
    ('path = "new_splits/split1/train.txt"', f'path = "new_splits/{"s" * 300}.txt"', "too long"),
    ('name = "5-split"', 'name = "../../../ESCAPED"', "folder name"),
    ('audio = "stereo"', 'audio = "stereo"\naudio_kind = "x"', "'audio_kind' is not a key"),
])
def test_hostile_specs_are_one_line_in_every_command_that_reads_one(tmp_path, old, new, needle):
    spec = _spec(tmp_path, old, new)
    for command in ("fetch", "prepare"):
        one_error(invoke(data_main, [command, "fair-play", "--root", tmp_path / "data", "--spec", spec]),
                  EXIT_INPUT, f"ccs-data {command}: error:", str(spec), needle)


def test_an_unreachable_list_server_is_a_network_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    text = (Path("manifests") / "music-stereo.toml").read_text().replace("https://raw.githubusercontent.com",
                                                                         f"http://127.0.0.1:{port}")
    spec = tmp_path / "music-stereo.toml"
    spec.write_text(text)
    one_error(invoke(data_main, ["fetch", "music-stereo", "--root", tmp_path / "data", "--spec", spec,
                                 "--no-progress"]), EXIT_NETWORK, "cannot download", f"127.0.0.1:{port}")


# ------------------------------------------------------------------------------------------------ ccs-train


def _copy_dataset(fake: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(fake, root)
    return root


def _replace_audio(root: Path, transform) -> None:
    """Rewrite every shard of the fake dataset with ``transform(flac bytes)`` for each audio member."""
    for shard in DatasetLayout(root, "fair-play").shards():
        with open(shard, "rb") as fh:
            members = []
            for e in read_index(shard).entries:
                fh.seek(e.offset)
                members.append((e.name, fh.read(e.size)))
        with write_shard(shard) as writer:
            for name, data in members:
                writer.add(name, transform(data) if name.endswith(".audio.flac") else data)


def _short_flac(data: bytes) -> bytes:
    import io

    import soundfile as sf

    audio, sr = sf.read(io.BytesIO(data), dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, audio[: sr // 10], sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("damage, needle", [
    (lambda data: b"fLaX" + data[4:], "audio.flac does not decode"),  # one flipped bit in the FLAC signature
    (_short_flac, "audio.flac"),  # a FLAC of 0.1 s: the segment lies past its end
])
def test_an_undecodable_or_short_flac_names_the_shard_and_the_key(fake, tmp_path, workers, damage, needle):
    """b9cde7f: a flipped byte in a FLAC member killed training at a random step with a traceback naming neither
    the shard nor the key."""
    root = _copy_dataset(fake, tmp_path)
    _replace_audio(root, damage)
    res = invoke(train_command, ["--root", root, "--out", tmp_path / "run", "--max-steps", "2",
                                 "--num-workers", str(workers), *TRAIN])
    line = one_error(res, EXIT_INPUT, "ccs-train: error:", "fair-play-00000", ": clip 0000", needle)
    assert "Original Traceback" not in line


def test_resume_needs_a_run_and_only_a_last_pt_resumes(trained, fake, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(trained, out)
    one_error(invoke(train_command, ["--root", fake, "--out", tmp_path / "none", "--max-steps", "4", "--resume",
                                     *TRAIN]), EXIT_INPUT, "holds no last.pt")  # b9cde7f started over silently
    last = load_checkpoint(out / "last.pt")
    save_checkpoint(out / "last.pt", {k: last[k] for k in BEST_KEYS})  # what a best.pt holds, as last.pt
    one_error(invoke(train_command, ["--root", fake, "--out", out, "--max-steps", "4", "--resume", *TRAIN]),
              EXIT_INPUT, "last.pt: not a checkpoint a run can resume from", "best.pt")  # b9cde7f: KeyError


def test_resume_takes_the_run_folder_however_it_is_named_or_wherever_it_moved(trained, fake, tmp_path, monkeypatch):
    """b9cde7f compared --root and --out as strings: ./runs/x, its absolute path or a moved folder were refused."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(trained, tmp_path / "runs/x")
    (tmp_path / "data").symlink_to(fake)
    relative = ["--root", "./data", "--out", "./runs/x"]
    # the copied run recorded its own --out and the fixture's --root; given here in other words
    res = invoke(train_command, [*relative, "--max-steps", "4", "--stop-after", "3", "--resume", *TRAIN])
    assert res.exit_code == 0, res.output
    shutil.move(tmp_path / "runs/x", tmp_path / "moved")
    res = invoke(train_command, ["--root", fake, "--out", tmp_path / "moved", "--max-steps", "4", "--resume", *TRAIN])
    assert res.exit_code == 0, res.output
    assert torch.load(tmp_path / "moved/last.pt", weights_only=True)["step"] == 4
    one_error(invoke(train_command, ["--root", fake, "--out", tmp_path / "moved", "--max-steps", "4", "--resume",
                                     *TRAIN[:-1], "--seed", "7", "--no-progress"]), EXIT_INPUT, "seed")


def test_run_folder_problems_are_one_line(trained, fake, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    one_error(invoke(train_command, ["--root", fake, "--out", tmp_path / "file/run", "--max-steps", "1", *TRAIN]),
              EXIT_INPUT, "ccs-train: error:", "file")
    (tmp_path / "run2/metadata.json").mkdir(parents=True)  # a folder where the run writes a file
    one_error(invoke(train_command, ["--root", fake, "--out", tmp_path / "run2", "--max-steps", "1", *TRAIN]),
              EXIT_INPUT, "metadata.json")
    # a killed run's temporary files are removed when the run folder is opened again
    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    for stale in (".last.pt.abcd1234.tmp", ".log.jsonl.wxyz5678.tmp"):
        (out / stale).write_bytes(b"half a checkpoint")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    res = invoke(train_command, ["--root", fake, "--out", out, "--max-steps", "4", "--stop-after", "3", "--resume",
                                 *TRAIN])
    assert res.exit_code == 0 and not list(out.glob("*.tmp")), res.output
    monkeypatch.setattr("pipelines.io.os.fsync", full)  # the disk fills while a checkpoint is written
    one_error(invoke(train_command, ["--root", fake, "--out", out, "--max-steps", "4", "--resume", *TRAIN]),
              EXIT_INPUT, "no space left on the device")
    assert not list(out.glob("*.tmp"))
    monkeypatch.undo()
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3  # the last complete checkpoint is intact


# ------------------------------------------------------------------------------------------------ ccs-infer


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    make_video(path, seconds=1.0)
    return path


def test_infer_inputs_a_user_can_give_are_one_line(trained, video, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(os.urandom(5000))
    (tmp_path / "file").write_text("x")
    ckpt = trained / "last.pt"
    for bad in ("empty.mp4", "noise.mp4"):
        one_error(invoke(infer_command, [tmp_path / bad, "-c", ckpt, "-o", tmp_path / "out.wav"]), EXIT_INPUT,
                  "ccs-infer: error:", bad)
    one_error(invoke(infer_command, [video, "-c", ckpt, "-o", tmp_path / "file/out.wav"]), EXIT_INPUT,
              "ccs-infer: error:", "file")
    one_error(invoke(infer_command, [video, "-c", tmp_path / "noise.mp4", "-o", tmp_path / "o.wav"]), EXIT_INPUT,
              "noise.mp4")
    state = torch.load(ckpt, weights_only=True)
    state["model_config"] = {**state["model_config"], "aspp_hidden": state["model_config"]["aspp_hidden"] * 2}
    torch.save(state, tmp_path / "other.pt")
    one_error(invoke(infer_command, [video, "-c", tmp_path / "other.pt", "-o", tmp_path / "o.wav"]), EXIT_INPUT,
              "other.pt", "do not match")
    res = invoke(infer_command, [video, "-c", ckpt, "-o", tmp_path])  # a folder as the output: click's check
    assert res.exit_code == EXIT_USAGE and "Traceback" not in res.output
    assert not list(tmp_path.rglob("*.tmp"))


# ------------------------------------------------------------------------------------------------ ccs-bench


def test_bench_inputs_are_one_line(tmp_path, fake):
    (tmp_path / "file").write_text("x")
    one_error(invoke(bench_main, ["report", tmp_path]), EXIT_INPUT, "ccs-bench report: error:")
    res = invoke(bench_main, ["run", "--table", "2", "--root", tmp_path / "file", "--out", tmp_path / "o"])
    assert res.exit_code == EXIT_USAGE and "is a file" in res.output
    one_error(invoke(bench_main, ["run", "--table", "2", "--root", fake, "--out", tmp_path / "file/o",
                                  "--checkpoints", f"CCStereo={tmp_path / 'nope.pt'}", "--splits", "1"]),
              EXIT_INPUT, "ccs-bench run: error:")
    summary = tmp_path / "rep" / "summary.json"
    summary.parent.mkdir()
    summary.write_text(json.dumps({"broken": True}))
    one_error(invoke(bench_main, ["report", summary.parent]), EXIT_INPUT, "ccs-bench report: error:")


# ------------------------------------------------------------------------------------------------ Ctrl-C
# Real processes sent SIGINT to their process group (what Ctrl-C in a terminal does) at a moment the test can see
# (a file or a child process appeared), not after a guessed delay. ccs-data fetch/prepare/shard and ccs-train are
# interrupted at seeded random moments and rerun by the fault campaign (tests/benchmarks/test_faults.py).

INTERRUPTED_LINE = "error: interrupted; what is on disk is consistent: rerun the same command to resume"


def _interrupt_when(cmd: list[str], ready, cwd: Path, timeout: float = 180.0) -> tuple[int, str]:
    """Start ``cmd`` in its own process group, send the group SIGINT once ``ready(pid)`` holds; (status, stderr)."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", *cmd], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=env)
    deadline = time.monotonic() + timeout
    while not ready(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"{cmd} ended before the moment to interrupt it: {proc.stderr.read()[-500:]}"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _has_child(pid: int) -> bool:
    """A child process of ``pid`` runs (ccs-infer's ffmpeg decoding the video)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == pid:
            return True
    return False


def _one_interrupted_line(code: int, err: str, command: str) -> None:
    assert code == 130 and "Traceback" not in err, (code, err)
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and lines[0].endswith(f"{command}: {INTERRUPTED_LINE}"), err


def test_ctrl_c_while_a_command_is_imported_is_one_line(tmp_path):
    """A command's modules import for seconds (torch); a SIGINT then was a traceback of the import and status -2."""
    (tmp_path / "slow_cli.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                                          "time.sleep(5)\ndef main():\n    raise SystemExit(0)\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from pipelines.entry import launch; launch('slow_cli:main', 'ccs-x')"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])})
    _one_interrupted_line(proc.returncode, proc.stderr, "ccs-x")


def _loads_torch(pid: int) -> bool:
    """``pid`` is inside ``import torch`` (its shared library is mapped; the Python part takes a while longer)."""
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_while_torchrun_s_module_is_imported_is_one_line(tmp_path):
    """``python -m ccstereo.train`` (what torchrun starts) imports the package before its ``__main__``; the package
    imported the trainer, so a SIGINT during torch's import was a traceback of the import."""
    code, err = _interrupt_when(["import runpy; runpy.run_module('ccstereo.train', run_name='__main__')", "--help"],
                                _loads_torch, tmp_path)
    _one_interrupted_line(code, err, "ccs-train")


def test_ctrl_c_while_the_command_line_is_parsed_is_one_line(tmp_path):
    """click turns a KeyboardInterrupt during parsing (an option's callback) into ``Aborted!`` and status 1."""
    import click

    from pipelines.errors import StyledGroup

    def stop(ctx, param, value):
        if value:
            raise KeyboardInterrupt

    @click.group(name="tool", cls=StyledGroup)
    def tool() -> None:
        pass

    @tool.command("go")
    @click.option("--stop", is_flag=True, callback=stop)
    def go(stop: bool) -> None:
        pass

    res = CliRunner().invoke(tool, ["go", "--stop"])
    assert res.exit_code == 130 and res.output == f"tool go: {INTERRUPTED_LINE}\n", res.output


def test_ctrl_c_during_inference_is_one_line_and_writes_no_output(trained, tmp_path):
    video = tmp_path / "long.mp4"
    make_video(video, seconds=30.0)
    out = tmp_path / "out.wav"
    code, err = _interrupt_when(["from ccstereo.entry import ccs_infer; ccs_infer()", str(video), "-c",
                                 str(trained / "last.pt"), "-o", str(out)], _has_child, tmp_path)
    _one_interrupted_line(code, err, "ccs-infer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]  # neither the output nor a temporary file


def test_ctrl_c_during_a_bench_run_is_one_line_and_the_rerun_finishes(fake, tmp_path):
    out = tmp_path / "bench"
    args = ["run", "--table", "2", "--root", str(fake), "--out", str(out), "--splits", "1", "--methods", "CCStereo",
            "--preset", "cpu-small", "--max-steps", "20", "--train-batch-size", "2"]
    log = out / "table-2/runs/fair-play-5-split-1/ccstereo/log.jsonl"
    code, err = _interrupt_when(["from benchmarks.entry import ccs_bench; ccs_bench()", *args],
                                lambda pid: log.is_file(), tmp_path)  # training has begun
    _one_interrupted_line(code, err, "ccs-bench run")
    assert not list(out.rglob("*.tmp")) and not (out / "table-2/summary.json").exists()
    res = invoke(bench_main, args)
    assert res.exit_code == 0 and (out / "table-2/summary.json").is_file(), res.output


def test_a_kill_right_after_a_checkpoint_write_loses_no_log_record_and_no_best_pt(fake, tmp_path, monkeypatch):
    """Fault campaign (train, SIGINT): the step's log record was written after its checkpoint, so a kill between
    the two lost it for good (the resumed run cuts the log back to the checkpoint's step); and last.pt was written
    before best.pt, so a kill between those left a last.pt naming a best step whose best.pt was never written."""
    from benchmarks.faults import run_state_digest
    from ccstereo.train import trainer

    args = ["--root", fake, "--max-steps", "6", "--val-every-epochs", "1", *TRAIN]
    assert invoke(train_command, ["--out", tmp_path / "whole", *args]).exit_code == 0
    real, calls = trainer.save_checkpoint, []

    def killed_after_the_first_write(path, payload):
        real(path, payload)
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt  # what Ctrl-C (or SIGKILL) right after this file was renamed into place does

    monkeypatch.setattr(trainer, "save_checkpoint", killed_after_the_first_write)
    out = tmp_path / "killed"
    one_error(invoke(train_command, ["--out", out, *args]), 130, "ccs-train: error: interrupted")
    monkeypatch.undo()
    resume = ["--resume"] if (out / "last.pt").is_file() else []
    assert invoke(train_command, ["--out", out, *args, *resume]).exit_code == 0
    assert run_state_digest(out) == run_state_digest(tmp_path / "whole")


def test_ctrl_c_after_the_command_finished_changes_nothing(tmp_path):
    """Fault campaign (fetch --jobs 2, SIGINT near the end): a Ctrl-C during the interpreter's shutdown, after the
    command had done its work, ended the process with SIGINT or a traceback of the atexit handler and no line."""
    (tmp_path / "done_cli.py").write_text(
        "import atexit, os, signal, time\n"
        "def late_ctrl_c():\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(0.2)\n"
        "atexit.register(late_ctrl_c)\n"
        "def main():\n    print('done')\n    raise SystemExit(0)\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from pipelines.entry import launch; launch('done_cli:main', 'ccs-x')"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "done\n", "")
