"""Environment responses: light, sound, visuals and smart-home settings for an emotional state.

A deterministic mapping from (probabilities, valence, arousal, intensity) to plain dicts, plus
the anti-flicker pair ``smooth_state`` / ``should_emit``. Light, sound and visuals mirror the
state (the "mirror" of Mood Mirror, and music therapy's iso principle: meet a mood before
moving it); the smart-home settings regulate it. Tables, formulas and reasons:
docs/environment.md. No Flask, MongoEngine or TensorFlow here.
"""
from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple


class EmotionStyle(NamedTuple):
    hue: float         # degrees on the HSV circle
    saturation: float  # 0..1, how strongly the emotion is coloured
    value: float       # 0..1, how bright the emotion's light is
    waveform: str      # Web Audio OscillatorNode type
    pattern: str       # visual pattern name


# Hues follow Plutchik's wheel where a class has a counterpart; the rationale per row is in
# docs/environment.md.
STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(40.0, 0.10, 0.80, "sine", "drift"),
    "calm": EmotionStyle(165.0, 0.45, 0.75, "sine", "waves"),
    "happy": EmotionStyle(50.0, 0.85, 1.00, "triangle", "bloom"),
    "sad": EmotionStyle(225.0, 0.65, 0.55, "sine", "rain"),
    "angry": EmotionStyle(0.0, 0.90, 0.90, "sawtooth", "pulse"),
    "fearful": EmotionStyle(130.0, 0.60, 0.45, "square", "flutter"),
    "disgust": EmotionStyle(285.0, 0.55, 0.60, "sawtooth", "swirl"),
    "surprised": EmotionStyle(190.0, 0.75, 0.95, "triangle", "burst"),
}
FALLBACK = "neutral"

# Church modes from brightest to darkest; valence +1 picks the first, -1 the last.
MODES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("lydian", (0, 2, 4, 6, 7, 9, 11, 12)),
    ("ionian", (0, 2, 4, 5, 7, 9, 11, 12)),
    ("mixolydian", (0, 2, 4, 5, 7, 9, 10, 12)),
    ("dorian", (0, 2, 3, 5, 7, 9, 10, 12)),
    ("aeolian", (0, 2, 3, 5, 7, 8, 10, 12)),
    ("phrygian", (0, 1, 3, 5, 7, 8, 10, 12)),
    ("locrian", (0, 1, 3, 5, 6, 8, 10, 12)),
)
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
A3_HZ, A3_MIDI = 220.0, 57

# sRGB (IEC 61966-2-1) linear RGB -> CIE XYZ, D65 white.
SRGB_TO_XYZ = (
    (0.4124, 0.3576, 0.1805),
    (0.2126, 0.7152, 0.0722),
    (0.0193, 0.1192, 0.9505),
)
D65_XY = (0.3127, 0.3290)
D65_XYZ = (0.95047, 1.0, 1.08883)

SMOOTHING_ALPHA = 0.3      # weight of the newest reading in the moving average
SMOOTHING_MAX_GAP_S = 30.0  # an older state belongs to another stretch of speech: restart
EMIT_MARGIN = 0.1          # a new dominant must lead the old one by this much probability
EMIT_DELTA_E = 10.0        # CIELAB colour difference that counts as a visible change
EMIT_DRIFT_INTERVAL_S = 5.0  # a colour drift (same emotion) changes the room at most this often


# ---------------------------------------------------------------------------- colour maths


def _clamp(x: float, low: float, high: float) -> float:
    return min(high, max(low, x))


def _round_half_up(x: float) -> int:
    # round() rounds halves to even, which would make equal steps map unevenly.
    return math.floor(x + 0.5)


def _linearise(channel: float) -> float:
    if channel <= 0.04045:
        return channel / 12.92
    return ((channel + 0.055) / 1.055) ** 2.4


def srgb_to_xyz(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """Gamma-encoded sRGB in [0, 1] to CIE 1931 XYZ (Y of white = 1)."""
    linear = [_linearise(c) for c in rgb]
    x, y, z = (sum(m * c for m, c in zip(row, linear)) for row in SRGB_TO_XYZ)
    return x, y, z


def srgb_to_xy(rgb: tuple[float, float, float]) -> tuple[float, float]:
    """CIE 1931 chromaticity of an sRGB colour; black has none, so it gets the D65 white point."""
    x, y, z = srgb_to_xyz(rgb)
    total = x + y + z
    if total <= 0.0:
        return D65_XY
    return x / total, y / total


def srgb_to_lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    def f(t: float) -> float:
        delta = 6 / 29
        return t ** (1 / 3) if t > delta**3 else t / (3 * delta**2) + 4 / 29

    fx, fy, fz = (f(c / n) for c, n in zip(srgb_to_xyz(rgb), D65_XYZ))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def hex_to_rgb(hex_colour: str) -> tuple[float, float, float]:
    digits = hex_colour.lstrip("#")
    r, g, b = (int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return r, g, b


def delta_e(hex_a: str, hex_b: str) -> float:
    """CIE76 colour difference between two #rrggbb colours (about 2.3 is just noticeable)."""
    return math.dist(srgb_to_lab(hex_to_rgb(hex_a)), srgb_to_lab(hex_to_rgb(hex_b)))


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb((hue % 360.0) / 360.0, saturation, value)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{_round_half_up(c * 255):02x}" for c in rgb)


def blend_colours(
    weights: Mapping[str, float], styles: Mapping[str, EmotionStyle] = STYLES
) -> tuple[float, float, float]:
    """Probability-weighted (hue, saturation, value) of the emotions' colours.

    Each colour is a point (s cos h, s sin h) on the HSV colour disc and the blend is their
    weighted centroid: hue wraps correctly (350 deg and 10 deg blend to 0, not 180) and
    opposing hues cancel towards white instead of landing on an unrelated third hue.
    """
    x = y = value = total = 0.0
    for label, weight in weights.items():
        style = styles.get(label)
        if style is None or weight <= 0.0:
            continue
        angle = math.radians(style.hue)
        x += weight * style.saturation * math.cos(angle)
        y += weight * style.saturation * math.sin(angle)
        value += weight * style.value
        total += weight
    if total == 0.0:
        fallback = STYLES[FALLBACK]
        return fallback.hue, fallback.saturation, fallback.value
    saturation = math.hypot(x, y) / total
    hue = math.degrees(math.atan2(y, x)) % 360.0 if saturation > 1e-9 else 0.0
    return hue, saturation, value / total


# ---------------------------------------------------------------------------- the mapping


def _dominant(probabilities: Mapping[str, float]) -> str:
    if not probabilities:
        return FALLBACK
    return min(probabilities, key=lambda label: (-probabilities[label], label))


def _lighting(probabilities: Mapping[str, float], arousal01: float, intensity: float) -> dict[str, Any]:
    hue, saturation, value = blend_colours(probabilities)
    # A faint or uncertain emotion gets a paler light rather than a wrong vivid one.
    saturation *= 0.5 + 0.5 * intensity
    brightness = _clamp(value * (0.6 + 0.4 * arousal01), 0.05, 1.0)
    shown = _hsv_to_rgb(hue, saturation, brightness)
    # xy is taken at full value: chromaticity should not drift with dimming, the bulb's
    # brightness is sent separately.
    x, y = srgb_to_xy(_hsv_to_rgb(hue, saturation, 1.0))
    # White-only bulbs approximate the hue's warmth: reds and yellows warm, blues cool.
    warmth = saturation * math.cos(math.radians(hue - 45.0))
    kelvin = 100 * _round_half_up(_clamp(4000.0 - 1800.0 * warmth, 2200.0, 6500.0) / 100)
    return {
        "hue": round(hue, 1),
        "saturation": round(saturation, 3),
        "rgb": [_round_half_up(c * 255) for c in shown],
        "hex": _hex(shown),
        "brightness": round(brightness, 3),
        "color_temperature_k": kelvin,
        "cie_xy": [round(x, 4), round(y, 4)],
        # Calm states fade slowly; aroused ones follow quickly so the light feels responsive.
        "transition_ms": 100 * _round_half_up((400 + 2600 * (1.0 - arousal01)) / 100),
    }


def _note_name(midi: int) -> str:
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def _audio(style: EmotionStyle, valence: float, arousal: float, intensity: float) -> dict[str, Any]:
    mode, steps = MODES[_round_half_up((1.0 - valence) / 2 * (len(MODES) - 1))]
    semitones = _round_half_up(12 * arousal)  # A2..A4, always a real equal-tempered note
    root = A3_HZ * 2 ** (semitones / 12)
    arousal01 = (arousal + 1) / 2
    return {
        "base_frequency_hz": round(root, 2),
        "root_note": _note_name(A3_MIDI + semitones),
        "mode": mode,
        "scale_hz": [round(root * 2 ** (step / 12), 2) for step in steps],
        "tempo_bpm": _round_half_up(60 + 60 * arousal01),
        "waveform": style.waveform,
        # Ambient stays ambient: capped at 0.6 of full scale.
        "volume": round(0.15 + 0.25 * arousal01 + 0.2 * intensity, 3),
    }


def _visual(style: EmotionStyle, lighting: Mapping[str, Any], arousal01: float, intensity: float) -> dict[str, Any]:
    hue, saturation, value = lighting["hue"], lighting["saturation"], lighting["brightness"]
    palette = [
        _hex(_hsv_to_rgb(hue - 30.0, saturation, value)),
        lighting["hex"],
        _hex(_hsv_to_rgb(hue + 30.0, saturation, value)),
        _hex(_hsv_to_rgb(hue, saturation * 0.4, min(1.0, value + 0.2))),
    ]
    return {
        "type": style.pattern,
        "particle_count": _round_half_up(40 + 360 * arousal01 * (0.5 + 0.5 * intensity)),
        "speed": round(0.25 + 1.75 * arousal01, 3),
        "palette": palette,
    }


def _ventilation(valence: float, arousal: float) -> tuple[str, int, str]:
    if arousal > 0.4:
        advice = ("Boost ventilation: cooler fresh air helps agitation settle."
                  if valence < 0 else "Boost ventilation: fresh air keeps the energy from turning stuffy.")
        return "boost", 800, advice
    if arousal < -0.4 and valence >= 0:
        return "quiet", 1000, "Keep ventilation quiet; the room is restful."
    if valence < -0.3:
        return "normal", 1000, "Let in daylight and fresh air; a short break outside may lift the mood."
    return "normal", 1000, "Keep ventilation at its normal rate."


def _smart_home(valence: float, arousal: float) -> dict[str, Any]:
    level, co2_limit, advice = _ventilation(valence, arousal)
    return {
        # Within the ASHRAE 55 winter comfort band; cooler when aroused, warmer when low.
        "temperature_c": _round_half_up(2 * (21.5 - 1.5 * arousal)) / 2,
        "humidity_pct": _round_half_up(45 - 5 * arousal),
        "ventilation": level,
        "co2_limit_ppm": co2_limit,
        "advice": advice,
    }


def environment_response(state: Mapping[str, Any]) -> dict[str, Any]:
    """Lighting, audio, visual and smart-home settings for one emotional state.

    ``state`` needs ``probabilities``, ``valence``, ``arousal`` and ``intensity``: a reading
    or the output of ``smooth_state``. Labels without a style (e.g. an external detector's)
    are ignored for colour; with none known the neutral style is used.
    """
    probabilities = dict(state["probabilities"])
    valence = _clamp(float(state["valence"]), -1.0, 1.0)
    arousal = _clamp(float(state["arousal"]), -1.0, 1.0)
    intensity = _clamp(float(state["intensity"]), 0.0, 1.0)
    dominant = _dominant(probabilities)
    style = STYLES.get(dominant, STYLES[FALLBACK])
    arousal01 = (arousal + 1) / 2
    lighting = _lighting(probabilities, arousal01, intensity)
    return {
        "state": {
            "dominant": dominant,
            "confidence": round(probabilities.get(dominant, 0.0), 4),
            "probabilities": {label: round(p, 4) for label, p in probabilities.items()},
            "valence": round(valence, 4),
            "arousal": round(arousal, 4),
            "intensity": round(intensity, 4),
        },
        "lighting": lighting,
        "audio": _audio(style, valence, arousal, intensity),
        "visual": _visual(style, lighting, arousal01, intensity),
        "smart_home": _smart_home(valence, arousal),
    }


# ---------------------------------------------------------------------------- anti-flicker


def _epoch(moment: datetime | None) -> float | None:
    # Epoch seconds keep the state JSON-safe for Redis; naive datetimes from pymongo are UTC.
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _state_of(reading: Mapping[str, Any]) -> dict[str, Any]:
    probabilities = {label: float(p) for label, p in reading["probabilities"].items()}
    return {
        "probabilities": probabilities,
        "dominant": _dominant(probabilities),
        "valence": float(reading["valence"]),
        "arousal": float(reading["arousal"]),
        "intensity": float(reading["intensity"]),
        "timestamp": _epoch(reading.get("timestamp")),
    }


def smooth_state(
    previous_state: Mapping[str, Any] | None,
    reading: Mapping[str, Any],
    alpha: float = SMOOTHING_ALPHA,
    *,
    max_gap_s: float | None = SMOOTHING_MAX_GAP_S,
) -> dict[str, Any]:
    """Exponential moving average of probabilities, valence, arousal and intensity.

    s = alpha * reading + (1 - alpha) * previous, per field and per class (a missing class
    counts as 0). Starts afresh without a previous state or when the readings are more than
    ``max_gap_s`` apart. Returns a JSON-safe dict (``timestamp`` in epoch seconds) to store
    in MongoDB or Redis as is; ``environment_response`` accepts it.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError("alpha must be in (0, 1]")
    current = _state_of(reading)
    if previous_state is None:
        return current
    before, now = previous_state.get("timestamp"), current["timestamp"]
    if max_gap_s is not None and before is not None and now is not None and now - before > max_gap_s:
        return current

    def mix(new: float, old: float) -> float:
        return alpha * new + (1.0 - alpha) * old

    old_probabilities = previous_state["probabilities"]
    labels = list(dict.fromkeys([*old_probabilities, *current["probabilities"]]))
    probabilities = {
        label: mix(current["probabilities"].get(label, 0.0), old_probabilities.get(label, 0.0))
        for label in labels
    }
    return {
        "probabilities": probabilities,
        "dominant": _dominant(probabilities),
        "valence": mix(current["valence"], previous_state["valence"]),
        "arousal": mix(current["arousal"], previous_state["arousal"]),
        "intensity": mix(current["intensity"], previous_state["intensity"]),
        "timestamp": current["timestamp"],
    }


def emitted_summary(response: Mapping[str, Any]) -> dict[str, Any]:
    """What ``should_emit`` reads of the last emitted response: kept between readings instead of
    the whole response (a tenth of its JSON, which the worker stores and reads every window)."""
    return {"state": {"dominant": response["state"]["dominant"]}, "lighting": {"hex": response["lighting"]["hex"]}}


def should_emit(
    previous_response: Mapping[str, Any] | None,
    new_response: Mapping[str, Any],
    *,
    margin: float = EMIT_MARGIN,
    min_delta_e: float = EMIT_DELTA_E,
    seconds_since: float | None = None,
    min_drift_interval_s: float = EMIT_DRIFT_INTERVAL_S,
) -> bool:
    """Hysteresis against the last *emitted* response.

    Emit when there is none yet, when the dominant emotion changed and the new one leads the
    old one by at least ``margin`` probability, or when the light's colour moved by more
    than ``min_delta_e`` (CIE76 on the shown colour, so brightness counts too) and at least
    ``min_drift_interval_s`` have passed since the last emitted response (``seconds_since``,
    None when unknown): a change of emotion shows at once, a drift within one at most every
    few seconds, so the room does not follow each reading's colour while a mood settles.
    """
    if previous_response is None:
        return True
    old_dominant = previous_response["state"]["dominant"]
    new_state = new_response["state"]
    if new_state["dominant"] != old_dominant:
        probabilities = new_state["probabilities"]
        lead = probabilities[new_state["dominant"]] - probabilities.get(old_dominant, 0.0)
        if lead >= margin - 1e-9:  # rounded probabilities: 0.5 - 0.4 must count as 0.1
            return True
    if seconds_since is not None and seconds_since < min_drift_interval_s:
        return False
    return delta_e(previous_response["lighting"]["hex"], new_response["lighting"]["hex"]) > min_delta_e
