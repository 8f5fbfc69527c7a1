"""python -m ml.predict reads what the product's uploads accept (audio/decode.py), with the
reading the same audio gives as a WAV."""
import json

import numpy as np
import pytest

from ml import predict
from tests import audio_fixtures

SECONDS = 4.0
LOSSY = ("mp3", "ogg_opus", "webm_opus", "m4a_aac")


def _run(capsys, *args):
    status = predict.main(["--json", *map(str, args)])
    return status, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_phone_and_browser_formats_read_as_their_wav_does(tmp_path, capsys):
    reference = audio_fixtures.write(tmp_path, "wav_s16", SECONDS)
    lossy = [audio_fixtures.write(tmp_path, name, SECONDS) for name in LOSSY]
    status, results = _run(capsys, reference, *lossy)
    assert status == 0, results
    wav = results[0]
    assert not wav["silence"] and wav["duration_s"] == pytest.approx(SECONDS, abs=0.01)
    for path, result in zip(lossy, results[1:]):
        assert result["file"] == str(path)
        # Encoders pad the start or the end by a few milliseconds.
        assert result["duration_s"] == pytest.approx(SECONDS, abs=0.1), result
        got = np.array([result["probabilities"][c] for c in wav["probabilities"]])
        want = np.array(list(wav["probabilities"].values()))
        assert np.abs(got - want).max() < 0.1, (path.name, result["probabilities"], wav["probabilities"])
        assert len(result["timeline"]) == len(wav["timeline"])


def test_a_file_that_is_no_audio_is_reported_and_the_others_still_scored(tmp_path, capsys):
    junk = tmp_path / "notes.m4a"
    junk.write_bytes(b"not audio at all " * 64)
    good = audio_fixtures.write(tmp_path, "flac", SECONDS)
    status, results = _run(capsys, junk, good)
    assert status == 1
    assert results[0]["file"] == str(junk) and "UnsupportedAudio" in results[0]["error"]
    assert "error" not in results[1] and not results[1]["silence"]
