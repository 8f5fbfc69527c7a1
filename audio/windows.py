"""Windows: a stream of mono samples cut into overlapping windows, each analysed on its own.

3 s long, one every 1 s of audio (audio.WINDOW_SECONDS and audio.HOP_SECONDS). Why these values:

* 3 s is the longest window the product allows and the model's serving window
  (ml/params.py WINDOW_SECONDS); prosody (pitch contour, rhythm), which carries most of the
  emotional cue, needs phrase-length context, so the longest allowed is the best;
* a 1 s hop is the slowest cadence that still gives a result every second of audio, and it
  keeps inference at one window per second per stream (a 0.5 s hop would double the work
  for no new audio).

An upload's first result comes after 3 s of audio, then one per second; a live stream
(``warmup``) has its first after 1 s. At the end of the stream ``Windower.flush`` returns the
audio not yet fully analysed as a last, shorter window (see its docstring).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from audio import HOP_SECONDS, SAMPLE_RATE, WINDOW_SECONDS

DEFAULT_MIN_FLUSH_SECONDS = 1.0


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
        window_s: float = WINDOW_SECONDS,
        hop_s: float = HOP_SECONDS,
        sample_rate: int = SAMPLE_RATE,
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


def live_windows_after(seconds: float, hop_s: float = HOP_SECONDS) -> int:
    """How many windows a live stream (a Windower with ``warmup``) has cut after `seconds` of
    audio: one per hop, the warm-up windows included."""
    return int(seconds / hop_s)
