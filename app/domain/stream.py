"""Live audio streams: PCM format declaration, chunk checks, conversion, windows, backpressure.

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

Windows. Audio is converted to mono float32 at 16 kHz (channels averaged; other rates
resampled by libswresample through ``av.AudioResampler``, which keeps its filter state
between chunks so chunk boundaries leave no clicks or gaps) and cut into overlapping windows:
3 s long, one every 1 s of audio (``Windower`` defaults). Why these values:

* 3 s is the longest window the product allows and the model's serving window
  (ml/params.py WINDOW_SECONDS); prosody (pitch contour, rhythm), which carries most of the
  emotional cue, needs phrase-length context, so the longest allowed is the best;
* a 1 s hop is the slowest cadence that still gives a result every second of audio, and it
  keeps inference at one window per second per stream (a 0.5 s hop would double the work
  for no new audio).

The first result therefore comes after 3 s of audio, then one per second. At the end of the
stream ``Windower.flush`` returns the audio not yet fully analysed as a last, shorter window
(see its docstring).

Backpressure. Each stream keeps at most ``max_pending`` windows waiting for inference; when
a new one would exceed that, the oldest are dropped (stale emotion is worth less than fresh)
and counted, so the caller can tell the client (e.g. a ``lag`` event with
``{"dropped": <this time>, "dropped_total": ..., "pending": ...}``). ``indices_to_drop`` is the
same policy as a pure function, for pending state kept elsewhere (Redis).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import av
import numpy as np

TARGET_RATE = 16000
SAMPLE_WIDTHS = {"s16le": 2, "f32le": 4}
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
CHANNELS = (1, 2)
DEFAULT_MAX_CHUNK_SECONDS = 1.0
# Beyond +-4 (+12 dBFS) a float sample is not clipped speech but misread bytes.
MAX_F32_MAGNITUDE = 4.0
DEFAULT_WINDOW_SECONDS = 3.0
DEFAULT_HOP_SECONDS = 1.0
DEFAULT_MIN_FLUSH_SECONDS = 1.0

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
        samples = raw.astype(np.float32) / 32768.0
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
            if fmt.sample_rate == TARGET_RATE
            # One thread: thousands of streams must not each start a thread pool.
            else av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE, threads=1)
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


class Window(NamedTuple):
    index: int  # 0, 1, 2, ... in stream order
    start_s: float  # position in the stream's audio, seconds from its start
    end_s: float
    samples: np.ndarray  # mono float32 at the windower's rate; owned by the receiver


class Windower:
    """Cuts a stream of samples into windows of window_s, one every hop_s.

    Window i covers [i * hop_s, i * hop_s + window_s). Memory is one window's worth of
    samples whatever the stream length or chunk sizes.

    With ``warmup``, the stream's start also gets growing windows [0, hop_s), [0, 2 hop_s)...
    until the first full one, so a live stream has its first result after hop_s of audio
    rather than window_s (windows are then numbered in emission order).
    """

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_SECONDS,
        hop_s: float = DEFAULT_HOP_SECONDS,
        sample_rate: int = TARGET_RATE,
        min_flush_s: float = DEFAULT_MIN_FLUSH_SECONDS,
        warmup: bool = False,
        first_index: int = 0,
    ) -> None:
        self.sample_rate = sample_rate
        self.window_len = round(window_s * sample_rate)
        self.hop_len = round(hop_s * sample_rate)
        self.min_flush_len = round(min_flush_s * sample_rate)
        if not 0 < self.hop_len <= self.window_len:
            raise ValueError("need 0 < hop_s <= window_s (a larger hop would skip audio)")
        self._buffer = np.zeros(self.window_len, np.float32)
        self._filled = 0  # samples in _buffer; _buffer[0] is the next window's first sample
        self._next_index = 0
        self._emitted = 0
        self._first_index = first_index  # a resumed stream goes on numbering where it stopped
        self._covered_until = 0  # end, in samples, of the last emitted window
        self._warm_end = self.hop_len if warmup else self.window_len

    @property
    def _next_start(self) -> int:
        return self._next_index * self.hop_len

    def feed(self, samples: np.ndarray) -> list[Window]:
        """Add mono samples; return the windows they complete (often none, possibly several)."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError("feed() takes a 1-D array of mono samples")
        windows = []
        position = 0
        while position < samples.size:
            target = self._warm_end if self._next_index == 0 else self.window_len
            take = min(samples.size - position, target - self._filled)
            self._buffer[self._filled : self._filled + take] = samples[position : position + take]
            self._filled += take
            position += take
            if self._filled == target:
                windows.append(self._emit(target))
                if target < self.window_len:
                    self._warm_end = min(self._warm_end + self.hop_len, self.window_len)
                else:
                    self._advance()
        return windows

    def flush(self) -> Window | None:
        """At the end of the stream: the last, partial window, or None.

        It starts where the next full window would have and holds all the audio received
        since, unpadded: shorter than window_s, with its true end_s. Padding is the model's
        business (ml/inference.py zero-pads to its input length after its silence check).
        It is returned only if it holds at least min_flush_s of audio, some of which no
        earlier window covered: a stream shorter than min_flush_s gets no window at all,
        and one ending exactly on a window boundary gets nothing more. With the default
        3 s / 1 s, a stream of 10.5 s thus ends with a window 8.0-10.5 s. The windower is
        empty afterwards.
        """
        end = self._next_start + self._filled
        if self._filled < self.min_flush_len or end <= self._covered_until:
            self._filled = 0
            return None
        window = self._emit(self._filled)
        self._filled = 0
        return window

    def _emit(self, length: int) -> Window:
        start = self._next_start
        self._covered_until = start + length
        self._emitted += 1
        return Window(
            index=self._first_index + self._emitted - 1,
            start_s=start / self.sample_rate,
            end_s=(start + length) / self.sample_rate,
            samples=self._buffer[:length].copy(),
        )

    def _advance(self) -> None:
        # Keep the overlap (window - hop samples) as the start of the next window.
        keep = self.window_len - self.hop_len
        self._buffer[:keep] = self._buffer[self.hop_len :]
        self._filled = keep
        self._next_index += 1


def indices_to_drop(pending: Iterable[int], max_pending: int) -> list[int]:
    """Which pending window indices to drop so that at most `max_pending` remain.

    Oldest (lowest index) first; empty when within the limit.
    """
    if max_pending < 0:
        raise ValueError("max_pending must be >= 0")
    ordered = sorted(pending)
    return ordered[: max(0, len(ordered) - max_pending)]


class PendingWindows:
    """A bounded FIFO of one stream's windows awaiting inference; drops the oldest."""

    def __init__(self, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.max_pending = max_pending
        self.dropped = 0  # total over the stream's life
        self._windows: dict[int, Window] = {}

    def push(self, window: Window) -> list[Window]:
        """Queue `window`; return the windows dropped to make room (oldest first)."""
        if window.index in self._windows:
            raise ValueError(f"window {window.index} is already pending")
        self._windows[window.index] = window
        dropped = [self._windows.pop(i) for i in indices_to_drop(self._windows, self.max_pending)]
        self.dropped += len(dropped)
        return dropped

    def pop(self) -> Window | None:
        """The oldest pending window, removed; None when nothing is pending."""
        if not self._windows:
            return None
        return self._windows.pop(min(self._windows))

    def discard(self, index: int) -> bool:
        """Forget window `index` (its inference finished or was cancelled elsewhere)."""
        return self._windows.pop(index, None) is not None

    def indices(self) -> list[int]:
        return sorted(self._windows)

    def __len__(self) -> int:
        return len(self._windows)
