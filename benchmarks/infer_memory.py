"""Peak memory of ``ccs-infer`` against the video's length: the streaming path (``infer_file``) on videos of several
lengths, and as the baseline, measured in the same run, the in-memory path (all audio and frames decoded first, as
ccs-infer did before it streamed) on the shorter ones.

    ccs-bench speed infer-memory --seconds 10,120,1200 --preset paper --hop 10080

Each measurement runs in a fresh Python process (so its peak RSS is its own) with one torch thread; the videos are
640x360 25 fps H.264 with 44.1 kHz stereo AAC, made once with ffmpeg's test sources. The model has random weights
(memory does not depend on them). Prints one JSON object: the peak RSS of a process that only imports
``ccstereo.infer`` (torch's libraries alone are most of it), then per length the peak RSS and the peak private
(anonymous) RSS of the process (MB), the wall time and the windows run. The ffmpeg decoders are separate processes
and not counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ccstereo.checkpoint import save_checkpoint
from ccstereo.config import preset as train_preset
from ccstereo.model import build_model
from pipelines.ffmpeg import run_ffmpeg

# Runs in the child process: argv = mode (stream | memory | imports), video, checkpoint, out, hop, batch. Prints the
# peak RSS (ru_maxrss: shared-library pages included) and the peak anonymous (private) RSS, sampled every 20 ms.
_CHILD = """
import json, resource, sys, threading, time
import numpy as np, torch
torch.set_num_threads(1)
from ccstereo import infer

def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0

peak_anon, done = [anon_mb()], threading.Event()
def sample():
    while not done.wait(0.02):
        peak_anon.append(anon_mb())
threading.Thread(target=sample, daemon=True).start()
mode, video, ckpt, out, hop, batch = sys.argv[1:7]
hop, batch = int(hop), int(batch)
t0 = time.perf_counter()
windows = samples = 0
if mode == "stream":
    res = infer.infer_file(video, ckpt, out, hop=hop, batch_size=batch)
    windows, samples = res.n_windows, res.n_samples
elif mode == "memory":  # the in-memory baseline: everything decoded first
    from pipelines.media import decode_audio, iter_frames
    stereo = decode_audio(video, in_channels=2, out_channels=2)
    frames = np.stack(list(iter_frames(video)))
    model = infer.load_model(ckpt, "cpu")
    audio = infer.binauralize(stereo[0] + stereo[1], frames, model, model.cfg, hop=hop, batch_size=batch)
    windows, samples = len(infer.window_starts(audio.shape[1], hop)), audio.shape[1]
done.set()
peak_anon.append(anon_mb())
print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "peak_anon_mb": round(max(peak_anon), 1), "wall_s": round(time.perf_counter() - t0, 1),
                  "windows": windows, "samples": samples}))
"""


def make_test_video(path: Path, seconds: float) -> Path:
    """A 640x360 25 fps H.264 + 44.1 kHz stereo AAC file of ``seconds`` (kept if it already exists)."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.2:sample_rate=44100:duration={seconds}",
                    "-filter_complex", "[1:a]pan=stereo|c0=c0|c1=0.6*c0[a]", "-map", "0:v", "-map", "[a]",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "96k", "-threads", "2", str(tmp)])
        tmp.rename(path)
    return path


def _run_child(mode: str, video: Path, ckpt: Path, out: Path, hop: int, batch: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(video), str(ckpt), str(out), str(hop),
                           str(batch)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run on {video.name} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_infer_memory(seconds: list[float], *, preset_name: str = "paper", hop: int = 10_080,
                         batch_size: int = 32, baseline_max_s: float = 120.0,
                         work: Path | None = None) -> dict[str, Any]:
    """Peak RSS of the streaming path per length in ``seconds``, and of the in-memory baseline for the lengths
    up to ``baseline_max_s``. Videos and the checkpoint go to ``work`` (kept; a temporary folder when None)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(work) if work is not None else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        cfg = train_preset(preset_name, {"arch": "ccstereo", "visual_init": "random"}).model
        ckpt = base / f"{preset_name}-random.pt"
        save_checkpoint(ckpt, {"model_config": cfg.to_dict(), "model": build_model(cfg).state_dict()})
        imports = _run_child("imports", base, ckpt, base / "out.wav", hop, batch_size)
        rows = []
        for s in seconds:
            video = make_test_video(base / f"test-{int(s)}s.mp4", s)
            t0 = time.perf_counter()
            row: dict[str, Any] = {"seconds": s, "stream": _run_child("stream", video, ckpt, base / "out.wav", hop,
                                                                     batch_size)}
            if s <= baseline_max_s:
                row["in_memory"] = _run_child("memory", video, ckpt, base / "out.wav", hop, batch_size)
            row["total_s"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
    peaks = [r["stream"]["peak_rss_mb"] for r in rows]
    return {"preset": preset_name, "hop": hop, "batch_size": batch_size, "torch_threads": 1,
            "imports_only": imports, "runs": rows,
            "stream_peak_spread": round(max(peaks) / min(peaks) - 1, 3)}
