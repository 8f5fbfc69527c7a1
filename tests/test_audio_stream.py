import numpy as np
import pytest

from audio.pcm import ChunkConverter, PcmFormat, StreamError, chunk_samples
from audio.windows import Window, Windower, live_windows_after

from audio_fixtures import speech_like

RATE = 16000
S16_MONO = PcmFormat("s16le", 16000, 1)
F32_STEREO = PcmFormat("f32le", 48000, 2)


def s16_bytes(samples: np.ndarray) -> bytes:
    return np.round(np.asarray(samples) * 32767).astype("<i2").tobytes()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def ramp(seconds: float) -> np.ndarray:
    """Sample i holds the value i: a window's samples reveal exactly where it was cut."""
    return np.arange(int(seconds * RATE), dtype=np.float32)


def rejection(call, *args, **kwargs) -> tuple[str, str | None]:
    """The (code, field) of the StreamError that call(*args, **kwargs) raises."""
    with pytest.raises(StreamError) as caught:
        call(*args, **kwargs)
    return caught.value.code, caught.value.field


# --- format declaration -----------------------------------------------------------------


def test_a_valid_declaration_gives_a_format():
    declaration = {"encoding": "f32le", "sample_rate": 48000, "channels": 2, "extra": 1}

    fmt = PcmFormat.from_dict(declaration)

    assert fmt == F32_STEREO
    assert fmt.frame_bytes == 8
    assert fmt.as_dict() == {"encoding": "f32le", "sample_rate": 48000, "channels": 2}


@pytest.mark.parametrize(
    ("declaration", "field"),
    [
        ({"encoding": "mp3", "sample_rate": 16000, "channels": 1}, "encoding"),
        ({"encoding": ["s16le"], "sample_rate": 16000, "channels": 1}, "encoding"),
        ({"encoding": "s16le", "sample_rate": 7000, "channels": 1}, "sample_rate"),
        ({"encoding": "s16le", "sample_rate": 96000, "channels": 1}, "sample_rate"),
        ({"encoding": "s16le", "sample_rate": 16000.0, "channels": 1}, "sample_rate"),
        ({"encoding": "s16le", "sample_rate": "16000", "channels": 1}, "sample_rate"),
        ({"encoding": "s16le", "sample_rate": 16000, "channels": 0}, "channels"),
        ({"encoding": "s16le", "sample_rate": 16000, "channels": 6}, "channels"),
        ({"encoding": "s16le", "sample_rate": 16000, "channels": True}, "channels"),
        ({"sample_rate": 16000, "channels": 1}, "encoding"),
        ({"encoding": "s16le", "channels": 1}, "sample_rate"),
        ({"encoding": "s16le", "sample_rate": 16000}, "channels"),
        ("s16le/16000/1", "format"),
        (None, "format"),
    ],
)
def test_an_invalid_declaration_names_the_field(declaration, field):
    assert rejection(PcmFormat.from_dict, declaration) == ("invalid_format", field)


def test_errors_serialise_with_their_field():
    with pytest.raises(StreamError) as caught:
        PcmFormat("s16le", 16000, 3)

    assert caught.value.as_dict() == {
        "code": "invalid_format",
        "message": "channels must be 1 or 2",
        "field": "channels",
    }


# --- chunks -------------------------------------------------------------------------------


def test_s16_chunks_are_scaled_to_unit_range():
    chunk = np.array([-32768, 0, 16384, 32767], "<i2").tobytes()

    samples = chunk_samples(S16_MONO, chunk)

    np.testing.assert_array_equal(samples[:, 0], [-1.0, 0.0, 0.5, 32767 / 32768])
    assert samples.dtype == np.float32


def test_f32_chunks_are_split_into_channels():
    chunk = np.array([0.1, -0.2, 0.3, -0.4], "<f4").tobytes()

    samples = chunk_samples(F32_STEREO, chunk)

    np.testing.assert_array_equal(samples, np.array([[0.1, -0.2], [0.3, -0.4]], np.float32))


@pytest.mark.parametrize("chunk", ["text", [1, 2], None, 3, {"data": b"\x00\x00"}])
def test_a_chunk_that_is_not_binary_is_rejected(chunk):
    assert rejection(chunk_samples, S16_MONO, chunk) == ("invalid_chunk_type", None)


def test_an_empty_chunk_is_rejected():
    assert rejection(chunk_samples, S16_MONO, b"") == ("empty_chunk", None)


@pytest.mark.parametrize(
    ("fmt", "size"),
    [
        (S16_MONO, 3),
        (PcmFormat("s16le", 16000, 2), 6),
        (F32_STEREO, 12),
        (PcmFormat("f32le", 8000, 1), 2),
    ],
)
def test_a_chunk_of_partial_frames_is_rejected(fmt, size):
    assert rejection(chunk_samples, fmt, bytes(size)) == ("misaligned_chunk", None)


def test_chunks_up_to_the_limit_pass_and_larger_ones_are_rejected():
    one_second = bytes(RATE * 2)

    assert chunk_samples(S16_MONO, one_second).shape == (RATE, 1)
    assert rejection(chunk_samples, S16_MONO, one_second + bytes(2)) == ("chunk_too_large", None)
    tenth_and_a_bit = bytes(1602 * 2)
    assert rejection(chunk_samples, S16_MONO, tenth_and_a_bit, max_chunk_s=0.1) == (
        "chunk_too_large",
        None,
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_f32_samples_are_rejected(bad):
    chunk = np.array([0.0, 0.1, bad, 0.2], "<f4").tobytes()

    assert rejection(chunk_samples, F32_STEREO, chunk) == ("non_finite_samples", None)


def test_f32_samples_far_beyond_full_scale_are_rejected():
    chunk = np.array([0.0, 0.5, 100.0, 0.2], "<f4").tobytes()

    assert rejection(chunk_samples, F32_STEREO, chunk) == ("format_mismatch", None)


def test_s16_audio_declared_as_f32_is_rejected():
    chunk = s16_bytes(speech_like(0.1, 16000)[0])

    code, _ = rejection(chunk_samples, PcmFormat("f32le", 16000, 1), chunk)

    assert code in {"non_finite_samples", "format_mismatch"}


# --- conversion to 16 kHz mono ------------------------------------------------------------


def test_16k_mono_passes_through_unchanged():
    data = s16_bytes(speech_like(0.5, RATE)[0])
    converter = ChunkConverter(S16_MONO)

    out = np.concatenate([converter.convert(c) for c in chunked(data, 640)])

    np.testing.assert_array_equal(out, np.frombuffer(data, "<i2") / np.float32(32768))
    assert converter.flush().size == 0


def test_stereo_chunks_are_averaged():
    left, right = speech_like(0.2, RATE, channels=2)
    interleaved = np.stack([left, -0.5 * right], axis=1).astype("<f4").tobytes()

    out = ChunkConverter(PcmFormat("f32le", 16000, 2)).convert(interleaved)

    np.testing.assert_allclose(out, (left - 0.5 * right) / 2, atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_chunks_at_other_rates_are_resampled_to_16k(rate):
    seconds = 2.0
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.5 * np.sin(2 * np.pi * 440 * t)
    converter = ChunkConverter(PcmFormat("s16le", rate, 1))

    pieces = [converter.convert(c) for c in chunked(s16_bytes(signal), rate // 50 * 2)]  # 20 ms
    out = np.concatenate([*pieces, converter.flush()])

    assert out.size == pytest.approx(seconds * RATE, abs=2)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert np.fft.rfftfreq(out.size, 1 / RATE)[np.argmax(spectrum)] == pytest.approx(440, abs=1)


def test_resampling_in_chunks_equals_resampling_at_once():
    data = s16_bytes(speech_like(1.0, 44100)[0])
    whole = ChunkConverter(PcmFormat("s16le", 44100, 1), max_chunk_s=1.0)
    streamed = ChunkConverter(PcmFormat("s16le", 44100, 1))

    at_once = np.concatenate([whole.convert(data), whole.flush()])
    pieces = [streamed.convert(c) for c in chunked(data, 882 * 2)]  # 20 ms
    in_chunks = np.concatenate([*pieces, streamed.flush()])

    np.testing.assert_allclose(in_chunks, at_once, atol=1e-6)


def test_a_rejected_chunk_leaves_the_stream_intact():
    fmt = PcmFormat("s16le", 48000, 1)
    data = s16_bytes(speech_like(0.2, 48000)[0])
    first, second = data[:9600], data[9600:]
    clean, interrupted = ChunkConverter(fmt), ChunkConverter(fmt)

    expected = np.concatenate([clean.convert(first), clean.convert(second), clean.flush()])
    got = [interrupted.convert(first)]
    with pytest.raises(StreamError):
        interrupted.convert(second[:-1])
    got += [interrupted.convert(second), interrupted.flush()]

    np.testing.assert_array_equal(np.concatenate(got), expected)


# --- windows ------------------------------------------------------------------------------


def feed_all(windower: Windower, samples: np.ndarray, chunk: int) -> list[Window]:
    return [w for i in range(0, samples.size, chunk) for w in windower.feed(samples[i : i + chunk])]


def test_ten_seconds_give_eight_three_second_windows_one_second_apart():
    samples = ramp(10.0)

    windows = feed_all(Windower(3.0, 1.0), samples, 1600)

    assert [w.index for w in windows] == list(range(8))
    for w in windows:
        assert (w.start_s, w.end_s) == (w.index * 1.0, w.index * 1.0 + 3.0)
        assert w.samples.dtype == np.float32
        np.testing.assert_array_equal(w.samples, samples[w.index * RATE : (w.index + 3) * RATE])


def test_windows_do_not_depend_on_chunk_sizes():
    samples = ramp(7.3)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(samples.size, size=40, replace=False))
    irregular = Windower()

    windows = [w for part in np.split(samples, cuts) for w in irregular.feed(part)]
    reference = Windower().feed(samples)

    assert [w.index for w in windows] == [w.index for w in reference] == [0, 1, 2, 3, 4]
    for got, want in zip(windows, reference):
        np.testing.assert_array_equal(got.samples, want.samples)


def test_after_the_first_window_every_second_of_audio_gives_a_window():
    windower = Windower(3.0, 1.0)

    counts = [len(windower.feed(np.zeros(RATE, np.float32))) for _ in range(8)]

    assert counts == [0, 0, 1, 1, 1, 1, 1, 1]


def test_a_half_second_hop_gives_two_windows_per_second():
    windows = Windower(2.0, 0.5).feed(ramp(4.0))

    spans = [(w.start_s, w.end_s) for w in windows]
    assert spans == [(0.0, 2.0), (0.5, 2.5), (1.0, 3.0), (1.5, 3.5), (2.0, 4.0)]


def test_flush_after_a_stream_ending_on_a_window_boundary_gives_nothing():
    windower = Windower(3.0, 1.0)
    assert len(windower.feed(ramp(10.0))) == 8

    assert windower.flush() is None


def test_flush_returns_the_unanalysed_tail_unpadded():
    samples = ramp(10.5)
    windower = Windower(3.0, 1.0)
    assert len(windower.feed(samples)) == 8

    last = windower.flush()

    assert (last.index, last.start_s, last.end_s) == (8, 8.0, 10.5)
    np.testing.assert_array_equal(last.samples, samples[8 * RATE :])
    assert windower.flush() is None


def test_a_stream_shorter_than_a_window_is_flushed_whole():
    samples = ramp(2.5)
    windower = Windower(3.0, 1.0)
    assert windower.feed(samples) == []

    last = windower.flush()

    assert (last.index, last.start_s, last.end_s) == (0, 0.0, 2.5)
    np.testing.assert_array_equal(last.samples, samples)


@pytest.mark.parametrize("seconds", [0.0, 0.5, 0.99])
def test_a_stream_shorter_than_the_flush_minimum_gives_no_window(seconds):
    windower = Windower(3.0, 1.0, min_flush_s=1.0)
    windower.feed(ramp(seconds))

    assert windower.flush() is None


def test_emitted_windows_are_independent_copies():
    windower = Windower(1.0, 0.5)
    first, = windower.feed(ramp(1.0))
    first.samples[:] = -1

    second, = windower.feed(ramp(0.5))

    assert second.samples[0] == 0.5 * RATE


@pytest.mark.parametrize(("window_s", "hop_s"), [(3.0, 4.0), (3.0, 0.0), (3.0, -1.0)])
def test_a_hop_outside_the_window_is_refused(window_s, hop_s):
    with pytest.raises(ValueError):
        Windower(window_s, hop_s)


def test_feed_takes_mono_only():
    with pytest.raises(ValueError):
        Windower().feed(np.zeros((100, 2), np.float32))


def test_warmup_gives_growing_windows_until_the_first_full_one():
    windower = Windower(warmup=True)
    windows = []
    for _ in range(55):  # 5.5 s in 100 ms chunks
        windows += windower.feed(np.full(1600, 0.1, np.float32))
    last = windower.flush()
    spans = [(w.index, w.start_s, w.end_s, w.samples.size) for w in windows + [last]]
    assert spans == [(0, 0.0, 1.0, 16000), (1, 0.0, 2.0, 32000), (2, 0.0, 3.0, 48000),
                     (3, 1.0, 4.0, 48000), (4, 2.0, 5.0, 48000), (5, 3.0, 5.5, 40000)]


def test_live_windows_after_counts_what_a_warm_windower_has_cut():
    windower, cut = Windower(warmup=True), 0
    for chunk in range(1, 101):  # 10 s in 100 ms chunks
        cut += len(windower.feed(np.zeros(RATE // 10, np.float32)))
        assert live_windows_after(chunk * (RATE // 10) / RATE) == cut
