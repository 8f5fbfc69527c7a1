"""What an upload's result says as a whole: the share of its spoken windows in which each
emotion came out on top, and whether one emotion dominates or the recording is mixed.

The mean of the probabilities (the result's `overall`) hides a recording that is one third
angry, one third sad and one third happy behind one middling "happy"; counting windows keeps
each part visible. Pure: no Flask, no database.
"""
from collections import Counter

from ml.params import CLASSES

# An emotion dominates a recording when it is on top in more than this share of its spoken
# windows; otherwise the recording is "mixed".
DOMINATES_ABOVE = 0.5


def breakdown(dominants):
    """{distribution: class -> share of windows, top: the most frequent class (None without
    windows), mixed: no class on top in more than half of them}; ties go to the class order."""
    counts = Counter(dominants)
    total = sum(counts[name] for name in CLASSES)
    if not total:
        return {"distribution": {name: 0.0 for name in CLASSES}, "top": None, "mixed": False}
    distribution = {name: counts[name] / total for name in CLASSES}
    top = max(CLASSES, key=lambda name: counts[name])
    return {"distribution": distribution, "top": top, "mixed": distribution[top] <= DOMINATES_ABOVE}
