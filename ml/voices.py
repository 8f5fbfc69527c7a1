"""Would more training voices make the model hear new corpora? A learning curve.

The model card concludes that the left-out corpora need more and more varied training speakers.
This measures which "more" matters, on the nEMO and ASED LOCO folds: runs of the shipped recipe
trained on a fixed, nested share of each training corpus's speakers (``--set speaker_share=...``,
ml/train.py), and on one training corpus instead of two, against the same recipe on every
training speaker (BASELINES). Each run takes about as many optimisation steps as the baselines
(its epochs scaled by the inverse of its examples an epoch), so a smaller share is not also a
shorter training. UAR on the left-out corpus as ``ml.evaluate`` scores it (the run's own
validation temperature; argmax over the classes the fold trains).

    python -m ml.voices [--data PATH]     # -> ml/reports/voices.json, docs/model/voices.png
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ml import data
from ml.evaluate import DOCS, REPORTS, RUN_REPORTS, TARGETS, save_figure, unit
from ml.train import RECIPE_VERSION, trained_masks

REPORT = REPORTS / "voices.json"
FOLDS = ("nemo", "ased")
# the shipped recipe at 15 epochs on every training speaker, seeds 20260-20262: the card's tenth
# screen and its third seed, made under recipe 6 with neutral weighed twice, which recipe 7 is; a
# speaker_share run of as many steps compares with these
BASELINES = ("nb", "nbb", "nbc")
NAMES = {"ravdess": "RAVDESS", "nemo": "nEMO", "ased": "ASED"}
# (score, its line of means, its dots of single runs, the line's label) in the figure
MODES = (("adapted", dict(ls="-", color="tab:blue"), dict(color="tab:blue", alpha=0.45),
          "adapted (mean of the seeds; filled)"),
         ("cold", dict(ls="--", color="tab:gray"), dict(facecolors="none", edgecolors="tab:gray"),
          "cold (mean; hollow)"))


def shares(info: dict, fold: str) -> dict:
    """{training corpus: share of its training speakers} of a run (1.0 where not reduced)."""
    share = info["config"].get("speaker_share", {})
    return {c: share.get(c, 1.0) for c in data.CORPORA if c != fold and share.get(c, 1.0) > 0}


def runs(fold: str) -> list[dict]:
    """The fold's run reports that measure the curve: the baselines and every speaker_share run."""
    infos = (json.loads(path.read_text()) for path in sorted(RUN_REPORTS.glob(f"loco_{fold}_*.json")))
    return [info for info in infos
            if info["name"].removeprefix(f"loco_{fold}_") in BASELINES or info["config"].get("speaker_share")]


def setting_of(share: dict) -> str:
    corpora = " + ".join(NAMES[c] for c in share)
    levels = set(share.values())
    return corpora + ("" if levels == {1.0} else f", {'/'.join(f'{v:g}' for v in sorted(levels))} of the voices")


def measure(clips) -> dict:
    masks = trained_masks(clips)
    report = {"recipe": RECIPE_VERSION, "baselines": list(BASELINES), "folds": {}}
    for fold in FOLDS:
        rows, by = [], defaultdict(list)
        for info in runs(fold):
            r = unit(info["name"], data.class_mask(clips, fold), masks[fold])
            share = shares(info, fold)
            row = {"run": info["name"], "seed": info["config"]["seed"], "epochs": info["config"]["epochs"],
                   "setting": setting_of(share), "shares": share, "train_speakers": info["train_speakers"],
                   "train_clips": info["train_clips"], "cold": r["cold"]["uar"], "adapted": r["adapted"]["uar"],
                   "neutral_adapted": r["adapted"]["per_class_recall"]["neutral"]}
            rows.append(row)
            by[row["setting"]].append(row)
        settings = [{"setting": s, "corpora": len(rs[0]["shares"]), "train_speakers": rs[0]["train_speakers"],
                     "runs": len(rs), "seeds": sorted(r["seed"] for r in rs),
                     "cold": round(float(np.mean([r["cold"] for r in rs])), 4),
                     "adapted": round(float(np.mean([r["adapted"] for r in rs])), 4)}
                    for s, rs in sorted(by.items(), key=lambda kv: kv[1][0]["train_speakers"])]
        report["folds"][fold] = {"clips": sum(c.corpus == fold for c in clips), "runs": rows, "settings": settings}
    return report


def plot(report: dict, path: Path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, len(FOLDS), figsize=(5.2 * len(FOLDS), 4.0), dpi=110, sharey=True)
    for ax, fold in zip(axes, FOLDS):
        r = report["folds"][fold]
        two = [s for s in r["settings"] if s["corpora"] == 2]
        for s in r["settings"]:
            marker = "o" if s["corpora"] == 2 else "^"
            mine = [x for x in r["runs"] if x["setting"] == s["setting"]]
            for mode, _, dots, _ in MODES:
                ax.scatter([x["train_speakers"] for x in mine], [x[mode] for x in mine], marker=marker, s=16, **dots)
            ax.annotate(s["setting"], (s["train_speakers"], s["adapted"]), fontsize=6, xytext=(4, 5),
                        textcoords="offset points")
        for mode, line, _, label in MODES:
            ax.plot([s["train_speakers"] for s in two], [s[mode] for s in two], label=label, **line)
        ax.axhline(TARGETS["loco_uar_adapted"], color="tab:red", lw=0.8, ls=":", label="adapted target")
        ax.set_xscale("log")
        ticks = sorted({s["train_speakers"] for s in two})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_ylim(0.2, 0.55)
        ax.set_xlabel("training speakers (circles: two corpora; triangles: one)")
        ax.set_title(f"{NAMES[fold]} left out ({r['clips']} clips)", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    axes[0].set_ylabel("UAR on the left-out corpus")
    fig.suptitle("More voices of the same corpora, or another corpus? (ml/reports/voices.json)", fontsize=9)
    return save_figure(fig, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    report = measure(data.load_corpora(a.data))
    report["figure"] = plot(report, DOCS / "voices.png")
    REPORT.write_text(json.dumps(report, indent=1) + "\n")
    for fold in FOLDS:
        print(f"{NAMES[fold]} left out:")
        for s in report["folds"][fold]["settings"]:
            print(f"  {s['setting']:<40} {s['train_speakers']:>3} speakers, {s['runs']} runs: "
                  f"cold {s['cold']:.3f}, adapted {s['adapted']:.3f}")
    print(f"-> {REPORT}")


if __name__ == "__main__":
    main()
