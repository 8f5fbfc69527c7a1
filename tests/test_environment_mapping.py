"""Environment mapping: colour maths against reference values, the mapping on hand-worked
states, smoothing and hysteresis on a wobbling sequence."""
import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from app.environment.mapping import (
    STYLES,
    EmotionStyle,
    blend_colours,
    delta_e,
    emitted_summary,
    environment_response,
    should_emit,
    smooth_state,
    srgb_to_lab,
    srgb_to_xy,
)
from ml.params import CLASSES

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------- colour maths


@pytest.mark.parametrize(("rgb", "xy"), [
    ((1.0, 1.0, 1.0), (0.3127, 0.3290)),   # D65 white
    ((0.5, 0.5, 0.5), (0.3127, 0.3290)),   # any grey has the white point's chromaticity
    ((1.0, 0.0, 0.0), (0.6400, 0.3300)),   # sRGB primaries (IEC 61966-2-1)
    ((0.0, 1.0, 0.0), (0.3000, 0.6000)),
    ((0.0, 0.0, 1.0), (0.1500, 0.0600)),
    ((0.0, 0.0, 0.0), (0.3127, 0.3290)),   # black: no chromaticity, white point by convention
])
def test_srgb_to_xy_reference_values(rgb, xy):
    assert srgb_to_xy(rgb) == pytest.approx(xy, abs=2e-4)


def test_gamma_is_linearised():
    # Mid-grey 0.5 is 21.4 % linear luminance, not 50 %: L* 53.39.
    lightness = srgb_to_lab((0.5, 0.5, 0.5))[0]
    assert lightness == pytest.approx(53.39, abs=0.01)


def test_lab_reference_values():
    assert srgb_to_lab((1.0, 1.0, 1.0)) == pytest.approx((100.0, 0.0, 0.0), abs=0.02)
    assert srgb_to_lab((1.0, 0.0, 0.0)) == pytest.approx((53.24, 80.09, 67.20), abs=0.05)
    assert delta_e("#000000", "#ffffff") == pytest.approx(100.0, abs=0.02)
    assert delta_e("#336699", "#336699") == 0.0


def test_hue_blend_wraps_around_the_circle():
    styles = {"a": EmotionStyle(350.0, 1.0, 1.0, "sine", "x"), "b": EmotionStyle(10.0, 1.0, 0.5, "sine", "x")}
    hue, saturation, value = blend_colours({"a": 0.5, "b": 0.5}, styles)
    assert hue == pytest.approx(0.0, abs=1e-9) or hue == pytest.approx(360.0)
    assert saturation == pytest.approx(math.cos(math.radians(10)))  # centroid of two unit vectors
    assert value == pytest.approx(0.75)


def test_opposite_hues_cancel_to_white():
    styles = {"a": EmotionStyle(0.0, 0.8, 1.0, "sine", "x"), "b": EmotionStyle(180.0, 0.8, 1.0, "sine", "x")}
    assert blend_colours({"a": 0.5, "b": 0.5}, styles)[1] == pytest.approx(0.0, abs=1e-9)


def test_angry_disgust_blend_is_not_the_linear_average():
    # angry 0.9 at 0 deg, disgust 0.55 at 285 deg, half each:
    # x = 0.45 + 0.275 cos 285 = 0.52118, y = 0.275 sin 285 = -0.26563 -> atan2 = -27.0 deg = 333.0
    # (averaging the numbers 0 and 285 would give a green 142.5 deg).
    hue, saturation, _ = blend_colours({"angry": 0.5, "disgust": 0.5})
    assert hue == pytest.approx(333.0, abs=0.05)
    assert saturation == pytest.approx(math.hypot(0.52118, 0.26563), abs=1e-4)


# ---------------------------------------------------------------------------- the mapping


SAD = {"probabilities": {"sad": 1.0}, "valence": -0.6, "arousal": -0.4, "intensity": 1.0}


def test_sad_state_mapping_worked_by_hand():
    response = environment_response(SAD)
    light = response["lighting"]
    assert light["hue"] == 225.0 and light["saturation"] == 0.65
    # brightness = 0.55 * (0.6 + 0.4 * 0.3) = 0.396; HSV(225, 0.65, 0.396) -> (35, 52, 101)
    assert light["brightness"] == 0.396
    assert light["rgb"] == [35, 52, 101] and light["hex"] == "#233465"
    # warmth = 0.65 cos(225 - 45) = -0.65 -> 4000 + 1170 = 5170 -> 5200 K
    assert light["color_temperature_k"] == 5200
    assert light["transition_ms"] == 2200  # 400 + 2600 * 0.7 = 2220
    assert light["cie_xy"] == pytest.approx(srgb_to_xy((0.35, 0.5125, 1.0)), abs=1e-4)
    audio = response["audio"]
    # mode index round((1 + 0.6) / 2 * 6) = round(4.8) = 5; root 12 * -0.4 = -4.8 -> -5 semitones
    assert audio["mode"] == "phrygian"
    assert audio["root_note"] == "E3" and audio["base_frequency_hz"] == 164.81
    assert audio["scale_hz"][:3] == [164.81, 174.61, 196.0]
    assert audio["tempo_bpm"] == 78 and audio["waveform"] == "sine"
    assert audio["volume"] == 0.425  # 0.15 + 0.25 * 0.3 + 0.2 * 1
    visual = response["visual"]
    assert visual["type"] == "rain" and visual["particle_count"] == 148 and visual["speed"] == 0.775
    assert visual["palette"][1] == "#233465" and len(visual["palette"]) == 4
    home = response["smart_home"]
    assert home["temperature_c"] == 22.0  # 21.5 + 0.6 = 22.1 -> nearest half degree
    assert home["humidity_pct"] == 47
    assert home["ventilation"] == "normal" and "daylight" in home["advice"]
    assert response["state"]["dominant"] == "sad" and response["state"]["confidence"] == 1.0


@pytest.mark.parametrize(("valence", "mode"),
                         [(1.0, "lydian"), (0.0, "dorian"), (-1.0, "locrian"), (0.5, "mixolydian")])
def test_mode_follows_valence(valence, mode):
    assert environment_response({**SAD, "valence": valence})["audio"]["mode"] == mode


@pytest.mark.parametrize(("arousal", "hz", "note", "bpm"),
                         [(1.0, 440.0, "A4", 120), (-1.0, 110.0, "A2", 60), (0.0, 220.0, "A3", 90)])
def test_pitch_and_tempo_follow_arousal(arousal, hz, note, bpm):
    audio = environment_response({**SAD, "arousal": arousal})["audio"]
    assert (audio["base_frequency_hz"], audio["root_note"], audio["tempo_bpm"]) == (hz, note, bpm)


def test_smart_home_regulates_arousal():
    agitated = environment_response({"probabilities": {"angry": 1.0}, "valence": -0.7, "arousal": 0.9,
                                     "intensity": 0.8})
    home = agitated["smart_home"]
    assert ((home["temperature_c"], home["humidity_pct"], home["ventilation"], home["co2_limit_ppm"])
            == (20.0, 41, "boost", 800))
    resting = environment_response({"probabilities": {"calm": 1.0}, "valence": 0.4, "arousal": -0.7, "intensity": 0.5})
    assert resting["smart_home"]["ventilation"] == "quiet"
    assert resting["smart_home"]["temperature_c"] == 22.5  # 21.5 + 1.05 = 22.55


def test_every_class_has_a_distinct_style():
    assert set(STYLES) == set(CLASSES)
    assert len({style.hue for style in STYLES.values()}) == len(STYLES)


def test_pure_emotion_keeps_its_hue_and_uncertainty_pales_it():
    sure = environment_response({"probabilities": {"happy": 1.0}, "valence": 0.7, "arousal": 0.5, "intensity": 1.0})
    faint = environment_response({"probabilities": {"happy": 1.0}, "valence": 0.7, "arousal": 0.5, "intensity": 0.0})
    assert sure["lighting"]["hue"] == faint["lighting"]["hue"] == 50.0
    assert sure["lighting"]["saturation"] == 0.85 and faint["lighting"]["saturation"] == 0.425


def test_unknown_labels_fall_back_to_neutral_colour():
    response = environment_response({"probabilities": {"silence": 1.0}, "valence": 0.0, "arousal": 0.0,
                                     "intensity": 0.5})
    assert response["lighting"]["hue"] == STYLES["neutral"].hue
    assert response["visual"]["type"] == STYLES["neutral"].pattern


def test_mapping_is_deterministic_and_json_safe():
    state = {"probabilities": {"happy": 0.6, "neutral": 0.3, "sad": 0.1}, "valence": 0.5, "arousal": 0.4,
             "intensity": 0.7}
    first = environment_response(state)
    assert first == environment_response(dict(state))
    assert json.loads(json.dumps(first)) == first


# ---------------------------------------------------------------------------- smoothing and hysteresis


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_smoothing_is_an_exponential_moving_average():
    first = smooth_state(None, {"timestamp": at(0), "probabilities": {"happy": 1.0}, "valence": 0.8, "arousal": 0.2,
                                "intensity": 1.0})
    second = smooth_state(first, {"timestamp": at(1), "probabilities": {"sad": 1.0}, "valence": -0.2, "arousal": -0.4,
                                  "intensity": 0.0}, 0.25)
    assert second["probabilities"] == pytest.approx({"happy": 0.75, "sad": 0.25})
    assert second["valence"] == pytest.approx(0.55)       # 0.25 * -0.2 + 0.75 * 0.8
    assert second["arousal"] == pytest.approx(0.05)
    assert second["intensity"] == pytest.approx(0.75)
    assert second["dominant"] == "happy"
    assert second["timestamp"] == at(1).timestamp()
    assert json.loads(json.dumps(second)) == second


def test_smoothing_restarts_after_a_long_gap_and_rejects_bad_alpha():
    first = smooth_state(None, {"timestamp": at(0), "probabilities": {"happy": 1.0}, "valence": 0.8, "arousal": 0.2,
                                "intensity": 1.0})
    later = {"timestamp": at(31), "probabilities": {"sad": 1.0}, "valence": -0.2, "arousal": -0.4, "intensity": 0.0}
    assert smooth_state(first, later)["probabilities"] == {"sad": 1.0}
    assert smooth_state(first, later, max_gap_s=None)["probabilities"] == pytest.approx({"happy": 0.7, "sad": 0.3})
    with pytest.raises(ValueError):
        smooth_state(first, later, 0.0)


def response(dominant, probabilities, hex_colour="#808080"):
    return {"state": {"dominant": dominant, "probabilities": probabilities}, "lighting": {"hex": hex_colour}}


def test_should_emit_margin_and_colour_rules():
    previous = response("happy", {"happy": 0.5, "neutral": 0.4})
    assert should_emit(None, previous)
    assert not should_emit(previous, response("neutral", {"neutral": 0.47, "happy": 0.43}))  # lead 0.04
    assert should_emit(previous, response("neutral", {"neutral": 0.5, "happy": 0.4}))         # lead 0.1
    assert not should_emit(previous, response("happy", {"happy": 0.5}, "#8a8a8a"))            # dE ~3.8
    assert should_emit(previous, response("happy", {"happy": 0.5}, "#a0a0a0"))                # dE ~12.3
    # a drift waits until EMIT_DRIFT_INTERVAL_S have passed since the last response; a change of emotion does not
    assert not should_emit(previous, response("happy", {"happy": 0.5}, "#a0a0a0"), seconds_since=4.0)
    assert should_emit(previous, response("happy", {"happy": 0.5}, "#a0a0a0"), seconds_since=5.0)
    assert should_emit(previous, response("neutral", {"neutral": 0.5, "happy": 0.4}), seconds_since=1.0)


WOBBLE_A = {"probabilities": {"happy": 0.48, "neutral": 0.42, "calm": 0.10}, "valence": 0.35, "arousal": 0.15,
            "intensity": 0.45}
WOBBLE_B = {"probabilities": {"neutral": 0.48, "happy": 0.42, "calm": 0.10}, "valence": 0.30, "arousal": 0.10,
            "intensity": 0.40}
ANGRY = {"probabilities": {"angry": 0.8, "neutral": 0.2}, "valence": -0.6, "arousal": 0.8, "intensity": 0.9}


def run_pipeline(readings):
    """One reading a second, as app/environment/store.py runs them."""
    state, emitted, indices = None, None, []
    for i, reading in enumerate(readings):
        state = smooth_state(state, {**reading, "timestamp": at(i)})
        candidate = environment_response(state)
        if should_emit(emitted, candidate, seconds_since=i - indices[-1] if indices else None):
            emitted = candidate
            indices.append(i)
    return indices, emitted


def test_wobbling_emotion_does_not_flicker():
    wobble = [WOBBLE_A if i % 2 == 0 else WOBBLE_B for i in range(20)]
    raw = [environment_response(r)["state"]["dominant"] for r in wobble]
    assert raw.count("happy") == raw.count("neutral") == 10  # the raw label flips every reading
    indices, emitted = run_pipeline(wobble)
    assert indices == [0]
    assert emitted["state"]["dominant"] == "happy"


def test_hysteresis_decides_the_same_against_the_summary_kept_of_the_last_response():
    rng = np.random.default_rng(7)
    states = [{"probabilities": dict(zip(CLASSES, rng.dirichlet(np.full(len(CLASSES), 0.5)))),
               "valence": rng.uniform(-1, 1), "arousal": rng.uniform(-1, 1), "intensity": rng.uniform(0, 1)}
              for _ in range(200)]
    responses = [environment_response(state) for state in states]
    decisions = [(should_emit(old, new, seconds_since=since), should_emit(emitted_summary(old), new,
                                                                         seconds_since=since))
                 for old, new in zip(responses, responses[1:]) for since in (1.0, 10.0)]
    assert all(whole == summary for whole, summary in decisions)
    assert {whole for whole, _ in decisions} == {True, False}  # both outcomes were exercised


def test_real_change_is_followed_then_settles():
    wobble = [WOBBLE_A if i % 2 == 0 else WOBBLE_B for i in range(20)]
    indices, emitted = run_pipeline(wobble + [ANGRY] * 15)
    assert indices[0] == 0 and indices[1] == 20      # the first angry reading already moves the light
    assert max(indices) < 30                          # settled: nothing in the last five readings
    assert len(indices) <= 7
    assert emitted["state"]["dominant"] == "angry"
