"""Small real video files made with ffmpeg's test sources, for the tests that decode media."""

from __future__ import annotations

from pathlib import Path

from pipelines.ffmpeg import run_ffmpeg


def make_video(path: str | Path, seconds: float = 2.0, stereo: bool = True) -> None:
    """An H.264 + AAC file: a 25 fps 320x180 test picture; a 440 Hz tone and pink noise, as L and R (``stereo``)
    or mixed to one channel."""
    audio = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
             "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.2:sample_rate=44100:duration={seconds}"]
    graph = "[1:a][2:a]amerge=inputs=2[a]" if stereo else "[1:a][2:a]amix=inputs=2[a]"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc=size=320x180:rate=25:duration={seconds}", *audio,
                "-filter_complex", graph, "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-shortest", str(path)])
