"""Decoding media through ffmpeg's stdout: 16 kHz float32 audio (stereo or ambiX FOA) and 10 fps RGB frames.

The filter graphs and argument lists are built with ffmpeg-python; the process is run here (``run_ffmpeg``, or a
pipe for the frame stream).

Nothing but ffmpeg's messages is written to disk here: audio comes back as one array (:func:`decode_audio`) or a
stream of chunks (:func:`iter_audio`), frames as a stream of [H, W, 3] uint8 arrays read from a raw ``rgb24`` pipe
(:func:`iter_frames`), so a long video never needs temporary image files or all its frames in memory.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import ffmpeg
import numpy as np

from pipelines.contract import FPS, FRAME_HEIGHT, FRAME_WIDTH, SAMPLE_RATE
from pipelines.ffmpeg import FFmpegError, ffmpeg_exe, run_ffmpeg

PROJECTIONS = ("flat", "ER", "EAC")  # ordinary video, equirectangular 360, YouTube equi-angular cubemap 3x2


class MediaError(RuntimeError):
    """A media file cannot be decoded as asked; the message names the file and the reason."""


def _input(path: str | Path, threads: int | None = None, **options) -> ffmpeg.nodes.FilterableStream:
    """An input node for ``path`` (``threads``: decoder threads; ffmpeg's choice when None)."""
    return ffmpeg.input(str(path), **({"threads": threads} if threads else {}), **options)


def _args(output: ffmpeg.nodes.OutputStream) -> list[str]:
    """ffmpeg's argument list for an ffmpeg-python output node, without the program name."""
    return output.compile(cmd="ffmpeg")[1:]


# (channels in, channels out) -> (channelmap, layout): see audio_filter
_CHANNEL_MAPS = {
    (4, 4): ("0|1|2|3", "4.0"),
    (3, 4): ("0|1|2", "3.0"),
    (2, 2): ("0|1", "stereo"),
    (1, 1): ("0", "mono"),  # ccs-infer accepts mono videos
}


def audio_filter(stream: ffmpeg.nodes.FilterableStream, in_channels: int, out_channels: int,
                 sample_rate: int = SAMPLE_RATE) -> ffmpeg.nodes.FilterableStream:
    """``stream`` (``in_channels``) turned into ``out_channels`` at ``sample_rate``.

    4-channel ambisonic streams (opus) carry ffmpeg's 'ambisonic 1' layout, which its resampler refuses; an explicit
    channelmap to the plain 4.0 layout first keeps the channel order (ACN W, Y, Z, X) and makes resampling legal.
    A 3-channel horizontal-only stream (ACN 0, 1, 3 = W, Y, X) is mapped the same way; the silent Z is inserted
    after decoding (:func:`decode_audio`). ``first_pts=0`` puts the first output sample at t = 0 of the file's
    timeline, as the frames are (:class:`FrameSpec`): audio that starts after the video is preceded by silence,
    samples before t = 0 (encoder delay) are dropped, so sound and picture stay in step.
    """
    mapping = _CHANNEL_MAPS.get((in_channels, out_channels))
    if mapping is None:
        raise MediaError(f"cannot decode {in_channels} channels as {out_channels}")
    stream = stream.filter("channelmap", map=mapping[0], channel_layout=mapping[1])
    return stream.filter("aresample", sample_rate, first_pts=0, **({"resampler": "soxr"} if _has_soxr() else {}))


_SOXR: bool | None = None


def _has_soxr() -> bool:
    """Whether this ffmpeg build has the soxr resampler (better quality than swr's default; same on every run)."""
    global _SOXR
    if _SOXR is None:
        silence = ffmpeg.input("anullsrc=r=48000:cl=mono", f="lavfi").filter("aresample", 16000, resampler="soxr")
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *_args(silence.output("-", f="null", t=0.01))],
                              capture_output=True, timeout=30, check=False)
        _SOXR = proc.returncode == 0
    return _SOXR


def decode_audio(
    path: str | Path,
    *,
    in_channels: int,
    out_channels: int,
    sample_rate: int = SAMPLE_RATE,
    threads: int | None = None,
) -> np.ndarray:
    """The first audio stream of ``path`` as float32 [out_channels, T] at ``sample_rate``.

    ``in_channels`` is what the probe reported: 2 -> stereo; 4 -> ambiX (W, Y, Z, X); 3 -> horizontal ambiX
    (W, Y, X), returned as 4 channels with a silent Z. Raises :class:`MediaError` naming the file.
    """
    path = Path(path)
    audio = audio_filter(_input(path, threads)["a:0"], in_channels, out_channels if in_channels != 3 else 4,
                         sample_rate)
    n_out = 3 if in_channels == 3 else out_channels
    # no -ac: the channelmap already fixed the layout, and -ac would remix it (3.0 -> 2.1 folds a channel away)
    try:
        raw = run_ffmpeg(_args(audio.output("pipe:1", format="f32le", acodec="pcm_f32le")))
    except FFmpegError as exc:
        raise MediaError(f"{path}: audio cannot be decoded ({exc})") from None
    audio = np.frombuffer(raw, dtype="<f4")
    if audio.size % n_out:
        raise MediaError(f"{path}: decoded audio is not a whole number of {n_out}-channel frames")
    audio = audio.reshape(-1, n_out).T
    if in_channels == 3:  # W, Y, X -> W, Y, Z=0, X
        audio = np.stack([audio[0], audio[1], np.zeros_like(audio[0]), audio[2]])
    return np.ascontiguousarray(audio, dtype=np.float32)


@dataclass(frozen=True)
class FrameSpec:
    """How the frames of one video become 480x240 equirectangular (or plain) RGB frames at 10 fps."""

    projection: str = "flat"  # flat | ER | EAC
    top_bottom_stereo: bool = False  # stereoscopic video stacked top/bottom: keep the top (left-eye) half
    fps: int = FPS
    width: int = FRAME_WIDTH
    height: int = FRAME_HEIGHT

    def apply(self, stream: ffmpeg.nodes.FilterableStream) -> ffmpeg.nodes.FilterableStream:
        """The video filters: frame-rate first (so the projection maths runs on 10 frames a second only)."""
        if self.projection not in PROJECTIONS:
            raise ValueError(f"unknown projection {self.projection!r} (known: {', '.join(PROJECTIONS)})")
        # Output frame k must be the picture on screen at time k/fps (frame k covers [k/fps, (k+1)/fps), SPEC
        # section 2). round=up maps every input frame with pts in ((k-1)/fps, k/fps] to tick k and keeps the last
        # of them, i.e. the one on screen at k/fps (the default round=near would take one up to half a tick late).
        stream = stream.filter("fps", fps=self.fps, start_time=0, round="up")
        if self.top_bottom_stereo:
            stream = stream.crop(0, 0, "iw", "ih/2")
        if self.projection == "EAC":
            stream = stream.filter("v360", input="eac", output="e", w=self.width, h=self.height, interp="linear")
        return _rgb(stream, self.width, self.height)


def iter_frames(
    path: str | Path,
    spec: FrameSpec = FrameSpec(),
    *,
    threads: int | None = None,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream the frames of ``path`` as [height, width, 3] uint8 arrays at ``spec.fps`` from t = 0.

    Frames come straight from ffmpeg's stdout (raw rgb24); raises :class:`MediaError` if ffmpeg fails before the
    stream ends. Stopping the iteration early terminates ffmpeg.
    """
    limit = {"frames:v": max_frames} if max_frames is not None else {}
    output = spec.apply(_input(path, threads)["v:0"]).output("pipe:1", format="rawvideo", pix_fmt="rgb24", **limit)
    for buf in _stream_stdout(path, "video", _args(output), spec.width * spec.height * 3):
        yield np.frombuffer(buf, dtype=np.uint8).reshape(spec.height, spec.width, 3)


def iter_audio(
    path: str | Path,
    *,
    in_channels: int,
    out_channels: int,
    chunk_samples: int = SAMPLE_RATE,
    sample_rate: int = SAMPLE_RATE,
    threads: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream the first audio stream of ``path`` as float32 [out_channels, n] chunks of ``chunk_samples`` (the
    last one shorter), decoded as :func:`decode_audio` does (stereo, mono or 4-channel ambiX)."""
    if in_channels == 3:
        raise MediaError(f"{path}: 3-channel audio is decoded whole (decode_audio), not streamed")
    audio = audio_filter(_input(path, threads)["a:0"], in_channels, out_channels, sample_rate)
    args = _args(audio.output("pipe:1", format="f32le", acodec="pcm_f32le"))
    for buf in _stream_stdout(path, "audio", args, 4 * out_channels * chunk_samples, partial_last=True):
        if len(buf) % (4 * out_channels):
            raise MediaError(f"{path}: decoded audio is not a whole number of {out_channels}-channel frames")
        yield np.frombuffer(buf, dtype="<f4").reshape(-1, out_channels).T.copy()


def _stream_stdout(path: str | Path, what: str, args: list[str], block_bytes: int,
                   partial_last: bool = False) -> Iterator[bytes]:
    """Blocks of ``block_bytes`` from ffmpeg's stdout (and a shorter last one when ``partial_last``); ffmpeg's
    stderr goes to a temporary file, so a chatty decoder can never fill a pipe and stall. Raises
    :class:`MediaError` naming the file when ffmpeg fails; stopping early terminates ffmpeg."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile, stdin=subprocess.DEVNULL)
        finished = False
        try:
            assert proc.stdout is not None
            while True:
                buf = proc.stdout.read(block_bytes)
                if len(buf) < block_bytes:
                    if partial_last and buf:
                        yield buf
                    break  # end of stream (a partial raw video frame cannot happen unless ffmpeg died)
                yield buf
            finished = True
        finally:
            if not finished:
                proc.kill()
            proc.stdout.close()  # type: ignore[union-attr]
            rc = proc.wait()
        if finished and rc != 0:
            errfile.seek(0)
            tail = " | ".join(errfile.read().decode("utf-8", "replace").strip().splitlines()[-3:])
            raise MediaError(f"{path}: {what} cannot be decoded (ffmpeg exited with {rc}: {tail})")


def _rgb(stream: ffmpeg.nodes.FilterableStream, width: int, height: int) -> ffmpeg.nodes.FilterableStream:
    return stream.filter("scale", width, height, flags="area").filter("format", "rgb24")


def grab_frames(
    path: str | Path,
    times_s: list[float],
    *,
    width: int = FRAME_WIDTH,
    height: int = FRAME_HEIGHT,
    top_bottom_stereo: bool = False,
) -> list[np.ndarray]:
    """Single frames at the given times, in the video's own projection, resized to width x height (for the
    projection detector). Times past the end give no frame; a failing seek is skipped."""
    frames = []
    for t in times_s:
        stream = _input(path, ss=f"{t:.3f}")["v:0"]
        if top_bottom_stereo:
            stream = stream.crop(0, 0, "iw", "ih/2")
        output = _rgb(stream, width, height).output("pipe:1", format="rawvideo", pix_fmt="rgb24", **{"frames:v": 1})
        try:
            raw = run_ffmpeg(_args(output), timeout=120)
        except FFmpegError:
            continue
        if len(raw) == width * height * 3:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3))
    return frames


def packet_durations(path: str | Path) -> dict[str, float | None]:
    """End time in seconds of the first video and first audio stream, from the packets (demuxing, no decoding).

    Matroska/WebM files often carry no per-stream duration, and a container's declared duration is the longest
    stream's; the packets tell each stream's real length. Raises :class:`MediaError` if the file cannot be read.
    """
    out: dict[str, float | None] = {"video": None, "audio": None}
    try:
        with av.open(str(path)) as container:
            streams = [s for kind in ("video", "audio") for s in container.streams if s.type == kind][:2]
            firsts = {}
            for kind in ("video", "audio"):
                found = [s for s in container.streams if s.type == kind]
                if found:
                    firsts[found[0].index] = (kind, found[0].time_base)
            if not firsts:
                return out
            for packet in container.demux([s for s in streams if s.index in firsts]):
                if packet.pts is None or packet.stream.index not in firsts:
                    continue
                kind, tb = firsts[packet.stream.index]
                end = float((packet.pts + (packet.duration or 0)) * tb)
                if out[kind] is None or end > out[kind]:
                    out[kind] = end
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{path}: cannot be demuxed ({exc})") from None
    return out
