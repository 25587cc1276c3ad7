"""Real-world media formats made with ffmpeg for the format tests: every frame shows its own index (two flat grey
fields, so any codec keeps it readable), so a test can tell which source frame a decoded frame is and check the
timing rule of SPEC section 2 (frame k of a clip is the picture on screen at start + k/10)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from pipelines.ffmpeg import run_ffmpeg

STEP = 10  # grey levels between codes: a decoded field may be off by up to 4 and still read right
# frame i: left half grey 5 + 10 (i % 25), right half 5 + 10 (i // 25)


def read_code(low: float, high: float) -> int:
    """The frame index from the mean grey of the low-digit and the high-digit fields."""
    return int(round((low - 5) / STEP)) + 25 * int(round((high - 5) / STEP))


def field_means(frame: np.ndarray, vertical: bool = False) -> tuple[float, float]:
    """Mean grey of the two fields' centres: left and right halves, or (``vertical``) bottom and top halves."""
    h, w = frame.shape[:2]
    f = frame.astype(np.float64).mean(axis=2)
    if vertical:
        return float(f[h // 2 + h // 8 : h - h // 8, w // 8 : -w // 8].mean()), float(f[h // 8 : h // 2 - h // 8,
                                                                                         w // 8 : -w // 8].mean())
    return float(f[h // 8 : -h // 8, w // 8 : w // 2 - w // 8].mean()), float(f[h // 8 : -h // 8,
                                                                                w // 2 + w // 8 : -w // 8].mean())


def stereo_noise(seconds: float, rate: int, seed: int, burst_at: float | None = None) -> np.ndarray:
    """[T, 2] noise with a level difference between the channels (clearly binaural); with ``burst_at``, quiet
    noise and one loud burst starting at that time (to locate the audio on the timeline)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    x = rng.standard_normal((n, 2)) * np.array([0.12, 0.05])
    if burst_at is not None:
        x *= 0.02
        b = int(round(burst_at * rate))
        x[b : b + rate // 20] = rng.standard_normal((rate // 20, 2)) * 0.5
    return x


@dataclass
class FormatCase:
    """One media file to make: container and codecs, frame rate (halved after ``slow_after_s`` for a variable
    rate), audio rate and offset, display rotation."""

    video_id: str  # 11 characters, a valid YouTube id
    ext: str
    size: tuple[int, int]
    rate: Fraction
    seconds: float
    audio_rate: int
    vcodec: list[str]
    acodec: list[str]
    slow_after_s: float | None = None  # variable frame rate: from this time on, frames come at rate / 2
    audio_offset_s: float = 0.0  # audio starts this late on the file's timeline
    rotation: int = 0  # display matrix rotation (counter-clockwise degrees), as phones write
    burst_at: float | None = None  # audio-time of a loud burst

    @property
    def frame_times(self) -> list[float]:
        """Presentation time of source frame i (seconds)."""
        times, i = [], 0
        while True:
            t = self._time(i)
            if t >= self.seconds - 1e-9:
                return times
            times.append(t)
            i += 1

    def _time(self, i: int) -> float:
        rate = Fraction(self.rate)
        if self.slow_after_s is None or i < self.slow_after_s * rate:
            return float(i / rate)
        k = int(self.slow_after_s * rate)
        return float(Fraction(k) / rate + (i - k) * 2 / rate)

    def frame_on_screen(self, t: float) -> int:
        """The source frame shown at time ``t``: the last one whose time is not after ``t``."""
        return max(int(np.searchsorted(np.asarray(self.frame_times), t + 1e-6, side="right")) - 1, 0)


def make_case(case: FormatCase, out_dir: Path) -> Path:
    """Encode ``case`` into ``out_dir/<id>.<ext>``: the code frames drawn by ffmpeg's ``geq`` from the frame
    number (timestamps from the source rate, or a ``setpts`` expression for the variable rate), the audio from a
    wav delayed by ``-itsoffset``."""
    out = out_dir / f"{case.video_id}.{case.ext}"
    w, h = case.size
    rate = Fraction(case.rate)
    lum = f"if(lt(X,{w // 2}),5+{STEP}*mod(N,25),5+{STEP}*floor(N/25))"
    chain = f"color=c=black:s={w}x{h}:r={rate.numerator}/{rate.denominator},format=gray,geq=lum='{lum}'"
    if case.slow_after_s is not None:
        k = int(case.slow_after_s * rate)
        chain += f",setpts='if(lt(N,{k}),N,{k}+2*(N-{k}))/({rate.numerator}/{rate.denominator})/TB'"
    chain += f",trim=end={case.seconds},format=yuv420p"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = tmp / "a.wav"
        sf.write(wav, stereo_noise(case.seconds, case.audio_rate, seed=w, burst_at=case.burst_at),
                 case.audio_rate, subtype="FLOAT")
        args = ["-y", "-f", "lavfi", "-i", chain, "-itsoffset", f"{case.audio_offset_s}", "-i", str(wav),
                "-map", "0:v", "-map", "1:a", *case.vcodec, *case.acodec]
        if case.slow_after_s is not None:  # keep the uneven timestamps (a constant rate needs no option)
            args[-len(case.vcodec) - len(case.acodec):-len(case.vcodec) - len(case.acodec)] = ["-fps_mode", "vfr"]
        if case.rotation:  # the display matrix is an input option: set it when remuxing
            plain = tmp / f"plain.{case.ext}"
            run_ffmpeg([*args, str(plain)])
            run_ffmpeg(["-y", "-display_rotation", str(case.rotation), "-i", str(plain), "-c", "copy", str(out)])
        else:
            run_ffmpeg([*args, str(out)])
    return out
