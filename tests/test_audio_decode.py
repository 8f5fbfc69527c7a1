import io
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from audio.decode import (
    AudioInfo,
    AudioTooLong,
    EmptyAudio,
    UnsupportedAudio,
    _bounded,
    decode,
    probe,
)

from audio_fixtures import (
    FORMATS,
    encode,
    encode_array,
    flac_bomb,
    image_bytes,
    speech_like,
    video_without_audio,
    wav_header,
    wav_header_only,
    write,
)

RATE = 16000
TOLERANCE_S = 0.05

# What FFmpeg reports for each fixture: (demuxer, decoder).
EXPECTED_STREAMS = {
    "wav_s16": ("wav", "pcm_s16le"),
    "wav_f32": ("wav", "pcm_f32le"),
    "flac": ("flac", "flac"),
    "ogg_vorbis": ("ogg", "vorbis"),
    "ogg_opus": ("ogg", "opus"),
    "mp3": ("mp3", "mp3float"),
    "webm_opus": ("matroska,webm", "opus"),
    "m4a_aac": ("mov,mp4,m4a,3gp,3g2,mj2", "aac"),
}


def correlation(decoded: np.ndarray, reference: np.ndarray) -> float:
    n = min(decoded.size, reference.size)
    return float(np.corrcoef(decoded[:n], reference[:n])[0, 1])


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[None, :]


def flac_claiming(seconds: float, claimed_seconds: float) -> bytes:
    """A 16 kHz FLAC whose STREAMINFO states `claimed_seconds` but holds `seconds` of audio."""
    data = bytearray(encode("flac", seconds, rate=RATE))
    # STREAMINFO starts at byte 8; its total-samples count is the low 36 bits of bytes 18-25.
    field = int.from_bytes(data[18:26], "big")
    mask = (1 << 36) - 1
    data[18:26] = ((field & ~mask) | int(claimed_seconds * RATE)).to_bytes(8, "big")
    return bytes(data)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_decodes_to_the_encoded_speech(name):
    samples = decode(encode(name, 1.0))

    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size / RATE - 1.0) <= TOLERANCE_S
    assert np.abs(samples).max() <= 1.0
    # Scale-free: stereo fixtures downmix to 0.75 of channel 0 (channel 1 is half as loud).
    assert correlation(samples, speech_like(1.0, RATE)[0]) > 0.98


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_probe_reads_the_stream_parameters(name):
    spec = FORMATS[name]

    info = probe(io.BytesIO(encode(name, 1.0)))

    assert (info.container, info.codec) == EXPECTED_STREAMS[name]
    assert (info.sample_rate, info.channels) == (spec.rate, spec.channels)
    if name == "webm_opus":
        assert info.duration_s is None  # MediaRecorder-style WebM states no duration
    else:
        assert abs(info.duration_s - 1.0) <= TOLERANCE_S


def test_sources_can_be_a_path_bytes_or_a_file_object(tmp_path):
    path = write(tmp_path, "flac", 1.0)
    data = path.read_bytes()
    spooled = tempfile.SpooledTemporaryFile()  # what Flask's FileStorage.stream usually is
    spooled.write(data)

    results = [decode(source) for source in (path, str(path), data, bytearray(data), spooled)]

    for samples in results[1:]:
        np.testing.assert_array_equal(samples, results[0])


def test_a_file_object_is_read_from_its_start_and_left_where_it_was():
    fileobj = io.BytesIO(encode("wav_s16", 1.0))
    fileobj.seek(100)

    info = probe(fileobj)

    assert info.duration_s == pytest.approx(1.0)
    assert fileobj.tell() == 100
    assert decode(fileobj).size == RATE
    assert fileobj.tell() == 100


def test_stereo_is_averaged_to_mono():
    rng = np.random.default_rng(3)
    left = tone(300, 0.5, RATE, amplitude=0.8)[0]
    right = (0.3 * rng.standard_normal(left.size)).astype(np.float32)

    samples = decode(encode_array(np.stack([left, right]), RATE, "wav_f32"))

    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_other_rates_are_resampled_to_16k(rate):
    samples = decode(encode_array(tone(440, 2.0, rate), rate, "wav_s16"))

    assert abs(samples.size / RATE - 2.0) <= TOLERANCE_S
    assert dominant_frequency(samples, RATE) == pytest.approx(440, abs=2)


def test_target_rate_is_a_parameter():
    samples = decode(encode_array(tone(440, 1.0, 44100), 44100, "wav_s16"), target_rate=8000)

    assert samples.size == pytest.approx(8000, abs=8)
    assert dominant_frequency(samples, 8000) == pytest.approx(440, abs=2)


def test_samples_beyond_full_scale_are_clipped():
    loud = np.full((1, RATE), 1.5, np.float32)

    samples = decode(encode_array(loud, RATE, "wav_f32"))

    assert samples.max() == 1.0


def test_probe_rejects_a_duration_over_the_limit():
    with pytest.raises(AudioTooLong) as caught:
        probe(encode("wav_s16", 2.0), max_seconds=1.0)

    assert caught.value.code == "audio_too_long"
    assert caught.value.seconds == pytest.approx(2.0)
    assert caught.value.max_seconds == 1.0


def test_probe_accepts_a_duration_within_the_limit():
    assert probe(encode("wav_s16", 2.0), max_seconds=2.0).duration_s == pytest.approx(2.0)


def test_decode_enforces_the_limit_when_the_header_states_no_duration():
    data = encode("webm_opus", 2.0)
    assert probe(data, max_seconds=1.0).duration_s is None

    with pytest.raises(AudioTooLong):
        decode(data, max_seconds=1.0)


def test_decode_enforces_the_limit_when_the_header_lies():
    data = flac_claiming(seconds=3.0, claimed_seconds=0.5)
    assert probe(data, max_seconds=1.0).duration_s == pytest.approx(0.5)

    with pytest.raises(AudioTooLong):
        decode(data, max_seconds=1.0)
    assert decode(data, max_seconds=3.0).size == 3 * RATE


def test_decode_tolerates_a_little_audio_past_the_limit_as_codec_padding():
    data = flac_claiming(seconds=1.2, claimed_seconds=1.0)

    assert probe(data, max_seconds=1.0).duration_s == pytest.approx(1.0)
    assert decode(data, max_seconds=1.0).size == int(1.2 * RATE)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(np.random.default_rng(0).bytes(20000), id="random-bytes"),
        pytest.param(b"Hello, this is a text file, not audio.\n" * 100, id="text"),
        pytest.param(b'{"audio": "base64?"}', id="json"),
        pytest.param(image_bytes("png"), id="png"),
        pytest.param(image_bytes("mjpeg"), id="jpeg"),
    ],
)
def test_non_audio_is_unsupported(data):
    for operation in (probe, decode):
        with pytest.raises(UnsupportedAudio) as caught:
            operation(data)
        assert caught.value.code == "unsupported_audio"
        assert "supported formats" in caught.value.message


def test_a_video_without_audio_is_unsupported():
    with pytest.raises(UnsupportedAudio, match="no audio stream"):
        probe(video_without_audio())


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_file_cut_inside_its_header_is_unsupported(name):
    for operation in (probe, decode):
        with pytest.raises(UnsupportedAudio):
            operation(encode(name, 1.0)[:64])


@pytest.mark.parametrize("name", ["wav_s16", "flac", "mp3", "webm_opus"])
def test_a_file_cut_mid_stream_decodes_to_the_audio_before_the_cut(name):
    data = encode(name, 2.0)

    samples = decode(data[: len(data) // 2])

    assert 0.3 * 2.0 < samples.size / RATE < 0.7 * 2.0
    assert correlation(samples, speech_like(2.0, RATE)[0]) > 0.98


def test_headers_followed_by_garbage_are_unsupported():
    header = encode("flac", 1.0, rate=RATE)[:42]  # "fLaC" and STREAMINFO promising 1 s
    garbage = np.random.default_rng(1).bytes(20000)

    # Either the stream analysis finds no usable stream parameters in the garbage, or the
    # decoder finds no decodable packet.
    with pytest.raises(UnsupportedAudio, match="cannot be decoded|damaged"):
        decode(header + garbage)


def test_zero_bytes_is_empty():
    for operation in (probe, decode):
        with pytest.raises(EmptyAudio) as caught:
            operation(b"")
        assert caught.value.code == "empty_audio"


def test_a_valid_file_without_samples_is_empty():
    data = wav_header_only()

    assert probe(data) == AudioInfo("wav", "pcm_s16le", RATE, 1, None)
    with pytest.raises(EmptyAudio):
        decode(data)


def test_errors_serialise_with_code_and_message():
    with pytest.raises(UnsupportedAudio) as caught:
        probe(b"not audio at all" * 10)

    assert caught.value.as_dict() == {"code": "unsupported_audio", "message": caught.value.message}


# Hostile files (docs/SECURITY.md, "Hostile uploads")


@pytest.mark.parametrize("rate", [8, 1000, 3999, 192001, 384000])
def test_implausible_sample_rates_are_unsupported_before_decoding(rate):
    data = wav_header(1, rate, seconds=0.01)
    for operation in (probe, decode):
        with pytest.raises(UnsupportedAudio, match=f"{rate} Hz"):
            operation(data)


def test_the_review_s_64_channel_384_khz_wav_is_unsupported():
    data = wav_header(64, 384000, seconds=0.2)
    for operation in (probe, decode):
        with pytest.raises(UnsupportedAudio):
            operation(data)


def test_more_than_8_channels_are_unsupported():
    for operation in (probe, decode):
        with pytest.raises(UnsupportedAudio, match="9 channels"):
            operation(wav_header(9, 16000, seconds=0.1))
    assert decode(wav_header(8, 16000, seconds=0.1)).size == 1600


def test_the_review_s_8_hz_flac_bomb_is_unsupported():
    data = flac_bomb(rate=8)
    assert len(data) < 10_000
    for operation in (probe, decode):
        with pytest.raises(UnsupportedAudio, match="8 Hz"):
            operation(data)
    with pytest.raises(UnsupportedAudio, match="8 Hz"):  # STREAMINFO says 16 kHz, frames 8 Hz
        probe(flac_bomb(rate=8, claimed_rate=16000))


def test_a_flac_bomb_at_a_plausible_rate_stops_at_the_limit():
    """4 kHz, 65,535-sample frames, STREAMINFO claiming 16 samples: the probe sees 4 ms, the
    decode stops when the audio passes the limit instead of decoding the rest."""
    data = flac_bomb(rate=4000, frames=40)
    assert probe(data).duration_s == pytest.approx(0.004)
    with pytest.raises(AudioTooLong) as caught:
        decode(data, max_seconds=60)
    assert 60 < caught.value.seconds < 60 + 65535 / 4000 + 1


def _frames(*specs):
    for rate, samples in specs:
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        yield frame


def test_a_frame_that_changes_to_an_implausible_rate_is_refused_before_conversion():
    frames = _bounded(_frames((16000, 1024), (8, 65535)), max_seconds=600)
    assert next(frames).sample_rate == 16000
    with pytest.raises(UnsupportedAudio, match="8 Hz"):
        next(frames)


def test_the_frame_that_passes_the_limit_is_never_handed_on():
    frames = _bounded(_frames((16000, 16000), (16000, 16000), (4000, 65535)), max_seconds=2)
    assert [f.samples for f in (next(frames), next(frames))] == [16000, 16000]
    with pytest.raises(AudioTooLong):
        next(frames)


PEAK_MEMORY = """
import resource, sys
sys.path.insert(0, "tests")
from audio.decode import {operation}
from audio_fixtures import mov_with_huge_png
data = mov_with_huge_png()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {operation}(data)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("operation", ["probe", "decode"])
def test_a_video_frame_is_never_decoded(operation):
    """The review's MOV: one 16000 x 16000 PNG frame (768 MB decoded) and 4 s of AAC. Probing
    and decoding the audio must not decode the picture: the peak memory of a fresh process
    grows by a few megabytes, not hundreds."""
    run = subprocess.run([sys.executable, "-c", PEAK_MEMORY.format(operation=operation)], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.split()[-1]) < 50, f"peak memory grew by {run.stdout.split()[-1]} MB"
