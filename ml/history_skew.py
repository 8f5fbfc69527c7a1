"""Does adaptation still help when a speaker's history is not a mix of emotions?

The protocol's adapted scores (ml.evaluate) learn each speaker's voice from their earlier clips,
and an acted corpus's speaker portrays every emotion about equally often, so that history is a
balanced mix. A user's is not: most of what a person says into the product is neutral, some
users are upset for a whole session. The speaker statistics (ml/adapt.py) are the mean and
spread of their speech's spectrum and pitch, so a history of one emotion could make that emotion
the voice's "normal" and pull its windows toward others. This measures it on the shipped model.

Each held-out speaker's clips are scored with histories of the same size (HISTORY_CLIPS of the
speaker's other clips, never the clip itself) drawn from: every emotion ("mixed", what the
protocol's speakers have), one emotion only ("only <emotion>", for each emotion the corpus
has), or none ("cold"). A second check changes the channel instead: the clips as a phone call
carries them (ml.codec.phone_call: 8 kHz, Opus at 12 kbit/s), scored cold, with a mixed history
heard on the same channel, and with one heard as the corpus recorded it (a baseline learned on a
laptop's microphone, then a call). A third follows a mixed history with 15 or 60 s of sound that
the silence gate lets through (NOISES: a fan, hiss, other people talking), as a microphone left
open would add. Speakers the shipped model was not trained on: RAVDESS actors 21-24
(the test split), and its validation speakers of nEMO and ASED (used only to fit its
temperature). UAR over each corpus's own classes, argmax over all the model's classes, as
the protocol scores.

    python -m ml.history_skew [--data PATH]      # -> ml/reports/history_skew.json, docs/model/history_skew.png
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from tqdm import tqdm

from ml import adapt, codec, data, metrics, params
from ml.evaluate import DOCS, REPORTS, plot_corpus_panels
from ml.robustness import babble, babble_talkers
from ml.train import SHIPPED_HELD_OUT as SPEAKERS

HISTORY_CLIPS = 8
SEED = 20261206
# Sounds that the silence gate lets through (ml/inference.py is_silent), and that a baseline
# would learn from were a microphone left open on them: name, level in dBFS.
NOISES = (("a fan (pink noise)", -35.0), ("white noise", -40.0), ("babble", -30.0))
NOISE_SECONDS = (15, 60)


def history_for(i, pool, stats, rng) -> np.ndarray:
    """A history pooled from up to HISTORY_CLIPS clips of `pool` other than clip i."""
    others = [j for j in pool if j != i]
    chosen = rng.choice(others, size=min(HISTORY_CLIPS, len(others)), replace=False) if others else []
    return adapt.merge_all([stats[j] for j in chosen]) if len(chosen) else adapt.empty()


def noise_windows(talkers) -> dict[str, list[np.ndarray]]:
    """max(NOISE_SECONDS) of each of NOISES, as 3 s windows."""
    rng = np.random.default_rng(SEED)
    n = params.WINDOW_SAMPLES
    spectrum = 1 / np.sqrt(np.maximum(np.arange(n // 2 + 1), 1))

    def make(name):
        if name.startswith("a fan"):
            return np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * spectrum, n)
        return babble(n, talkers, rng) if name == "babble" else rng.standard_normal(n)

    out = {}
    for name, dbfs in NOISES:
        windows = [make(name) for _ in range(max(NOISE_SECONDS) // 3)]
        out[name] = [(w * 10 ** (dbfs / 20) / np.sqrt(np.mean(w ** 2))).astype(np.float32) for w in windows]
    return out


def _scored(rec, waves, pool, stats, key, progress, then=()):
    """Probabilities of `waves` each with a history from `pool` (never the clip itself), followed
    by the statistics `then` (windows heard after it), and the mean number of clips those
    histories hold."""
    rng = np.random.default_rng([SEED, sum(map(ord, key))])
    histories = [history_for(i, pool, stats, rng) for i in range(len(waves))]
    for added in then:
        histories = [adapt.merge(h, added) for h in histories]
    progress.update(1)
    members = set(pool)
    return (np.array([rec.clip_probabilities(x, h)[0] for x, h in zip(waves, histories)]),
            float(np.mean([min(HISTORY_CLIPS, len(members) - (i in members)) for i in range(len(waves))])))


def score_speaker(rec, clips, noise, progress) -> tuple[dict, dict, dict]:
    """Probabilities of one speaker's clips under each kind of history, on the phone channel
    under each history's channel, and with a mixed history followed by noise (`noise`: the
    statistics of each 3 s window of each of NOISES), each with the mean number of clips its
    histories hold."""
    waves = [data.load_waveform(c) for c in clips]
    cold, stats = zip(*(rec.clip_probabilities(x, adapt.empty()) for x in waves))
    labels = np.array([c.label for c in clips])
    everyone = list(range(len(clips)))
    pools = {"mixed": everyone} | {f"only {params.CLASSES[e]}": list(np.flatnonzero(labels == e))
                                   for e in sorted(set(labels))}
    kinds = {"cold": (np.array(cold), 0.0)}
    kinds |= {kind: _scored(rec, waves, pool, stats, clips[0].speaker + kind, progress) for kind, pool in pools.items()}
    calls = [codec.phone_call(x) for x in waves]
    call_cold, call_stats = zip(*(rec.clip_probabilities(x, adapt.empty()) for x in calls))
    channels = {"cold": (np.array(call_cold), 0.0),
                "history on the same channel": _scored(rec, calls, everyone, call_stats, clips[0].speaker + "mixed",
                                                       progress),
                "history on another channel": _scored(rec, calls, everyone, stats, clips[0].speaker + "mixed",
                                                      progress)}
    noisy = {"mixed": kinds["mixed"]}
    noisy |= {f"mixed, then {seconds} s of {name}": _scored(rec, waves, everyone, stats, clips[0].speaker + "mixed",
                                                           progress, then=windows[:seconds // 3])
              for name, windows in noise.items() for seconds in NOISE_SECONDS}
    return kinds, channels, noisy


def _rows(by_kind, present) -> dict:
    rows = {}
    for kind, (probs, labels, sizes) in by_kind.items():
        probs, labels = np.concatenate(probs), np.array(labels)
        row = {**metrics.own_classes(labels, probs.argmax(1)), "history_clips": round(float(np.mean(sizes)), 2)}
        if kind.startswith("only "):
            row["predicted_as_history_emotion"] = round(float(np.mean(probs.argmax(1) ==
                                                                     params.CLASSES.index(kind[5:]))), 4)
        if kind == "cold":
            row["predicted_as"] = {params.CLASSES[e]: round(float(np.mean(probs.argmax(1) == e)), 4) for e in present}
        rows[kind] = row
    return rows


def _draw(ax, corpus_report):
    rows = corpus_report["histories"]
    kinds = list(rows)
    colours = ["#999999" if k == "cold" else "#4c72b0" if k == "mixed" else "#dd8452" for k in kinds]
    ax.bar(range(len(kinds)), [rows[k]["uar"] for k in kinds], color=colours)
    ax.axhline(rows["cold"]["uar"], color="#555555", lw=0.8, ls="--")
    ax.set_xticks(range(len(kinds)), kinds, rotation=60, ha="right", fontsize=7)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    from ml.inference import EmotionRecognizer
    rec = EmotionRecognizer.load()
    t0 = time.time()
    corpora = {c: [clip for clip in data.load_metadata(a.data, c) if clip.speaker in SPEAKERS[c]] for c in SPEAKERS}
    noise = {name: [rec.clip_probabilities(w, adapt.empty())[1] for w in windows]
             for name, windows in noise_windows(babble_talkers(data.load_corpora(a.data))).items()}
    units = sum(len(SPEAKERS[c]) * (3 + len(NOISES) * len(NOISE_SECONDS) + len({clip.label for clip in clips}))
                for c, clips in corpora.items())
    report = {"model": rec.model_path.name, "history_clips": HISTORY_CLIPS, "phone": dict(zip(
        ("codec", "bit_rate", "sample_rate"), codec.PHONE)), "noises_dbfs": dict(NOISES), "speakers": SPEAKERS,
        "corpora": {}}
    with tqdm(total=units, desc="speakers x histories", unit="history") as progress:
        for corpus, clips in corpora.items():
            by_kind: dict[str, list] = {}
            by_channel: dict[str, list] = {}
            by_noise: dict[str, list] = {}
            for speaker in SPEAKERS[corpus]:
                own = [c for c in clips if c.speaker == speaker]
                for results, into in zip(score_speaker(rec, own, noise, progress), (by_kind, by_channel, by_noise)):
                    for kind, (probs, size) in results.items():
                        entry = into.setdefault(kind, [[], [], []])
                        entry[0].append(probs)
                        entry[1].extend(c.label for c in own)
                        entry[2].append(size)
            present = sorted({c.label for c in clips})
            report["corpora"][corpus] = {"clips": len(clips), "histories": _rows(by_kind, present),
                                         "phone_channel": _rows(by_channel, present),
                                         "noise_after": _rows(by_noise, present)}
    report["seconds"] = round(time.time() - t0, 1)
    REPORTS.mkdir(exist_ok=True)
    report["image"] = plot_corpus_panels(
        report["corpora"], f"Shipped model, held-out speakers: UAR by what their history holds ({HISTORY_CLIPS} clips)",
        DOCS / "history_skew.png", _draw)
    (REPORTS / "history_skew.json").write_text(json.dumps(report, indent=1) + "\n")
    for corpus, r in report["corpora"].items():
        print(f"{corpus} ({r['clips']} clips)")
        for kind, row in r["histories"].items():
            extra = (f"  predicted as {kind[5:]}: {row['predicted_as_history_emotion']:.2f}"
                     if "predicted_as_history_emotion" in row else "")
            neutral = row["per_class_recall"].get("neutral", float("nan"))
            print(f"  {kind:18s} UAR {row['uar']:.3f}  neutral {neutral:.2f}{extra}")
        for kind, row in r["phone_channel"].items():
            print(f"  phone call, {kind:28s} UAR {row['uar']:.3f}")
        for kind, row in r["noise_after"].items():
            print(f"  {kind:40s} UAR {row['uar']:.3f}")


if __name__ == "__main__":
    main()
