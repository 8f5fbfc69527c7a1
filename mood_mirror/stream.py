"""`mood-mirror stream`: a recording or the microphone, streamed live, with each window's
emotion shown as it comes back."""
import signal
import threading
import time
from pathlib import Path

from audio import SAMPLE_RATE
from audio.windows import live_windows_after
from mood_mirror.client import CHUNK_MS, CUT_OFF
from mood_mirror.display import LiveDisplay, display_mode, err, print_table
from mood_mirror.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SERVER, CliError
from mood_mirror.mic import MicError

# --fast keeps at most this many windows waiting for the workers, below the server's
# drop-oldest limit (STREAM_MAX_PENDING, 10 by default), so a fast stream loses nothing.
FAST_IN_FLIGHT = 4
FAST_STALL_S = 30.0
STREAM_FORMAT = {"encoding": "s16le", "sample_rate": SAMPLE_RATE, "channels": 1}


def decode_file(path):
    """Any audio file as 16 kHz mono int16 samples, decoded as the server decodes uploads
    (audio/decode.py)."""
    # PyAV and numpy are imported only when a file is streamed: other commands start fast.
    from audio.decode import AudioError, decode
    from audio.pcm import to_s16

    path = Path(path)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        samples = decode(path, target_rate=SAMPLE_RATE, max_seconds=24 * 3600)
    except AudioError as exc:
        raise CliError(f"{path}: {exc.message}") from None
    if samples.size == 0:
        raise CliError(f"{path}: no audio in the file")
    return to_s16(samples)


def send(live, chunk):
    """Send a chunk; a stream whose access token expired (the server checks it every second
    of audio) goes on in a new connection with a refreshed token, in the same session."""
    if live.cut_off is None and not live.sio.connected and live.errors and live.errors[-1].get("code") in CUT_OFF:
        live.cut_off = live.errors[-1]  # the disconnect is on its way
    if live.cut_off is not None:
        if live.cut_off["code"] != "token_expired":
            raise CliError(f"the server ended the stream: {live.cut_off['message']}", EXIT_SERVER)
        live.resume()
    live.send(chunk)


def send_file(live, display, pcm, fast):
    step = SAMPLE_RATE * CHUNK_MS // 1000
    started = time.monotonic()
    last_progress, last_done = time.monotonic(), -1
    for i, first in enumerate(range(0, pcm.size, step)):
        if display.reader_gone.is_set():
            raise BrokenPipeError
        if fast:
            while True:
                done = len(live.emotions) + live.dropped()
                if done != last_done:
                    last_done, last_progress = done, time.monotonic()
                in_flight = live_windows_after(first / SAMPLE_RATE) - done
                if in_flight < FAST_IN_FLIGHT or time.monotonic() - last_progress > FAST_STALL_S:
                    break
                time.sleep(0.02)
        else:
            delay = started + i * CHUNK_MS / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        send(live, pcm[first:first + step].tobytes())
        display.progress(min(pcm.size, first + step) / SAMPLE_RATE)


def send_mic(live, display, mic, rate, duration):
    sent = 0.0
    while duration is None or sent < duration:
        if display.reader_gone.is_set():
            raise BrokenPipeError
        chunk = mic.read()
        send(live, chunk)
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
        except (MicError, BrokenPipeError):
            # A microphone that failed, or a reader that went away (`| head`): the session is
            # ended properly, then the error says what happened (or nothing, for a closed pipe).
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
