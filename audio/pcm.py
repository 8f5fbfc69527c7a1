"""Live audio streams: PCM format declaration, chunk checks, conversion to 16 kHz mono.

Independent of the transport (Socket.IO, WebSocket, a test harness): callers hand in the
declared format as a mapping and chunks as bytes; every problem is a ``StreamError`` with a
machine ``code``, a human ``message`` and, for format problems, the offending ``field``.

Format declaration (``PcmFormat.from_dict``)::

    {"encoding": "s16le" | "f32le", "sample_rate": 8000..48000 (a standard rate), "channels": 1 | 2}

Chunks: raw interleaved little-endian PCM in the declared format, a whole number of frames
(sample width x channels bytes), at most ``max_chunk_s`` of audio (1 s by default; 20-100 ms
is what clients usually send). f32le samples must be finite and within +-4 (full scale is
+-1): s16le data mislabelled as f32le yields NaNs and huge values, so those checks also catch
a client sending another format than the one it declared. The reverse mislabelling (f32le
data declared as s16le) cannot be told apart from loud noise and goes undetected.

==================== ============ =========================================================
code                 field        when
==================== ============ =========================================================
invalid_format       name of the  the declaration is not a mapping, or a field is missing,
                     field        of the wrong type or out of range
invalid_chunk_type   --           a chunk that is not bytes
empty_chunk          --           a chunk of zero bytes
misaligned_chunk     --           byte count not a multiple of the frame size
chunk_too_large      --           more than max_chunk_s of audio
non_finite_samples   --           f32le NaN or infinity
format_mismatch      --           f32le samples beyond +-4: not the declared encoding
==================== ============ =========================================================

A rejected chunk changes no state: the stream continues with the next chunk.

Conversion. Audio is converted to mono float32 at 16 kHz (channels averaged; other rates
resampled by libswresample through ``av.AudioResampler``, which keeps its filter state
between chunks so chunk boundaries leave no clicks or gaps), then cut into windows
(audio/windows.py). Backpressure (at most STREAM_MAX_PENDING windows of a stream waiting for
inference, the oldest dropped) is kept in Redis: app/live/ready.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import av
import numpy as np

from audio import SAMPLE_RATE, SAMPLE_RATES

SAMPLE_WIDTHS = {"s16le": 2, "f32le": 4}
CHANNELS = (1, 2)
DEFAULT_MAX_CHUNK_SECONDS = 1.0
# Beyond +-4 (+12 dBFS) a float sample is not clipped speech but misread bytes.
MAX_F32_MAGNITUDE = 4.0
# s16le full scale: samples are scaled by this on the way in, and clipped to +-1 and scaled
# by S16_MAX on the way out.
S16_SCALE = 32768.0
S16_MAX = 32767

_NUMPY_DTYPES = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


class StreamError(ValueError):
    """A client-side problem with a stream's format or one of its chunks."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str]:
        payload = {"code": self.code, "message": self.message}
        if self.field is not None:
            payload["field"] = self.field
        return payload


def _format_error(field: str, message: str) -> StreamError:
    return StreamError("invalid_format", message, field)


@dataclass(frozen=True)
class PcmFormat:
    """A validated stream format; construction raises StreamError("invalid_format")."""

    encoding: str
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        if not isinstance(self.encoding, str) or self.encoding not in SAMPLE_WIDTHS:
            raise _format_error("encoding", f"encoding must be one of {sorted(SAMPLE_WIDTHS)}")
        if not _is_int(self.sample_rate) or self.sample_rate not in SAMPLE_RATES:
            raise _format_error(
                "sample_rate", f"sample_rate must be an integer, one of {list(SAMPLE_RATES)}"
            )
        if not _is_int(self.channels) or self.channels not in CHANNELS:
            raise _format_error("channels", "channels must be 1 or 2")

    @classmethod
    def from_dict(cls, declaration: object) -> PcmFormat:
        """Validate a client's declaration; unknown keys are ignored (forward compatibility)."""
        if not isinstance(declaration, Mapping):
            raise _format_error(
                "format", "the format must be an object with encoding, sample_rate and channels"
            )
        for field in ("encoding", "sample_rate", "channels"):
            if field not in declaration:
                raise _format_error(field, f"{field} is missing")
        return cls(declaration["encoding"], declaration["sample_rate"], declaration["channels"])

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame: one sample of every channel."""
        return SAMPLE_WIDTHS[self.encoding] * self.channels

    def max_chunk_bytes(self, max_chunk_s: float) -> int:
        return int(max_chunk_s * self.sample_rate) * self.frame_bytes

    def as_dict(self) -> dict[str, str | int]:
        return {
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def chunk_samples(
    fmt: PcmFormat, chunk: object, max_chunk_s: float = DEFAULT_MAX_CHUNK_SECONDS
) -> np.ndarray:
    """Validate `chunk` against `fmt`; return its samples as float32, shape (frames, channels).

    s16le is scaled to [-1, 1); f32le is returned as sent. Raises StreamError.
    """
    if not isinstance(chunk, (bytes, bytearray)):
        raise StreamError(
            "invalid_chunk_type", f"audio chunks must be binary, not {type(chunk).__name__}"
        )
    if not chunk:
        raise StreamError("empty_chunk", "the audio chunk is empty")
    if len(chunk) % fmt.frame_bytes:
        raise StreamError(
            "misaligned_chunk",
            f"{len(chunk)} bytes is not a whole number of {fmt.frame_bytes}-byte frames "
            f"({fmt.encoding}, {fmt.channels} channel(s))",
        )
    limit = fmt.max_chunk_bytes(max_chunk_s)
    if len(chunk) > limit:
        raise StreamError(
            "chunk_too_large",
            f"{len(chunk)} bytes is over the {limit}-byte ({max_chunk_s:g} s) chunk limit",
        )
    raw = np.frombuffer(chunk, dtype=_NUMPY_DTYPES[fmt.encoding])
    if fmt.encoding == "s16le":
        samples = raw.astype(np.float32) / S16_SCALE
    else:
        samples = raw.astype(np.float32)
        _check_floats(samples)
    return samples.reshape(-1, fmt.channels)


def _check_floats(samples: np.ndarray) -> None:
    if not np.isfinite(samples).all():
        raise StreamError(
            "non_finite_samples",
            "f32le chunk contains NaN or infinity (is the declared encoding right?)",
        )
    if np.abs(samples).max() > MAX_F32_MAGNITUDE:
        raise StreamError(
            "format_mismatch",
            f"f32le samples reach beyond +-{MAX_F32_MAGNITUDE:g} (full scale is +-1): "
            "the data does not look like the declared encoding",
        )


class ChunkConverter:
    """Per stream: validated chunks in the declared format -> mono float32 at 16 kHz.

    Keeps the resampler's state between chunks, so one instance per stream, fed in order.
    """

    def __init__(self, fmt: PcmFormat, max_chunk_s: float = DEFAULT_MAX_CHUNK_SECONDS) -> None:
        self.format = fmt
        self.max_chunk_s = max_chunk_s
        self._resampler = (
            None
            if fmt.sample_rate == SAMPLE_RATE
            # One thread: thousands of streams must not each start a thread pool.
            else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE, threads=1)
        )

    def convert(self, chunk: object) -> np.ndarray:
        """Validate and convert one chunk (raises StreamError and changes nothing if bad).

        With resampling the output lags the input by a few milliseconds of filter delay,
        which flush() releases.
        """
        samples = chunk_samples(self.format, chunk, self.max_chunk_s)
        mono = samples.reshape(-1) if self.format.channels == 1 else samples.mean(axis=1, dtype=np.float32)
        if self._resampler is None:
            return mono
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.format.sample_rate
        return _concat(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """The resampler's remaining samples; call once, when the stream ends."""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return _concat(self._resampler.resample(None))


def _concat(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return np.zeros(0, np.float32)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


def to_s16(samples: np.ndarray) -> np.ndarray:
    """Float samples (full scale +-1, clipped there) as little-endian int16."""
    return (np.clip(samples, -1.0, 1.0) * S16_MAX).astype("<i2")


def from_s16(pcm: bytes) -> np.ndarray:
    """Little-endian int16 PCM bytes as float32 samples in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / S16_SCALE
