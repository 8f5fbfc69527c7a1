"""How the shipped model holds up in noise, in a room and on a call.

Users speak in kitchens and cafés, far from a laptop, over a phone; the corpora are clean studio
recordings. Each held-out speaker's clips (ml/train.py SHIPPED_HELD_OUT: RAVDESS actors 21-24 and
the shipped model's validation speakers of nEMO and ASED) are scored through the serving path
under each condition of CONDITIONS, cold and adapted online (each speaker's clips in the
protocol's fixed order, each scored with what was learned from the clips before it, heard in the
same condition), as ml.evaluate scores them clean. Reported per corpus and condition: UAR over the
corpus's classes, accuracy beside the mean top probability and the expected calibration error
(an underconfident model's too), the share of clips flagged uncertain (top probability below
params.UNCERTAIN_BELOW) with the accuracy of the others, and the share the silence gate hears
as silence.

Noise is mixed at a signal-to-noise ratio over the clip's speech (its loud frames): white noise,
or babble (four clips of other speakers, from the corpora's training speakers, at equal
levels). A room is a synthetic impulse response (a direct path, then exponentially decaying
noise over its RT60, at a direct-to-reverberant ratio of 0 dB). A call is ml.codec.phone_call.

    python -m ml.robustness [--data PATH]     # -> ml/reports/robustness.json, docs/model/robustness.png
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from tqdm import tqdm

from ml import calibration, codec, data, metrics, params
from ml.evaluate import DOCS, REPORTS, plot_corpus_panels, serving_scores
from ml.inference import EmotionRecognizer, is_all_silent
from ml.train import SHIPPED_HELD_OUT as SPEAKERS

SEED = 20261206
BABBLE_TALKERS = 4
# name: (kind, setting): SNR in dB for noise, RT60 in seconds for a room
CONDITIONS = {
    "clean": ("clean", None),
    "white noise 20 dB": ("white", 20.0), "white noise 10 dB": ("white", 10.0), "white noise 5 dB": ("white", 5.0),
    "babble 20 dB": ("babble", 20.0), "babble 10 dB": ("babble", 10.0), "babble 5 dB": ("babble", 5.0),
    "room 0.3 s": ("room", 0.3), "room 0.8 s": ("room", 0.8),
    "phone call": ("phone", None),
}


def speech_power(x: np.ndarray) -> float:
    """Mean power of the louder half of the clip's 20 ms frames: its speech, not its pauses."""
    n = params.SAMPLE_RATE // 50
    frames = x[:len(x) // n * n].reshape(-1, n) if len(x) >= n else x[None, :]
    power = np.sort((frames.astype(np.float64) ** 2).mean(axis=1))
    return float(power[len(power) // 2:].mean())


def mix(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """x with noise (as long as x) at snr_db below its speech."""
    gain = np.sqrt(speech_power(x) / max(float(np.mean(noise.astype(np.float64) ** 2)), 1e-20) / 10 ** (snr_db / 10))
    return (x + gain * noise).astype(np.float32)


def babble(length: int, talkers: list[np.ndarray], rng) -> np.ndarray:
    """BABBLE_TALKERS of `talkers`, each from a random point, looped to `length`, at equal levels."""
    out = np.zeros(length)
    for k in rng.choice(len(talkers), size=BABBLE_TALKERS, replace=False):
        t = talkers[k]
        looped = np.resize(np.roll(t, -int(rng.integers(len(t)))), length)
        out += looped / np.sqrt(max(np.mean(looped.astype(np.float64) ** 2), 1e-20))
    return out


def babble_talkers(clips) -> list[np.ndarray]:
    """Voices to make babble of: every 97th clip of `clips`, of speakers the shipped model was
    trained on (never a held-out one)."""
    held_out = {s for speakers in SPEAKERS.values() for s in speakers}
    return [data.load_waveform(c) for c in clips[::97] if c.speaker not in held_out]


def room(x: np.ndarray, rt60_s: float, rng) -> np.ndarray:
    """x in a room: convolved with a direct path and a tail of noise decaying 60 dB over rt60_s
    (equal energies), at x's level."""
    from scipy.signal import fftconvolve
    t = np.arange(int(rt60_s * params.SAMPLE_RATE)) / params.SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * np.exp(-np.log(1000.0) * t / rt60_s)
    impulse = np.concatenate([[1.0], tail / np.sqrt(np.sum(tail ** 2))])
    y = fftconvolve(x, impulse)[:len(x)]
    return (y * np.sqrt(np.mean(x.astype(np.float64) ** 2) / max(np.mean(y ** 2), 1e-20))).astype(np.float32)


def condition(x: np.ndarray, name: str, talkers, rng) -> np.ndarray:
    kind, setting = CONDITIONS[name]
    if kind == "white":
        return mix(x, rng.standard_normal(len(x)), setting)
    if kind == "babble":
        return mix(x, babble(len(x), talkers, rng), setting)
    if kind == "room":
        return room(x, setting, rng)
    if kind == "phone":
        return codec.phone_call(x)
    return x


def score(rec, clips, waves, name, talkers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cold and adapted probabilities of the clips in one condition, and which were all silence."""
    silent = np.zeros(len(clips), bool)

    def heard(i):
        x = np.clip(condition(waves[i], name, talkers, np.random.default_rng([SEED, i, sum(map(ord, name))])),
                    -1.0, 1.0)
        silent[i] = is_all_silent(x)
        return x

    return *serving_scores(rec, clips, heard), silent


def summary(probs, labels) -> dict:
    pred, top = probs.argmax(1), probs.max(1)
    right, certain = pred == labels, top >= params.UNCERTAIN_BELOW
    return {**metrics.own_classes(labels, pred),
            "accuracy": round(float(right.mean()), 4),
            "mean_confidence": round(float(top.mean()), 4),
            "ece": round(calibration.reliability(probs, labels)["ece"], 4),
            "uncertain": round(float(1 - certain.mean()), 4),
            "accuracy_when_certain": round(float(right[certain].mean()), 4) if certain.any() else None}


def _draw(ax, corpus_report):
    rows, names = corpus_report["conditions"], list(CONDITIONS)
    at = np.arange(len(names))
    for offset, mode, colour in ((-0.2, "cold", "#999999"), (0.2, "adapted", "#4c72b0")):
        ax.bar(at + offset, [rows[n][mode]["uar"] for n in names], width=0.4, color=colour, label=mode)
    ax.set_xticks(at, names, rotation=60, ha="right", fontsize=7)
    ax.legend(fontsize=7)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    rec = EmotionRecognizer.load()
    t0 = time.time()
    everyone = data.load_corpora(a.data)
    talkers = babble_talkers(everyone)
    report = {"model": rec.model_path.name, "uncertain_below": params.UNCERTAIN_BELOW,
              "babble_talkers": BABBLE_TALKERS, "babble_clips": len(talkers), "speakers": SPEAKERS, "corpora": {}}
    with tqdm(total=len(SPEAKERS) * len(CONDITIONS), desc="corpora x conditions", unit="condition") as progress:
        for corpus, speakers in SPEAKERS.items():
            clips = [c for c in everyone if c.corpus == corpus and c.speaker in speakers]
            waves = [data.load_waveform(c) for c in clips]
            labels = np.array([c.label for c in clips])
            rows = {}
            for name in CONDITIONS:
                cold, adapted, silent = score(rec, clips, waves, name, talkers)
                rows[name] = {"cold": summary(cold, labels), "adapted": summary(adapted, labels),
                              "silent": round(float(silent.mean()), 4)}
                progress.update(1)
            report["corpora"][corpus] = {"clips": len(clips), "conditions": rows}
    report["seconds"] = round(time.time() - t0, 1)
    report["image"] = plot_corpus_panels(report["corpora"], "Shipped model, held-out speakers: UAR in noise, in a "
                                         "room and on a call", DOCS / "robustness.png", _draw)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "robustness.json").write_text(json.dumps(report, indent=1) + "\n")
    for corpus, r in report["corpora"].items():
        print(f"{corpus} ({r['clips']} clips): UAR cold / adapted; adapted: accuracy, mean confidence, ECE, "
              "uncertain; silent")
        for name, row in r["conditions"].items():
            a = row["adapted"]
            print(f"  {name:18s} {row['cold']['uar']:.3f} / {a['uar']:.3f}  acc {a['accuracy']:.2f}  "
                  f"conf {a['mean_confidence']:.2f}  ECE {a['ece']:.3f}  uncertain {a['uncertain']:.2f} "
                  f"(the rest right {a['accuracy_when_certain'] or 0:.2f})  silent {row['silent']:.2f}")


if __name__ == "__main__":
    main()
