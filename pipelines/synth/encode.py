"""Deterministic media encoding with the project's ffmpeg: same frames + samples -> same bytes.

Every encoder runs single-threaded with bit-exact flags and no metadata (no dates, no encoder version strings
from the muxer), so a world generated twice from one seed is byte-identical.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.ffmpeg import FFmpegError, ffmpeg_exe

CHANNEL_LAYOUTS = {1: "mono", 2: "stereo", 4: "4.0"}
BITEXACT_FLAGS = ["-flags:v", "+bitexact", "-flags:a", "+bitexact", "-fflags", "+bitexact", "-map_metadata", "-1"]


@dataclass(frozen=True)
class VideoFormat:
    width: int
    height: int
    fps: int
    filter: str | None = None  # e.g. "v360=input=e:output=eac:w=384:h=256" (EQR drawing -> EAC frames)
    crf: int = 26


@dataclass(frozen=True)
class AudioFormat:
    codec: str  # aac | opus
    sample_rate: int
    bitrate: str = "128k"


def encode_media(
    out_path: str | Path,
    container: str,
    frames: Iterable[bytes] | None,
    video: VideoFormat | None,
    samples: np.ndarray | None,
    audio: AudioFormat | None,
) -> None:
    """Encode raw rgb24 ``frames`` (h264) and interleaved int16 ``samples`` [T, C] into ``out_path``.

    ``container`` is ``mp4`` or ``matroska``. Either stream may be absent (a video without audio). The file
    appears only when ffmpeg succeeded (temporary name, then rename).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".enc-") as tmp:
        args = ["-y"]
        maps: list[str] = []
        n_inputs = 0
        if video is not None:
            args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{video.width}x{video.height}"]
            args += ["-framerate", str(video.fps), "-i", "pipe:0"]
            maps += ["-map", f"{n_inputs}:v:0"]
            n_inputs += 1
        if samples is not None and audio is not None:
            channels = samples.shape[1]
            raw = Path(tmp) / "audio.s16le"
            raw.write_bytes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
            args += ["-f", "s16le", "-ar", str(audio.sample_rate), "-ch_layout", CHANNEL_LAYOUTS[channels], "-i", str(raw)]
            maps += ["-map", f"{n_inputs}:a:0"]
            n_inputs += 1
        args += maps
        if video is not None:
            if video.filter:
                args += ["-vf", video.filter]
            args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(video.crf), "-pix_fmt", "yuv420p"]
            args += ["-g", str(2 * video.fps), "-threads", "1", "-filter_threads", "1"]
        if samples is not None and audio is not None:
            if audio.codec == "aac":
                # No perceptual noise substitution and no intensity stereo: both synthesise channel content
                # independently and would blur interaural cues (PNS alone leaves mean |L-R| ~ 3e-4 between
                # identical channels). With them off, identical channels decode ~1e-7 apart, as real uploads do.
                args += ["-c:a", "aac", "-b:a", audio.bitrate, "-aac_coder", "fast", "-aac_pns", "0", "-aac_is", "0"]
            elif audio.codec == "opus":
                args += ["-c:a", "libopus", "-b:a", audio.bitrate]
                if samples.shape[1] == 4:  # ambisonic channel mapping: decoders report "ambisonic 1", as YouTube's
                    args += ["-mapping_family", "2"]
            else:
                raise ValueError(f"unknown audio codec {audio.codec!r}")
        args += BITEXACT_FLAGS + ["-f", container, str(Path(tmp) / "out")]
        _run_with_frames(args, frames if video is not None else None)
        os.replace(Path(tmp) / "out", out_path)


def _run_with_frames(args: list[str], frames: Iterable[bytes] | None) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    if frames is None:
        proc = subprocess.run(cmd, capture_output=True, check=False)
        err, rc = proc.stderr, proc.returncode
    else:
        with tempfile.TemporaryFile() as errfile:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile)
            assert proc.stdin is not None
            try:
                for frame in frames:
                    proc.stdin.write(frame)
            except BrokenPipeError:
                pass  # ffmpeg died; its stderr says why
            finally:
                proc.stdin.close()
            rc = proc.wait()
            errfile.seek(0)
            err = errfile.read()
    if rc != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise FFmpegError(f"ffmpeg exited with {rc}: {' | '.join(tail)}")


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A 16-bit PCM WAV file of interleaved int16 ``samples`` [T, C] (the header carries no dates)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def truncate_file(path: str | Path, fraction: float) -> int:
    """Cut ``path`` to ``fraction`` of its bytes (an interrupted download); returns the new size."""
    path = Path(path)
    size = int(path.stat().st_size * fraction)
    with open(path, "r+b") as fh:
        fh.truncate(size)
    return size
