"""What the `mood-mirror` commands print: errors, JSON Lines, tables, progress bars, and the
live display of a stream's events."""
import json
import os
import shutil
import sys
import threading
import time

from mood_mirror.errors import PROG


def err(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def quiet_stdout():
    """The reader of standard output went away (`| head`): later writes, and the flush at exit,
    go nowhere instead of raising BrokenPipeError, as standard Unix tools behave."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def print_json(obj, out=None):
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False) + "\n")
    (out or sys.stdout).flush()


def print_table(rows, right=()):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())


def progress_bar(args, **kwargs):
    from tqdm import tqdm

    return tqdm(disable=True if args.quiet else None, file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)


def display_mode(args):
    if args.json:
        return "json"
    return "tty" if sys.stdout.isatty() else "lines"


class LiveDisplay:
    """Shows a live stream's events: one updating line on a terminal, one line per window
    otherwise, or JSON Lines with --json. Called from the Socket.IO thread and the sender."""

    def __init__(self, mode, out=None):
        self.mode = mode  # "tty", "lines" or "json"
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.last = None
        self.windows = self.dropped = self.errors = 0
        self.delay = None
        self.sent_s = 0.0
        self.counts = {}
        # Set when the reader of the output went away; the sender stops the stream then.
        self.reader_gone = threading.Event()
        unicode_ok = "utf" in (getattr(self.out, "encoding", "") or "").lower()
        self.full, self.empty, self.sep = ("█", "░", "│") if unicode_ok else ("#", "-", "|")

    def write(self, text):
        """Write and flush (with the lock held); a closed pipe ends the output quietly."""
        if self.reader_gone.is_set():
            return
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.reader_gone.set()
            if self.out is sys.stdout:
                quiet_stdout()

    def bar(self, value, width=10):
        filled = max(0, min(width, round((value or 0) * width)))
        return self.full * filled + self.empty * (width - filled)

    def emotion(self, event):
        with self.lock:
            self.windows += 1
            self.last = event
            self.delay = max(0.0, time.time() - event["received_at"]) if event.get("received_at") else None
            self.counts[event["dominant"]] = self.counts.get(event["dominant"], 0) + 1
            if self.mode == "json":
                self.write(json.dumps({"event": "emotion", **event}, ensure_ascii=False) + "\n")
            elif self.mode == "lines":
                self.write(self.window_line(event) + "\n")
            else:
                self.redraw()

    def window_line(self, event):
        span = f"{event.get('window_start') or 0:6.1f}-{event.get('window_end') or 0:5.1f} s"
        head = f"window {event.get('window_index', '?'):>3}  {span}  "
        if event.get("silence"):
            return head + "silence"
        return (head + f"{event['dominant']:<9} confidence {event['confidence']:.2f}  "
                f"valence {event['valence']:+.2f}  arousal {event['arousal']:+.2f}  "
                f"intensity {event['intensity']:.2f}")

    def lag(self, data):
        with self.lock:
            self.dropped = data.get("dropped_total", self.dropped + data.get("dropped", 0))
            if self.mode == "json":
                self.write(json.dumps({"event": "lag", **data}, ensure_ascii=False) + "\n")
            elif self.mode == "lines":
                self.write(f"lag: the server dropped {data.get('dropped')} window(s) it could not analyse "
                           f"in time ({self.dropped} so far)\n")
            else:
                self.redraw()

    def error(self, data):
        with self.lock:
            self.errors += 1
            if self.mode == "json":
                self.write(json.dumps({"event": "error", **data}, ensure_ascii=False) + "\n")
            else:
                if self.mode == "tty":
                    self.write("\r\x1b[K")
                err(f"server: {data.get('message')} [{data.get('code')}]")
                if self.mode == "tty":
                    self.redraw()

    def progress(self, sent_s):
        with self.lock:
            self.sent_s = sent_s
            if self.mode == "tty":
                self.redraw()

    def redraw(self):
        event = self.last
        if event is None:
            head = "listening…" if self.sep == "│" else "listening..."
        elif event.get("silence"):
            head = f"{'(silence)':<10} {self.empty * 10}       valence   --   arousal   --"
        else:
            head = (f"{event['dominant']:<10} {self.bar(event['confidence'])} {event['confidence']:4.0%}  "
                    f"valence {event['valence']:+.2f}  arousal {event['arousal']:+.2f}")
        delay = f"{self.delay:.1f}s" if self.delay is not None else "--"
        tail = (f" {self.sep} {self.sent_s:5.1f}s audio  {self.windows} windows  lag {delay}  "
                f"dropped {self.dropped}  errors {self.errors}")
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.write("\r" + (head + tail)[:width] + "\x1b[K")

    def finish(self, summary, live):
        with self.lock:
            if self.mode == "tty":
                self.write("\n")
            spoken = {k: v for k, v in self.counts.items() if k != "silence"}
            dominant = max(spoken, key=spoken.get) if spoken else None
            record = {"event": "summary", "session_id": summary.get("session_id"),
                      "windows": summary.get("windows"), "analysed": len(live.emotions),
                      "dropped_total": live.dropped(), "errors": len(live.errors), "dominant": dominant}
            if self.mode == "json":
                self.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                mostly = (f"; mostly {dominant} ({spoken[dominant]} of {sum(spoken.values())} spoken windows)"
                          if dominant else "; no speech heard")
                self.write(f"session {record['session_id']}: {record['windows']} windows, "
                           f"{record['analysed']} analysed, {record['dropped_total']} dropped, "
                           f"{record['errors']} errors{mostly}\n")
            return record
