"""Valence, arousal and intensity from the 8 class probabilities (pure numpy).

The web app imports this module: it must not import TensorFlow.

Mapping (a documented design choice, not learned): each class is placed on the
unit circle of Russell's circumplex model of affect (Russell, J. A. (1980). A
circumplex model of affect. *Journal of Personality and Social Psychology*, 39(6),
1161-1178. https://doi.org/10.1037/h0077714).  The paper orders affect around the
circle as pleasure 0 deg, excitement 45, arousal 90, distress 135, displeasure 180,
depression 225, sleepiness 270, relaxation 315.  We place our classes between
those anchors (angles counter-clockwise from the positive-valence axis; valence =
cos, arousal = sin); the exact angles are our judgement, not values from the paper:

    class      between the anchors            angle   valence  arousal
    happy      pleasure .. excitement            10     +0.98    +0.17
    surprised  excitement .. arousal             70     +0.34    +0.94
    angry      arousal .. distress              110     -0.34    +0.94
    fearful    arousal .. distress              125     -0.57    +0.82
    disgust    distress .. displeasure          150     -0.87    +0.50
    sad        displeasure .. depression        210     -0.87    -0.50
    calm       relaxation                       315     +0.71    -0.71
    neutral    centre of the circle               -      0.00     0.00

valence, arousal = sum_k p_k * (cos theta_k, sin theta_k): the expected position,
inside the unit disk, so both lie in [-1, 1].  intensity = the distance of that
point from the neutral centre, in [0, 1]: 0 for neutral or an even spread of
opposite emotions, 1 for a certain, non-neutral emotion.
"""
from __future__ import annotations

import math

import numpy as np

from ml import params

CIRCUMPLEX_DEGREES = {
    "happy": 10.0,
    "surprised": 70.0,
    "angry": 110.0,
    "fearful": 125.0,
    "disgust": 150.0,
    "sad": 210.0,
    "calm": 315.0,
}

#: (valence, arousal) per class, in params.CLASSES order
COORDINATES = np.array([
    (0.0, 0.0) if c == "neutral" else
    (math.cos(math.radians(CIRCUMPLEX_DEGREES[c])), math.sin(math.radians(CIRCUMPLEX_DEGREES[c])))
    for c in params.CLASSES
])


def _as_vector(probabilities) -> np.ndarray:
    if isinstance(probabilities, dict):
        p = np.array([float(probabilities[c]) for c in params.CLASSES])
    else:
        p = np.asarray(probabilities, dtype=float).reshape(-1)
    if p.shape != (params.NUM_CLASSES,) or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"expected {params.NUM_CLASSES} finite non-negative probabilities")
    s = p.sum()
    if s <= 0:
        raise ValueError("probabilities sum to zero")
    return p / s


def valence_arousal(probabilities) -> tuple[float, float]:
    """Expected circumplex position: (valence, arousal), each in [-1, 1]."""
    v, a = _as_vector(probabilities) @ COORDINATES
    return float(np.clip(v, -1.0, 1.0)), float(np.clip(a, -1.0, 1.0))


def intensity(probabilities) -> float:
    """Distance from the neutral centre of the circumplex, in [0, 1]."""
    v, a = valence_arousal(probabilities)
    return float(min(1.0, math.hypot(v, a)))


def describe(probabilities) -> dict:
    """valence, arousal and intensity together (rounded to 4 decimals)."""
    v, a = valence_arousal(probabilities)
    return {"valence": round(v, 4), "arousal": round(a, 4),
            "intensity": round(min(1.0, math.hypot(v, a)), 4)}
