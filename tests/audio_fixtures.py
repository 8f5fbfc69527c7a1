"""Synthetic audio for tests: a speech-like signal written in every upload format with PyAV.

Every encoder used here ships in PyAV 19.0.2's wheels (FFmpeg 9.0), so the fixtures need no
system tools. Two build-specific facts shape the table below:

* there is no libvorbis: Vorbis uses FFmpeg's native encoder, which is marked experimental
  (needs ``strict=experimental``) and only encodes stereo;
* Opus only runs at 8/12/16/24/48 kHz, so the Opus fixtures use 48 kHz like browsers do.

The WebM fixture is muxed with ``live=1``: no duration and no cues in the header, which is
what a browser's MediaRecorder produces.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class FormatSpec:
    muxer: str  # FFmpeg muxer name
    codec: str  # FFmpeg encoder name
    rate: int
    channels: int
    suffix: str
    mime: str
    codec_options: dict[str, str] = field(default_factory=dict)
    muxer_options: dict[str, str] = field(default_factory=dict)


FORMATS: dict[str, FormatSpec] = {
    "wav_s16": FormatSpec("wav", "pcm_s16le", 16000, 1, ".wav", "audio/wav"),
    "wav_f32": FormatSpec("wav", "pcm_f32le", 44100, 2, ".wav", "audio/wav"),
    "flac": FormatSpec("flac", "flac", 48000, 1, ".flac", "audio/flac"),
    "ogg_vorbis": FormatSpec(
        "ogg", "vorbis", 44100, 2, ".ogg", "audio/ogg", codec_options={"strict": "experimental"}
    ),
    "ogg_opus": FormatSpec("ogg", "libopus", 48000, 1, ".opus", "audio/ogg"),
    "mp3": FormatSpec("mp3", "libmp3lame", 44100, 1, ".mp3", "audio/mpeg"),
    "webm_opus": FormatSpec(
        "webm", "libopus", 48000, 1, ".webm", "audio/webm", muxer_options={"live": "1"}
    ),
    "m4a_aac": FormatSpec("ipod", "aac", 44100, 1, ".m4a", "audio/mp4"),
}


FORMANTS = ((700, 150), (1200, 200), (2600, 300))  # (centre Hz, width Hz) of an /a/-like vowel


def speech_like(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A vowel-like voiced signal, shape (channels, samples), float32, peak about 0.6.

    A gliding 110-190 Hz fundamental with 20 harmonics shaped by three formants, gated by a
    4 Hz syllable envelope, plus a little noise: loud enough to survive lossy codecs and with
    speech's spectral shape, so that "non-trivial content" checks mean something. Channel k
    is scaled by 1/(k+1) so that a downmix is distinguishable from either channel.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    # Phase of f0(t) = 150 + 40 sin(2 pi 0.7 t), integrated analytically so that the signal
    # is the same at every sample rate (tests compare decodes against a 16 kHz rendering).
    phase = 2 * np.pi * (150 * t + 40 / (2 * np.pi * 0.7) * (1 - np.cos(2 * np.pi * 0.7 * t)))
    voiced = np.zeros_like(t)
    for k in range(1, 21):
        freq = k * 150
        if freq >= rate / 2:
            break
        gain = sum(np.exp(-(((freq - fc) / bw) ** 2)) for fc, bw in FORMANTS)
        voiced += (gain + 0.05) / k * np.sin(k * phase)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    mono = envelope * voiced / np.max(np.abs(voiced)) * 0.55 + 0.01 * rng.standard_normal(t.size)
    return np.stack([mono / (ch + 1) for ch in range(channels)]).astype(np.float32)


def encode_array(samples: np.ndarray, rate: int, name: str) -> bytes:
    """Encode planar float samples (channels, n) in the format called `name` (a FORMATS key)."""
    spec = FORMATS[name]
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=spec.muxer, options=spec.muxer_options) as container:
        stream = container.add_stream(
            spec.codec, rate=rate, layout=layout, options=spec.codec_options
        )
        for frame in [_frame(samples, rate, layout), None]:  # None flushes the encoder
            for packet in stream.encode(frame):
                container.mux(packet)
    return buffer.getvalue()


def _frame(samples: np.ndarray, rate: int, layout: str) -> av.AudioFrame:
    planar = np.ascontiguousarray(samples, np.float32)
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
    frame.sample_rate = rate
    # Without a timestamp some muxers (Ogg with the Vorbis encoder) write wrong durations.
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    return frame


def encode(
    name: str, seconds: float = 1.0, rate: int | None = None, channels: int | None = None
) -> bytes:
    """`seconds` of speech_like() audio as a complete file in format `name`."""
    spec = FORMATS[name]
    rate = rate or spec.rate
    return encode_array(speech_like(seconds, rate, channels or spec.channels), rate, name)


def write(directory: Path, name: str, seconds: float = 1.0, **kwargs: int) -> Path:
    """Like encode(), written to `directory` with the format's usual suffix."""
    path = Path(directory) / f"{name}{FORMATS[name].suffix}"
    path.write_bytes(encode(name, seconds, **kwargs))
    return path


def wav_header_only() -> bytes:
    """A valid 16 kHz mono s16 WAV that holds no samples (PyAV writes nothing without a frame)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
    return buffer.getvalue()


def image_bytes(codec: str) -> bytes:
    """A tiny image file: codec "png" gives a PNG, "mjpeg" a JPEG."""
    context = av.CodecContext.create(codec, "w")
    context.width = context.height = 16
    context.pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
    context.time_base = Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 200, np.uint8), format="rgb24")
    packets = context.encode(frame.reformat(format=context.pix_fmt)) + context.encode(None)
    return b"".join(bytes(packet) for packet in packets)


def video_without_audio() -> bytes:
    """One second of MPEG-4 video in an MP4 container, no audio stream."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


# Hostile uploads (docs/SECURITY.md, "Hostile uploads"): small files that ask a decoder for far
# more memory or time than their size suggests.


def flac_bomb(rate: int = 8, frames: int = 40, claimed_samples: int = 16, claimed_rate: int | None = None) -> bytes:
    """A silent FLAC at `rate` Hz in 65,535-sample frames (the format's largest), whose
    STREAMINFO claims `claimed_samples` in all: a few kilobytes that decode to frames * 65,535
    samples. At 8 Hz each frame is 8,192 s of audio; resampled to 16 kHz, one frame alone is
    131 million samples (the review's 8,646-byte file, which grew a worker to 3.1 GB).
    With `claimed_rate`, STREAMINFO states that rate while every frame header keeps `rate`."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono", options={"frame_size": "65535"})
        silence = np.zeros((1, 65535), np.int16)
        for index in range(frames):
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, index * 65535, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(buffer.getvalue())
    # STREAMINFO starts at byte 8; its total-samples count is the low 36 bits of bytes 18-25.
    field = int.from_bytes(data[18:26], "big")
    mask = (1 << 36) - 1
    field = (field & ~mask) | claimed_samples
    if claimed_rate is not None:  # the top 20 bits
        field = (field & ((1 << 44) - 1)) | (claimed_rate << 44)
    data[18:26] = field.to_bytes(8, "big")
    return bytes(data)


def wav_header(channels: int, rate: int, seconds: float = 1.0, bits: int = 16) -> bytes:
    """A PCM WAV with any channel count and rate (the review's 64 channels at 384 kHz), the
    samples silent."""
    frames = int(seconds * rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(bits // 8)
        writer.setframerate(rate)
        writer.writeframes(bytes(frames * channels * bits // 8))
    return buffer.getvalue()


def huge_png(side: int) -> bytes:
    """A black side x side RGB PNG, compressed row by row (never the whole image in memory):
    16000 x 16000 is 768 MB decoded and about 0.8 MB as a file."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * side)  # filter byte 0, then the pixels
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def mov_with_huge_png(side: int = 16000, seconds: float = 4.0) -> bytes:
    """A MOV holding one side x side PNG video frame and `seconds` of AAC speech: decoding the
    frame, which the audio path never needs, costs side * side * 3 bytes."""
    rate = 44100
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mov") as container:
        video = container.add_stream("png", rate=1)
        video.width = video.height = side
        video.pix_fmt = "rgb24"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        packet = av.Packet(huge_png(side))
        packet.stream, packet.pts, packet.dts, packet.time_base = video, 0, 0, Fraction(1, 1)
        packet.is_keyframe = True
        container.mux(packet)
        for frame in [_frame(speech_like(seconds, rate), rate, "mono"), None]:
            for packet in audio.encode(frame):
                container.mux(packet)
    return buffer.getvalue()
