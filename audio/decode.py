"""Uploaded recordings: cheap header probing (web process) and full decoding (worker).

Accepted containers: WAV, FLAC, Ogg (Vorbis, Opus, FLAC), MP3, Matroska/WebM (browser
MediaRecorder) and MP4/M4A (phones), with any audio codec FFmpeg decodes inside them. Only
those demuxers are enabled: FFmpeg has hundreds, some of which (HLS, concat, image
sequences) read other files or URLs named inside the upload, which a server must not do.

``probe`` only demuxes: it reads the container's headers and decodes nothing, neither audio
nor any video stream a file may carry (FFmpeg would otherwise decode the first frames of every
stream to fill in their parameters: one 16000 x 16000 PNG frame in an 800 KB MOV is 768 MB),
so the web process can reject bad uploads on the request path in a few milliseconds and
megabytes. Headers may be missing or wrong (MediaRecorder's WebM has no duration at all; a
file can claim anything), so ``decode`` checks every decoded frame again: its sample rate and
channel count, and the audio decoded so far against the length limit, *before* the frame is
converted, so memory stays bounded by the limit whatever the file claims (a few-kilobyte FLAC
of 8 Hz, 65,535-sample frames is 131 million samples per frame once resampled).

Errors carry a machine ``code`` and a human ``message`` (``as_dict()`` gives both):

========================= ===================== =============================================
exception                 code                  meaning (HTTP status: app/analysis/uploads.py)
========================= ===================== =============================================
``UnsupportedAudio``      ``unsupported_audio`` not a supported container, no audio stream,
                                                undecodable data, a sample rate outside
                                                4-192 kHz or more than 8 channels (415)
``AudioTooLong``          ``audio_too_long``    longer than the configured limit (422)
``EmptyAudio``            ``empty_audio``       zero bytes, or a valid file with no samples
                                                (422)
========================= ===================== =============================================

A file cut short decodes to the audio before the cut, as media players do (an upload from a
tab closed mid-recording looks like that); a file cut inside its headers is unsupported.
Damaged packets are skipped; a file none of whose packets decode is unsupported.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import av
import av.container
import av.logging
import numpy as np

from audio import SAMPLE_RATE

# PyAV's default; set explicitly because FFmpeg logs a line per damaged packet, and a hostile
# upload could flood the logs. Our exceptions carry their own messages.
av.logging.set_level(None)

DEFAULT_MAX_SECONDS = 600.0
# Decoded audio may run past the header's duration by a codec frame or two of padding
# (AAC, MP3, Vorbis); without this slack a file just under the limit would pass probe() in
# the web process and then fail decode() in the worker.
DECODE_SLACK_SECONDS = 0.5
ALLOWED_DEMUXERS = "wav,flac,ogg,mp3,matroska,webm,mov,mp4,m4a"
# Plausible audio: what microphones, phones and studios record. Outside it a file is not a
# recording but a request for memory (8 Hz frames resample 2,000-fold; 64 channels at 384 kHz).
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 8
# Options of every open: FFmpeg's stream analysis may open no decoder (a codec whitelist that
# names none), so it reads headers and parses packets but decodes nothing; its reading is
# bounded in bytes and stream time, and the whole open in wall time (PyAV's interrupt callback).
OPEN_OPTIONS = {"format_whitelist": ALLOWED_DEMUXERS, "codec_whitelist": "none",
                "probesize": str(1 << 20), "analyzeduration": str(2_000_000)}
OPEN_TIMEOUT_S = 2.0
SUPPORTED_DESCRIPTION = "WAV, FLAC, OGG (Vorbis, Opus), MP3, WebM/Opus and M4A/AAC"
_DAMAGED = "the file's audio data is damaged and could not be decoded"

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


class AudioError(Exception):
    """Base of the user-facing audio errors."""

    code = "audio_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class UnsupportedAudio(AudioError):
    code = "unsupported_audio"


class EmptyAudio(AudioError):
    code = "empty_audio"


class AudioTooLong(AudioError):
    code = "audio_too_long"

    def __init__(self, seconds: float, max_seconds: float, *, at_least: bool = False) -> None:
        prefix = "at least " if at_least else ""
        super().__init__(
            f"the audio is {prefix}{seconds:.1f} s long; the limit is {max_seconds:g} s"
        )
        self.seconds = seconds
        self.max_seconds = max_seconds


@dataclass(frozen=True)
class AudioInfo:
    container: str  # FFmpeg demuxer name, e.g. "wav", "ogg", "matroska,webm"
    codec: str  # FFmpeg decoder name, e.g. "pcm_s16le", "opus", "aac"
    sample_rate: int
    channels: int
    duration_s: float | None  # None when the headers do not say (MediaRecorder WebM)


def probe(source: Source, max_seconds: float = DEFAULT_MAX_SECONDS) -> AudioInfo:
    """Read the headers of `source` and describe its first audio stream.

    `source` is a path, the file's bytes, or a seekable binary file object (read from its
    start; its position is restored). Raises UnsupportedAudio, EmptyAudio, or AudioTooLong
    when the headers state a duration over `max_seconds`.
    """
    with _open(source) as container:
        stream = _audio_stream(container)
        info = AudioInfo(
            container=container.format.name,
            codec=stream.codec_context.name,
            sample_rate=stream.codec_context.sample_rate,
            channels=stream.codec_context.channels,
            duration_s=_duration(container, stream),
        )
    if info.duration_s is not None and info.duration_s > max_seconds:
        raise AudioTooLong(info.duration_s, max_seconds)
    return info


def decode(
    source: Source, target_rate: int = SAMPLE_RATE, max_seconds: float = DEFAULT_MAX_SECONDS
) -> np.ndarray:
    """Decode `source` (as for probe) to mono float32 samples at `target_rate`, within [-1, 1].

    Channels are averaged. Raises UnsupportedAudio, EmptyAudio, or AudioTooLong as soon as
    the decoded audio passes `max_seconds` (plus DECODE_SLACK_SECONDS), whatever the
    headers claimed.
    """
    with _open(source) as container:
        stream = _audio_stream(container)
        claimed = _duration(container, stream)
        frames = _bounded(_decoded_frames(container, stream), max_seconds)
        pieces = list(_resampled(frames, target_rate))
    if not any(piece.size for piece in pieces):
        # Headers promising audio that never comes mean damage, not an empty recording.
        if claimed:
            raise UnsupportedAudio(_DAMAGED)
        raise EmptyAudio("the file contains no audio samples")
    samples = np.concatenate(pieces)
    return np.clip(samples, -1.0, 1.0, out=samples)


@contextmanager
def _open(source: Source) -> Iterator[av.container.InputContainer]:
    with _binary(source) as fileobj:
        if _size(fileobj) == 0:
            raise EmptyAudio("the file is empty (0 bytes)")
        try:
            container = av.open(
                fileobj, mode="r", container_options=OPEN_OPTIONS, timeout=(OPEN_TIMEOUT_S, None)
            )
        except av.error.ExitError as exc:  # the interrupt callback: the time budget ran out
            raise UnsupportedAudio("the file's headers could not be read in time") from exc
        except av.error.FFmpegError as exc:
            raise UnsupportedAudio(
                f"not a readable audio file; supported formats: {SUPPORTED_DESCRIPTION}"
            ) from exc
        with container:
            yield container


@contextmanager
def _binary(source: Source) -> Iterator[BinaryIO]:
    """A binary file object positioned at the start of the data.

    Paths are opened by Python rather than handed to FFmpeg, so that a string can never be
    taken for a URL or a protocol ("http:", "concat:").
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fileobj:
            yield fileobj
    else:
        position = source.tell()
        source.seek(0)
        try:
            yield source
        finally:
            source.seek(position)


def _size(fileobj: BinaryIO) -> int:
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(0)
    return size


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise UnsupportedAudio("the file has no audio stream")
    stream = container.streams.audio[0]
    context = stream.codec_context
    if context is None or not context.sample_rate or not context.channels:
        raise UnsupportedAudio("the file's audio stream cannot be decoded")
    _check_plausible(context.sample_rate, context.channels)
    return stream


def _check_plausible(rate: int, channels: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise UnsupportedAudio(
            f"a sample rate of {rate} Hz is not supported; "
            f"recordings must be {MIN_SAMPLE_RATE // 1000}-{MAX_SAMPLE_RATE // 1000} kHz"
        )
    if channels > MAX_CHANNELS:
        raise UnsupportedAudio(
            f"{channels} channels are not supported; recordings may have at most {MAX_CHANNELS}"
        )


def _duration(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decoded_frames(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame]:
    """Frames of `stream`, skipping packets that fail to decode.

    A demuxer error ends the stream (what follows is unreadable); if nothing decoded at all
    the file is unsupported rather than empty.
    """
    decoded = False
    failed = False
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError:
            failed = True
            break
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            failed = True
            continue
        decoded = decoded or bool(frames)
        yield from frames
    if failed and not decoded:
        raise UnsupportedAudio(_DAMAGED)


def _bounded(frames: Iterator[av.AudioFrame], max_seconds: float) -> Iterator[av.AudioFrame]:
    """The frames, each checked before anyone converts it: plausible parameters (a frame may
    change them mid-stream: FLAC frame headers carry their own rate), and no more than
    `max_seconds` (plus DECODE_SLACK_SECONDS) in all. The frame that would pass the limit is
    never resampled, so no frame costs more memory than the limit allows."""
    limit = max_seconds + DECODE_SLACK_SECONDS
    seconds = 0.0
    for frame in frames:
        _check_plausible(frame.sample_rate, len(frame.layout.channels))
        seconds += frame.samples / frame.sample_rate
        if seconds > limit:
            raise AudioTooLong(seconds, max_seconds, at_least=True)
        yield frame


def _resampled(frames: Iterator[av.AudioFrame], rate: int) -> Iterator[np.ndarray]:
    """Mono float32 arrays at `rate`; a new resampler whenever the input parameters change
    (chained MP3s, for instance, may switch sample rate mid-file)."""
    resampler: av.AudioResampler | None = None
    current: tuple[str, str, int] | None = None
    for frame in frames:
        parameters = (frame.format.name, frame.layout.name, frame.sample_rate)
        if parameters != current:
            if resampler is not None:
                yield from _arrays(resampler.resample(None))
            resampler, current = _mono_resampler(rate), parameters
        yield from _arrays(resampler.resample(frame))
    if resampler is not None:
        yield from _arrays(resampler.resample(None))


def _mono_resampler(rate: int) -> av.AudioResampler:
    # rematrix_maxval=1 normalises FFmpeg's downmix matrix: stereo becomes (L + R) / 2
    # instead of 0.707 * (L + R), which clips loud correlated channels.
    return av.AudioResampler(
        format="flt", layout="mono", rate=rate, threads=1, options={"rematrix_maxval": "1.0"}
    )


def _arrays(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
    for frame in frames:
        yield frame.to_ndarray().reshape(-1)
