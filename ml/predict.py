"""Predict emotions for audio files.

    python -m ml.predict FILE... [--adapt] [--json] [--window 3.0] [--hop 1.0] [--model PATH]

With --adapt the files are one speaker's recordings in the order given: each file is
scored with the speaker statistics learned from the files before it (never from itself
or later ones; see ml/adapt.py).  Without it every file is scored cold.

Reads what an upload may be (audio/decode.py: WAV, FLAC, Ogg, MP3, WebM, MP4/M4A), any
sample rate, mono or multi-channel, decoded to 16 kHz mono as an upload is.
With --json, prints one JSON object per line per file: file, duration_s,
probabilities, dominant, confidence, valence, arousal, intensity, silence, and for
files longer than one window a "timeline" list (start/end seconds + the same fields).
Unreadable or unusable files give {"file": ..., "error": ...} and exit status 1.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from ml import params


def analyse(rec, path, window_s, hop_s, history=None) -> tuple[dict, object]:
    """The file's result, and the statistics its speech adds to the speaker's history."""
    from audio.decode import decode
    # The product's own decoder: a phone's M4A or a browser's WebM reads here as it uploads, and a
    # file gives what its upload would. No length limit: the caller chose the file.
    x, sr = decode(path, params.SAMPLE_RATE, max_seconds=math.inf), params.SAMPLE_RATE
    reading, added = rec.predict(x, sr, history, with_stats=True)
    res = {"file": str(path), "duration_s": round(len(x) / sr, 3), **reading}
    if len(x) / sr > window_s:
        res["timeline"] = rec.timeline(x, sr, window_s=window_s, hop_s=hop_s, history=history)
    return res, added


def _human(res) -> str:
    if "error" in res:
        return f"{res['file']}: ERROR {res['error']}"
    if res["silence"]:
        return f"{res['file']}: silence"
    top = sorted(res["probabilities"].items(), key=lambda kv: -kv[1])[:3]
    tops = ", ".join(f"{c} {p:.2f}" for c, p in top)
    line = (f"{res['file']}: {res['dominant']} ({res['confidence']:.2f}; {tops}) "
            f"valence {res['valence']:+.2f} arousal {res['arousal']:+.2f} "
            f"intensity {res['intensity']:.2f}")
    for seg in res.get("timeline", []):
        line += f"\n  {seg['start']:7.2f}-{seg['end']:7.2f} s  {seg['dominant']}"
        if not seg["silence"]:
            line += f" ({seg['confidence']:.2f})"
    return line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--adapt", action="store_true",
                    help="the files are one speaker's, in order: adapt to them online")
    ap.add_argument("--json", action="store_true", help="one JSON object per line per file")
    ap.add_argument("--window", type=float, default=params.WINDOW_SECONDS, help="timeline window (s)")
    ap.add_argument("--hop", type=float, default=1.0, help="timeline hop (s)")
    ap.add_argument("--model", default=None, help="a .tflite model (default: the shipped one)")
    a = ap.parse_args(argv)
    from ml import adapt
    from ml.inference import EmotionRecognizer
    rec = EmotionRecognizer.load(a.model)
    status = 0
    history = adapt.empty()
    for f in a.files:
        try:
            res, added = analyse(rec, f, a.window, a.hop, history if a.adapt else None)
            if a.adapt:
                history = adapt.merge(history, added)
        except Exception as exc:  # report per file, keep going
            res = {"file": str(f), "error": f"{type(exc).__name__}: {exc}"}
            status = 1
        print(json.dumps(res) if a.json else _human(res), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
