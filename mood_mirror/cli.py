"""`mood-mirror`: the Mood Mirror command-line client (docs/CLI.md).

    mood-mirror login [--email E] [--register]
    mood-mirror stream --mic [--device D] [--rate R] [--list-devices] [--duration S]
    mood-mirror stream --file FILE [--fast]
    mood-mirror analyze FILE... [--json]
    mood-mirror sessions [--json]
    mood-mirror export --format csv|json [--output FILE]
    mood-mirror logout

Built on mood_mirror.client (REST and Socket.IO). Exit codes: 0 done, 1 the server answered an
error or could not be reached, 2 a usage or local problem (bad option, unreadable file, no
pyaudio, no microphone), 3 not signed in or the sign-in was refused (401), 130 interrupted.
"""
import argparse
import getpass
import importlib.util
import json
import mimetypes
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

from mood_mirror import config
from mood_mirror.client import ApiClientError, MoodMirrorClient
from mood_mirror.mic import SAMPLE_RATES, MicError

PROG = "mood-mirror"
EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
CHUNK_MS = 100
# --fast keeps at most this many windows waiting for the workers, below the server's
# drop-oldest limit (STREAM_MAX_PENDING, 10 by default), so a fast stream loses nothing.
FAST_IN_FLIGHT = 4
FAST_STALL_S = 30.0
# Errors that concern one uploaded file; any other error stops `analyze` altogether.
PER_FILE_STATUSES = (413, 415, 422)
STREAM_FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}


class CliError(Exception):
    """A problem to report as one line, with the exit code it deserves."""

    def __init__(self, message, exit_code=EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text, limit=300):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe_error(exc, hint=True):
    """An ApiClientError as one readable line."""
    if exc.status is None:
        return one_line(exc.message)
    try:
        phrase = HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = "error"
    line = f"{exc.status} {phrase}: {one_line(exc.message)}"
    if exc.code and exc.code not in ("http_error",):
        line += f" [{exc.code}]"
    if hint and exc.status == 401:
        line += f"; sign in again with: {PROG} login"
    elif hint and exc.status == 429:
        line += "; wait a minute and try again"
    return line


def exit_code_for(exc):
    return EXIT_AUTH if exc.status == 401 else EXIT_SERVER


def err(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def print_json(obj, out=None):
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False) + "\n")
    (out or sys.stdout).flush()


# -- sign-in and server -------------------------------------------------------------------

def normalize_server(url):
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the server must be an http:// or https:// URL, not {url!r}")
    return url


class Context:
    """The server to talk to and the saved sign-in; saves refreshed tokens at the end."""

    def __init__(self, args):
        explicit = getattr(args, "server", None) or os.environ.get("MOOD_MIRROR_URL")
        self.explicit = normalize_server(explicit) if explicit else None
        self.saved = config.load()
        self.client = None

    @property
    def server(self):
        return self.explicit or (self.saved or {}).get("server") or config.DEFAULT_SERVER

    def signed_in(self):
        """A client with the saved tokens, refreshed first when the access token runs out soon."""
        if not self.saved:
            raise CliError(f"not signed in: run `{PROG} login` first", EXIT_AUTH)
        if self.explicit and self.explicit != self.saved.get("server"):
            raise CliError(f"signed in to {self.saved.get('server')}, not {self.explicit}: "
                           f"run `{PROG} login --server {self.explicit}`", EXIT_AUTH)
        self.client = MoodMirrorClient(self.saved["server"], self.saved["access_token"],
                                       self.saved.get("refresh_token"))
        self.fresh()
        return self.client

    def fresh(self):
        """Refresh an access token that expires within 30 s (before a stream or an upload,
        which cannot simply be replayed after a 401 the way the client library replays GETs)."""
        if self.client.refresh_token and config.expiring(self.client.access_token):
            self.client.refresh()
            self.persist()

    def persist(self):
        """Save tokens the client library refreshed during the command."""
        if self.client is None or not self.saved or not self.client.access_token:
            return
        if self.client.access_token != self.saved.get("access_token"):
            self.saved = {**self.saved, "access_token": self.client.access_token,
                          "refresh_token": self.client.refresh_token or self.saved.get("refresh_token")}
            config.save(self.saved)


def read_password(args, prompt="Password: ", confirm=False):
    if args.password is not None:
        return args.password
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    try:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise CliError("the passwords differ")
    except EOFError:
        raise CliError("no password given (use --password-stdin when there is no terminal)") from None
    return password


def cmd_login(args, ctx):
    email = args.email
    if not email:
        try:
            email = input("Email: ").strip()
        except EOFError:
            email = ""
        if not email:
            raise CliError("no email given (use --email)")
    password = read_password(args, confirm=args.register and args.password is None and not args.password_stdin)
    server = ctx.server
    client = MoodMirrorClient(server)
    try:
        body = client.register(email, password, args.name) if args.register else client.login(email, password)
    except ApiClientError as exc:
        raise CliError(("registration refused: " if args.register else "sign-in refused: ")
                       + describe_error(exc, hint=False), exit_code_for(exc)) from None
    previous = ctx.saved
    path = config.save({"server": server, "email": email, "access_token": body["access_token"],
                        "refresh_token": body["refresh_token"], "saved_at": datetime.now().astimezone().isoformat()})
    if previous and previous.get("access_token") != body["access_token"]:
        # The tokens this replaces would otherwise stay valid until they expire.
        old = MoodMirrorClient(previous.get("server", server), previous.get("access_token"),
                               previous.get("refresh_token"))
        try:
            old.request("POST", "/api/auth/logout", retry_on_expiry=False, timeout=5,
                        json={"refresh_token": old.refresh_token} if old.refresh_token else {})
        except ApiClientError:
            pass
    print(f"{'registered and signed in' if args.register else 'signed in'} to {server} as {email} "
          f"(tokens saved in {path})")
    return EXIT_OK


def cmd_logout(args, ctx):
    saved = ctx.saved
    if not saved:
        print("not signed in")
        return EXIT_OK
    client = MoodMirrorClient(saved["server"], saved.get("access_token"), saved.get("refresh_token"))
    try:
        client.logout()
    except ApiClientError as exc:
        config.delete()
        if exc.status == 401:  # both tokens already expired or revoked: nothing left to revoke
            print(f"signed out (the server had already ended this sign-in: {exc.code})")
            return EXIT_OK
        raise CliError("signed out here, but the server could not revoke the tokens: "
                       + describe_error(exc, hint=False), exit_code_for(exc)) from None
    config.delete()
    print(f"signed out of {saved['server']}")
    return EXIT_OK


# -- live streaming -----------------------------------------------------------------------

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
        unicode_ok = "utf" in (getattr(self.out, "encoding", "") or "").lower()
        self.full, self.empty, self.sep = ("█", "░", "│") if unicode_ok else ("#", "-", "|")

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
                print_json({"event": "emotion", **event}, self.out)
            elif self.mode == "lines":
                self.out.write(self.window_line(event) + "\n")
                self.out.flush()
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
                print_json({"event": "lag", **data}, self.out)
            elif self.mode == "lines":
                self.out.write(f"lag: the server dropped {data.get('dropped')} window(s) it could not analyse "
                               f"in time ({self.dropped} so far)\n")
                self.out.flush()
            else:
                self.redraw()

    def error(self, data):
        with self.lock:
            self.errors += 1
            if self.mode == "json":
                print_json({"event": "error", **data}, self.out)
            else:
                if self.mode == "tty":
                    self.out.write("\r\x1b[K")
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
        self.out.write("\r" + (head + tail)[:width] + "\x1b[K")
        self.out.flush()

    def finish(self, summary, live):
        with self.lock:
            if self.mode == "tty":
                self.out.write("\n")
            spoken = {k: v for k, v in self.counts.items() if k != "silence"}
            dominant = max(spoken, key=spoken.get) if spoken else None
            record = {"event": "summary", "session_id": summary.get("session_id"),
                      "windows": summary.get("windows"), "analysed": len(live.emotions),
                      "dropped_total": live.dropped(), "errors": len(live.errors), "dominant": dominant}
            if self.mode == "json":
                print_json(record, self.out)
            else:
                mostly = (f"; mostly {dominant} ({spoken[dominant]} of {sum(spoken.values())} spoken windows)"
                          if dominant else "; no speech heard")
                self.out.write(f"session {record['session_id']}: {record['windows']} windows, "
                               f"{record['analysed']} analysed, {record['dropped_total']} dropped, "
                               f"{record['errors']} errors{mostly}\n")
                self.out.flush()
            return record


def display_mode(args):
    if args.json:
        return "json"
    return "tty" if sys.stdout.isatty() else "lines"


def project_audio():
    """The project's PyAV decoder, app/domain/audio.py, loaded from this checkout by path: it
    needs only PyAV and numpy, and importing it through the `app` package would load Flask.
    None when the client runs outside the checkout."""
    if "app.domain.audio" in sys.modules:
        return sys.modules["app.domain.audio"]
    name = "mood_mirror._project_audio"
    if name in sys.modules:
        return sys.modules[name]
    source = Path(__file__).resolve().parent.parent / "app" / "domain" / "audio.py"
    if not source.is_file():
        return None
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:
        del sys.modules[name]
        return None
    return module


def decode_file(path):
    """Any audio file as 16 kHz mono int16 samples, with the project's PyAV decoder
    (app/domain/audio.py) when it is there, else soundfile (WAV, FLAC, OGG)."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    project = project_audio()
    if project is not None:
        try:
            samples = project.decode(path, target_rate=16000, max_seconds=24 * 3600)
        except project.AudioError as exc:
            raise CliError(f"{path}: {exc.message}") from None
    else:
        import soundfile

        try:
            audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            raise CliError(f"{path}: cannot decode: {one_line(exc)}") from None
        samples = audio.mean(axis=1)
        if rate != 16000:
            positions = np.arange(0, samples.size, rate / 16000)
            samples = np.interp(positions, np.arange(samples.size), samples).astype(np.float32)
    if samples.size == 0:
        raise CliError(f"{path}: no audio in the file")
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")


def windows_for(seconds):
    """Windows the server has cut after `seconds` of audio: warm-up windows at 1 s and 2 s,
    then one per 1 s hop of the 3 s window (app.domain.stream.Windower)."""
    return int(seconds)


def send_file(live, display, pcm, fast):
    step = 16000 * CHUNK_MS // 1000
    started = time.monotonic()
    last_progress, last_done = time.monotonic(), -1
    for i, first in enumerate(range(0, pcm.size, step)):
        if fast:
            while True:
                done = len(live.emotions) + live.dropped()
                if done != last_done:
                    last_done, last_progress = done, time.monotonic()
                in_flight = windows_for(first / 16000) - done
                if in_flight < FAST_IN_FLIGHT or time.monotonic() - last_progress > FAST_STALL_S:
                    break
                time.sleep(0.02)
        else:
            delay = started + i * CHUNK_MS / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        live.send(pcm[first:first + step].tobytes())
        display.progress(min(pcm.size, first + step) / 16000)


def send_mic(live, display, mic, rate, duration):
    sent = 0.0
    while duration is None or sent < duration:
        chunk = mic.read()
        live.send(chunk)
        sent += len(chunk) / 2 / rate
        display.progress(sent)


def cmd_stream(args, ctx):
    if args.list_devices:
        return list_devices()
    if bool(args.mic) == bool(args.file):
        raise CliError("stream needs --mic or --file FILE (one of them)")
    if args.file and (args.device is not None or args.rate is not None or args.duration is not None):
        raise CliError("--device, --rate and --duration go with --mic")
    if args.mic and args.fast:
        raise CliError("--fast goes with --file (a microphone runs at its own pace)")

    mic = pcm = None
    fmt = dict(STREAM_FORMAT)
    if args.file:
        pcm = decode_file(args.file)
    else:
        from mood_mirror.mic import Microphone

        mic = Microphone()
    try:
        if mic is not None:
            device = mic.choose(args.device)
            rate = mic.pick_rate(device, args.rate)
        client = ctx.signed_in()
        if args.session:
            # The server answers a bad session_id in `start` with an error event only; ask first.
            session = client.json("GET", f"/api/sessions/{args.session}")
            if session.get("status") != "active":
                raise CliError(f"session {args.session} has ended; streams continue active sessions only",
                               EXIT_SERVER)
        if mic is not None:
            mic.open(device, rate, rate * CHUNK_MS // 1000)
            fmt["sample_rate"] = rate
            if display_mode(args) != "json":
                err(f"recording from input device {device['index']} ({device['name']}) at {rate} Hz"
                    + ("" if args.duration else "; Ctrl-C stops"))
        return run_stream(args, client, fmt, pcm, mic)
    finally:
        if mic is not None:
            mic.close()


def run_stream(args, client, fmt, pcm, mic):
    display = LiveDisplay(display_mode(args))
    live = client.live_stream(wait_timeout=30)
    live.on_emotion(display.emotion)
    live.sio.on("lag", lambda data: (live.lags.append(data), display.lag(data)))
    live.sio.on("error", lambda data: (live.errors.append(data), display.error(data)))
    interrupted = False
    with live:
        # python-socketio and python-engineio take over SIGINT to drop every connection at once;
        # Ctrl-C here means "stop": the stream is stopped properly and its last windows awaited.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)
        name = args.name or (f"cli: {Path(args.file).name}" if args.file else "cli: microphone")
        live.start(fmt, session_id=args.session, name=name[:120])
        if display.mode == "tty":
            display.progress(0.0)
        try:
            if pcm is not None:
                send_file(live, display, pcm, args.fast)
            else:
                send_mic(live, display, mic, fmt["sample_rate"], args.duration)
        except KeyboardInterrupt:
            interrupted = True  # stop cleanly: the server ends the session and flushes the tail
        except MicError:
            live.stop()
            raise
        try:
            summary = live.stop()
            live.wait_for_emotions(summary["windows"], timeout=max(60.0, summary["windows"] * 2.0))
        except KeyboardInterrupt:
            summary, interrupted = {"session_id": live.session_id, "windows": None}, True
    record = display.finish(summary, live)
    if interrupted and pcm is not None:
        return EXIT_INTERRUPTED
    if record["windows"] is not None and record["analysed"] + record["dropped_total"] < record["windows"]:
        err(f"only {record['analysed']} of {record['windows']} windows were analysed in time")
        return EXIT_SERVER
    return EXIT_OK


def list_devices():
    from mood_mirror.mic import Microphone

    with Microphone() as mic:
        devices = mic.input_devices()
    if not devices:
        print("no audio input devices found (PortAudio sees none)")
        return EXIT_OK
    rows = [("", "INDEX", "NAME", "CHANNELS", "DEFAULT RATE", "HOST API")]
    rows += [("*" if d["default"] else "", str(d["index"]), d["name"], str(d["channels"]), f"{d['rate']} Hz",
              d["host_api"]) for d in devices]
    print_table(rows, right={1, 3, 4})
    return EXIT_OK


# -- uploads --------------------------------------------------------------------------------

class UploadBody:
    """A multipart/form-data body with one `file` field, read from disk in blocks as requests
    sends it, so the progress bar follows the bytes actually sent."""

    def __init__(self, path, bar):
        self.boundary = uuid.uuid4().hex
        name = path.name.replace("\\", "_").replace('"', "%22").replace("\r", "").replace("\n", "")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        head = (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: {mime}\r\n\r\n").encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = path.stat().st_size
        self.parts = [head, path, tail]
        self.length = len(head) + self.size + len(tail)
        self.path, self.bar = path, bar
        self.file = None
        self.index = 0

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self):
        return self.length

    def read(self, size=-1):
        size = 65536 if size is None or size < 0 else size
        while self.index < len(self.parts):
            part = self.parts[self.index]
            if isinstance(part, bytes):
                self.index += 1
                if part:
                    return part
                continue
            if self.file is None:
                self.file = open(part, "rb")
            block = self.file.read(size)
            if block:
                if self.bar is not None:
                    self.bar.update(len(block))
                return block
            self.file.close()
            self.index += 1
        return b""

    def close(self):
        if self.file is not None and not self.file.closed:
            self.file.close()


def progress_bar(args, **kwargs):
    from tqdm import tqdm

    return tqdm(disable=True if args.quiet else None, file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)


def upload(args, ctx, client, path):
    ctx.fresh()  # a body sent once cannot be replayed after a token_expired 401
    with progress_bar(args, total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"upload {path.name}"[:40]) as bar:
        body = UploadBody(path, bar)
        try:
            params = {"session_id": args.session} if args.session else None
            return client.json("POST", "/api/analyze", data=body, params=params, retry_on_expiry=False,
                               headers={"Content-Type": body.content_type}, timeout=max(30, args.timeout))
        finally:
            body.close()


def wait(args, client, path, job_id):
    with progress_bar(args, total=100, unit="%", desc=f"analyse {path.name}"[:40],
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def on_progress(job):
            bar.n = round(100 * (job.get("progress") or 0))
            bar.refresh()

        return client.wait_for_job(job_id, timeout=args.timeout, poll=0.3, on_progress=on_progress)


def cmd_analyze(args, ctx):
    paths = [Path(p) for p in args.files]
    for path in paths:
        if not path.is_file():
            raise CliError(f"{path}: no such file")
    client = ctx.signed_in()
    accepted, outcomes = [], {}
    for path in paths:  # upload everything first: the workers analyse while the rest uploads
        try:
            accepted.append((path, upload(args, ctx, client, path)["job_id"]))
        except ApiClientError as exc:
            if exc.status not in PER_FILE_STATUSES:
                raise
            outcomes[path] = {"file": str(path), "status": "failed",
                              "error": {"status": exc.status, "code": exc.code, "message": exc.message}}
            err(f"{path}: {describe_error(exc)}")
    for path, job_id in accepted:
        job = wait(args, client, path, job_id)
        outcomes[path] = {"file": str(path), **job}
        if job["status"] == "failed":
            error = job.get("error") or {}
            err(f"{path}: analysis failed: {one_line(error.get('message'))} [{error.get('code')}]")
    results = [outcomes[p] for p in paths]
    if args.json:
        for outcome in results:
            print_json(outcome)
    else:
        print_analysis_table(results)
    return EXIT_OK if all(o["status"] == "finished" for o in results) else EXIT_SERVER


def print_analysis_table(results):
    rows = [("FILE", "DURATION", "WINDOWS", "DOMINANT", "CONFIDENCE", "VALENCE", "AROUSAL", "INTENSITY")]
    for outcome in results:
        if outcome["status"] != "finished":
            error = outcome.get("error") or {}
            rows.append((outcome["file"], f"failed: {one_line(error.get('message'), 60)}", "", "", "", "", "", ""))
            continue
        result, overall = outcome["result"], outcome["result"]["overall"]
        rows.append((outcome["file"], f"{outcome.get('duration_s') or 0:.1f} s",
                     f"{result['windows']} ({result['silent_windows']} silent)", overall["dominant"],
                     f"{overall['confidence']:.2f}", f"{overall['valence']:+.2f}", f"{overall['arousal']:+.2f}",
                     f"{overall['intensity']:.2f}"))
    print_table(rows, right={1, 2, 4, 5, 6, 7})


def print_table(rows, right=()):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())


# -- sessions and export -------------------------------------------------------------------

def local_time(stamp):
    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def duration(session):
    try:
        start = datetime.fromisoformat(session["started_at"])
        end = datetime.fromisoformat(session["ended_at"]) if session.get("ended_at") else datetime.now(start.tzinfo)
    except (KeyError, TypeError, ValueError):
        return ""
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def cmd_sessions(args, ctx):
    client = ctx.signed_in()
    params = {"limit": min(args.limit, 100)} | ({"status": args.status} if args.status else {})
    sessions = []
    for session in client.pages("/api/sessions", **params):
        sessions.append(session)
        if len(sessions) >= args.limit:
            break
    if args.json:
        for session in sessions:
            print_json(session)
        return EXIT_OK
    if not sessions:
        print("no sessions yet")
        return EXIT_OK
    rows = [("ID", "STARTED", "DURATION", "SOURCE", "STATUS", "NAME")]
    rows += [(s["id"], local_time(s.get("started_at")), duration(s), s.get("source", ""), s.get("status", ""),
              one_line(s.get("name"), 50)) for s in sessions]
    print_table(rows, right={2})
    return EXIT_OK


def cmd_export(args, ctx):
    client = ctx.signed_in()
    params = {"format": args.format}
    for option in ("since", "until", "source", "dominant"):
        if getattr(args, option):
            params[option] = getattr(args, option)
    if args.session:
        params["session_id"] = args.session
    response = client.request("GET", "/api/export", params=params, stream=True)
    written = 0
    try:
        if args.output in (None, "-"):
            out = sys.stdout.buffer
            for block in response.iter_content(65536):
                out.write(block)
                written += len(block)
            out.flush()
            return EXIT_OK
        target = Path(args.output)
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as out, progress_bar(args, unit="B", unit_scale=True, unit_divisor=1024,
                                                          desc="export") as bar:
                for block in response.iter_content(65536):
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
            os.replace(partial, target)  # a broken download never leaves a half file under the name
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        err(f"exported {written} bytes of {args.format.upper()} to {target}")
        return EXIT_OK
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise CliError(f"export interrupted: {one_line(exc)}", EXIT_SERVER) from None
    finally:
        response.close()


# -- parser and entry point -----------------------------------------------------------------

def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=argparse.SUPPRESS, metavar="URL",
                        help=f"server URL (default: $MOOD_MIRROR_URL, else the one you signed in to, "
                             f"else {config.DEFAULT_SERVER})")
    parser = argparse.ArgumentParser(prog=PROG, parents=[common],
                                     description="Mood Mirror from the terminal: live emotions from your "
                                                 "microphone or a recording, uploads, sessions and exports.",
                                     epilog="Exit codes: 0 done, 1 server error or unreachable, 2 usage or local "
                                            "problem, 3 not signed in or sign-in refused, 130 interrupted.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    login = commands.add_parser("login", parents=[common], help="sign in and save the tokens",
                                description="Sign in (or --register) and save the tokens, mode 0600, in "
                                            f"{config.credentials_path()}.")
    login.add_argument("--email")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument("--password", help="the password (visible to other local users in the process list; "
                                           "prefer the prompt or --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    login.add_argument("--register", action="store_true", help="create the account first")
    login.add_argument("--name", help="display name, with --register")
    login.set_defaults(func=cmd_login)

    logout = commands.add_parser("logout", parents=[common], help="revoke the tokens and delete them")
    logout.set_defaults(func=cmd_logout)

    stream = commands.add_parser("stream", parents=[common], help="live emotions from the microphone or a file",
                                 description="Stream audio live and show each window's emotion as it comes back.")
    source = stream.add_mutually_exclusive_group()
    source.add_argument("--mic", action="store_true", help="record from a microphone (needs pyaudio)")
    source.add_argument("--file", metavar="FILE", help="stream a recording (any format FFmpeg decodes)")
    stream.add_argument("--device", help="input device: index or part of its name (see --list-devices)")
    stream.add_argument("--rate", type=int, choices=SAMPLE_RATES, metavar="HZ",
                        help="recording rate (default: 16000 when the device takes it)")
    stream.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    stream.add_argument("--duration", type=float, metavar="SECONDS", help="stop the microphone after this long")
    stream.add_argument("--fast", action="store_true",
                        help="send the file as fast as the server analyses it, not at real-time pace")
    stream.add_argument("--name", help="session name")
    stream.add_argument("--session", metavar="ID", help="continue this active session of yours")
    stream.add_argument("--json", action="store_true", help="JSON Lines: one object per event")
    stream.set_defaults(func=cmd_stream)

    analyze = commands.add_parser("analyze", parents=[common], help="upload recordings for analysis",
                                  description="Upload recordings, wait for the analysis and print the results.")
    analyze.add_argument("files", nargs="+", metavar="FILE")
    analyze.add_argument("--json", action="store_true", help="one JSON object per file per line")
    analyze.add_argument("--session", metavar="ID", help="attach the readings to this session of yours")
    analyze.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                         help="longest wait for one analysis (default 600)")
    analyze.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    analyze.set_defaults(func=cmd_analyze)

    sessions = commands.add_parser("sessions", parents=[common], help="your recent sessions")
    sessions.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    sessions.add_argument("--status", choices=("active", "ended"))
    sessions.add_argument("--json", action="store_true", help="one JSON object per session per line")
    sessions.set_defaults(func=cmd_sessions)

    export = commands.add_parser("export", parents=[common], help="download your readings as CSV or JSON")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", "-o", metavar="FILE", help="write here (default: standard output)")
    export.add_argument("--since", metavar="TIME", help="readings at or after this ISO 8601 time (with zone)")
    export.add_argument("--until", metavar="TIME", help="readings before this ISO 8601 time (with zone)")
    export.add_argument("--session", metavar="ID", help="one session's readings")
    export.add_argument("--source", choices=("stream", "upload", "manual"))
    export.add_argument("--dominant", metavar="EMOTION", help="only readings with this dominant emotion")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = None
    try:
        ctx = Context(args)
        return args.func(args, ctx)
    except CliError as exc:
        err(str(exc))
        return exc.exit_code
    except MicError as exc:
        err(str(exc))
        return EXIT_USAGE
    except ApiClientError as exc:
        err(describe_error(exc))
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mood-mirror export | head`); say nothing more on a closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        if ctx is not None:
            try:
                ctx.persist()
            except OSError as exc:
                err(f"could not save the refreshed tokens: {exc}")


if __name__ == "__main__":
    sys.exit(main())
