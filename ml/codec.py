"""Lossy codec round trips (PyAV): encode 16 kHz mono audio and decode it again.

Training applies a random round trip to every corpus, so the codec a corpus was stored
in (RAVDESS: FLAC; nEMO and ASED: Opus) stops being a cue to which corpus, and so which
classes, a clip comes from; it also prepares the model for phone and browser uploads.
"""
from __future__ import annotations

import io

import numpy as np

from ml import params

# (codec, container, bit rates in bit/s) that ffmpeg inside PyAV encodes at 16 kHz
CODECS = (
    ("libopus", "ogg", (8000, 12000, 16000, 24000, 32000)),
    ("libmp3lame", "mp3", (24000, 32000, 48000, 64000)),
    ("aac", "adts", (24000, 32000, 48000, 64000)),
)
# A narrowband call: its codec, bit rate and sample rate.
PHONE = ("libopus", 12000, 8000)
# priming samples the decoder leaves in front (measured by cross-correlation); the
# others trim their own
DELAY = {"aac": 1024}


def round_trip(x: np.ndarray, codec: str, bit_rate: int, rate: int = params.SAMPLE_RATE) -> np.ndarray:
    """x (float mono at ``rate``) through ``codec`` at ``bit_rate`` and back; same length."""
    import av
    container = next(c for name, c, _ in CODECS if name == codec)
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks = []
    with av.open(buf, "r") as inp:
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                chunks.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            chunks.append(f.to_ndarray().reshape(-1))
    y = np.concatenate(chunks)[DELAY.get(codec, 0):] if chunks else np.zeros(0, np.float32)
    if len(y) >= len(x):
        return y[:len(x)].astype(np.float32)
    return np.pad(y, (0, len(x) - len(y))).astype(np.float32)


def random_round_trip(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A round trip through a random codec and bit rate; returns (audio, "codec@rate")."""
    codec, _, rates = CODECS[rng.integers(len(CODECS))]
    rate = int(rates[rng.integers(len(rates))])
    return round_trip(x, codec, rate), f"{codec}@{rate}"


def phone_call(x: np.ndarray) -> np.ndarray:
    """x (16 kHz) as a narrowband call carries it: 8 kHz, the call's codec (PHONE), back to 16 kHz."""
    from scipy.signal import resample_poly
    name, bit_rate, rate = PHONE
    ratio = params.SAMPLE_RATE // rate
    narrow = round_trip(resample_poly(x, 1, ratio).astype(np.float32), name, bit_rate, rate)
    return resample_poly(narrow, ratio, 1)[:len(x)].astype(np.float32)
