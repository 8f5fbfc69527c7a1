"""The `mood-mirror` command line, run as a real subprocess against the real stack (web under
eventlet and an RQ worker, started as the Procfile does), with its sign-in file in a temporary
HOME. The microphone goes through PortAudio: an ALSA `file` plugin declared in that HOME's
.asoundrc is a capture device that plays back a speech recording."""
import csv
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib
import soundfile

from devtools.stack import Stack, free_port
from mood_mirror.client import ApiClientError, MoodMirrorClient

from audio_fixtures import speech_like, write

ROOT = Path(__file__).resolve().parent.parent
RAVDESS = ROOT.parent / "shared" / "data" / "ravdess"
PASSWORD = "correct horse battery"
EMAIL = "cli@example.com"
MAX_UPLOAD_MB = 1


def speech(seconds):
    """Real speech (RAVDESS clips with short pauses) as 16 kHz float32, or a voiced synthetic
    signal where the data set is not there."""
    if (RAVDESS / "metadata.csv").exists():
        parts, total = [], 0
        for clip in sorted((RAVDESS / "audio" / "ravdess_21").glob("*.flac"))[3::11]:
            audio, rate = soundfile.read(clip, dtype="float32")
            assert rate == 16000
            parts += [audio, np.zeros(3200, np.float32)]
            total += audio.size + 3200
            if total >= seconds * 16000:
                break
        return np.concatenate(parts)[: int(seconds * 16000)]
    return speech_like(seconds, 16000)[0]


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    cli_redis = redis_url.rsplit("/", 1)[0] + "/13"
    redis_lib.Redis.from_url(cli_redis).flushdb()
    cli_mongo = mongo_uri.replace("/moodmirror_test", "/moodmirror_cli")
    # Short access tokens, so that every command goes through the refresh path.
    running = Stack(cli_mongo, cli_redis, tmp_path_factory.mktemp("cli-stack"),
                    extra_env={"JWT_ACCESS_SECONDS": "20", "MAX_UPLOAD_MB": str(MAX_UPLOAD_MB)}).start()
    MoodMirrorClient(running.base_url).register(EMAIL, PASSWORD)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Recordings: speech as FLAC and WAV, the synthetic voice as MP3, a text file, and one over
    the upload limit."""
    directory = tmp_path_factory.mktemp("audio")
    soundfile.write(directory / "speech.flac", speech(6.0), 16000)
    soundfile.write(directory / "short.wav", speech(4.0), 16000, subtype="PCM_16")
    soundfile.write(directory / "long.flac", speech(14.0), 16000)
    (directory / "notes.txt").write_text("not audio at all\n" * 50)
    big = directory / "big.wav"
    soundfile.write(big, np.random.default_rng(0).uniform(-0.5, 0.5, 40 * 16000).astype(np.float32), 16000,
                    subtype="PCM_16")
    assert big.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024
    write(directory, "mp3", seconds=3.5)
    return directory


def run(home, *args, server=None, stdin=None, env=None, timeout=180):
    environment = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                   "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("MOOD_MIRROR_URL", None)
    if server:
        environment["MOOD_MIRROR_URL"] = server
    return subprocess.run([sys.executable, "-m", "mood_mirror.cli", *args], cwd=home, env=environment,
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def run_on_terminal(home, *args, timeout=180):
    """Run the command with stdout and stderr on a pseudo-terminal (120 columns); returns
    (exit code, everything drawn)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environment = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONPATH": str(ROOT)}
    for name in ("MOOD_MIRROR_URL", "COLUMNS", "LINES"):
        environment.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "mood_mirror.cli", *args], env=environment, stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower)
    os.close(follower)
    drawn = b""
    while True:
        try:
            block = os.read(leader, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not block:
            break
        drawn += block
    os.close(leader)
    return proc.wait(timeout), drawn.decode(errors="replace")


def assert_one_line_error(result, code, *fragments):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mood-mirror: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def credentials(home):
    return home / ".config" / "mood-mirror" / "credentials.json"


@pytest.fixture(scope="module")
def signed_in(stack, home):
    result = run(home, "login", "--email", EMAIL, "--password-stdin", server=stack.base_url, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return home


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- sign-in ---------------------------------------------------------------------------------

def test_login_saves_tokens_0600_in_a_0700_directory(stack, signed_in):
    path = credentials(signed_in)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved["server"] == stack.base_url and saved["email"] == EMAIL
    assert saved["access_token"] and saved["refresh_token"]
    assert not [p for p in path.parent.iterdir() if p.name != "credentials.json"], "no temporary files left"


def test_an_expiring_access_token_is_refreshed_and_saved(stack, signed_in):
    before = json.loads(credentials(signed_in).read_text())
    result = run(signed_in, "sessions", "--json")  # the 20 s tokens are always within the 30 s margin
    assert result.returncode == 0, result.stderr
    after = json.loads(credentials(signed_in).read_text())
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]
    assert stat.S_IMODE(credentials(signed_in).stat().st_mode) == 0o600
    assert MoodMirrorClient(stack.base_url, after["access_token"]).json("GET", "/api/auth/profile")["email"] == EMAIL


def test_wrong_password_is_one_401_line(stack, tmp_path):
    result = run(tmp_path, "login", "--email", EMAIL, "--password-stdin", server=stack.base_url,
                 stdin="wrong password here\n")
    assert_one_line_error(result, 3, "sign-in refused", "401 Unauthorized", "invalid_credentials")
    assert not credentials(tmp_path).exists()


def test_server_down_is_one_clear_line(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    result = run(tmp_path, "login", "--email", EMAIL, "--password-stdin", server=down, stdin=PASSWORD + "\n")
    assert_one_line_error(result, 1, f"cannot reach {down}")
    # Signed in earlier, the server gone since: the same line from any command.
    path = credentials(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"server": down, "access_token": "a.b.c", "refresh_token": "d.e.f"}))
    os.chmod(path, 0o600)
    assert_one_line_error(run(tmp_path, "sessions"), 1, f"cannot reach {down}")


def test_not_signed_in_and_revoked_sign_in_are_one_line_with_exit_3(stack, tmp_path):
    assert_one_line_error(run(tmp_path, "sessions", server=stack.base_url), 3, "not signed in", "mood-mirror login")
    login = run(tmp_path, "login", "--email", EMAIL, "--password-stdin", server=stack.base_url,
                stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    saved = json.loads(credentials(tmp_path).read_text())
    MoodMirrorClient(stack.base_url, saved["access_token"], saved["refresh_token"]).logout()  # revoked elsewhere
    assert_one_line_error(run(tmp_path, "sessions"), 3, "401 Unauthorized", "token_revoked", "mood-mirror login")


def test_signed_in_elsewhere_is_refused_with_the_command_to_run(stack, signed_in):
    other = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run(signed_in, "sessions", "--server", other), 3, f"signed in to {stack.base_url}",
                          f"login --server {other}")


# -- analyze ---------------------------------------------------------------------------------

def test_analyze_json_one_object_per_file(signed_in, audio):
    files = [audio / "speech.flac", audio / "mp3.mp3"]
    result = run(signed_in, "analyze", "--json", *map(str, files))
    assert result.returncode == 0, result.stderr
    outcomes = jsonl(result.stdout)
    assert [o["file"] for o in outcomes] == list(map(str, files))
    for outcome, seconds in zip(outcomes, (6.0, 3.5)):
        assert outcome["status"] == "finished" and outcome["progress"] == 1.0
        assert outcome["duration_s"] == pytest.approx(seconds, abs=0.1)
        assert outcome["filename"] == Path(outcome["file"]).name
        result_ = outcome["result"]
        assert result_["windows"] == len(result_["timeline"]) >= 2
        overall = result_["overall"]
        assert abs(sum(overall["probabilities"].values()) - 1) < 1e-3
        assert overall["dominant"] == max(overall["probabilities"], key=overall["probabilities"].get)
        assert 0 <= overall["confidence"] <= 1 and -1 <= overall["valence"] <= 1 and -1 <= overall["arousal"] <= 1
        for window in result_["timeline"]:
            if not window["silence"]:
                assert abs(sum(window["probabilities"].values()) - 1) < 1e-3


def test_analyze_table_and_per_file_rejections(signed_in, audio):
    result = run(signed_in, "analyze", "--quiet", str(audio / "short.wav"), str(audio / "notes.txt"),
                 str(audio / "big.wav"))
    assert result.returncode == 1, result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert errors[0].startswith(f"mood-mirror: {audio / 'notes.txt'}: 415 Unsupported Media Type")
    assert errors[1].startswith(f"mood-mirror: {audio / 'big.wav'}: 413 Content Too Large")
    header, *rows = result.stdout.strip().splitlines()
    assert header.split() == ["FILE", "DURATION", "WINDOWS", "DOMINANT", "SHARE", "VALENCE", "AROUSAL",
                              "INTENSITY", "NOTE"]
    assert rows[0].startswith(str(audio / "short.wav")) and "4.0 s" in rows[0]
    # Failed rows keep the columns: every row's DOMINANT starts where its header does.
    column = header.index("DOMINANT")
    assert all(row[column - 1] == " " and row[column] != " " for row in rows), result.stdout
    for row, code in zip(rows[1:], ("unsupported_audio", "payload_too_large")):
        assert row[header.index("DOMINANT"):].startswith("failed")
        assert row[header.index("NOTE"):].rstrip().endswith(f"[{code}]")
    dominant = rows[0][header.index("DOMINANT"):].split()[0]
    assert dominant == "mixed" or re.fullmatch(r"\d+%", rows[0][header.index("SHARE"):].split()[0])


def test_analyze_shows_upload_and_analysis_progress_bars(signed_in, audio):
    code, drawn = run_on_terminal(signed_in, "analyze", str(audio / "short.wav"))
    assert code == 0, drawn
    assert "upload short.wav" in drawn and "100%" in drawn and "analyse short.wav" in drawn
    assert "DOMINANT" in drawn


# -- streaming -------------------------------------------------------------------------------

def check_stream_events(events, spoken_needed=True):
    emotions = [e for e in events if e["event"] == "emotion"]
    summary = events[-1]
    assert summary["event"] == "summary"
    assert summary["windows"] == len(emotions) == summary["analysed"]
    assert summary["dropped_total"] == 0 and summary["errors"] == 0
    assert [e["window_index"] for e in emotions] == list(range(summary["windows"]))
    assert {e["session_id"] for e in emotions} == {summary["session_id"]}
    spoken = [e for e in emotions if not e["silence"]]
    if spoken_needed:
        assert spoken, "speech gives emotions"
    for event in spoken:
        assert abs(sum(event["probabilities"].values()) - 1) < 1e-3
        assert event["dominant"] in event["probabilities"] and event["source"] == "stream"
    return summary


def test_stream_file_real_time_json_events(signed_in, audio):
    result = run(signed_in, "stream", "--file", str(audio / "short.wav"), "--json", "--name", "cli test")
    assert result.returncode == 0, result.stderr
    summary = check_stream_events(jsonl(result.stdout))
    assert summary["windows"] >= 3  # 4 s: warm-up windows at 1 s and 2 s, then one per second
    assert result.stderr == ""


def test_stream_file_fast_loses_no_window(signed_in, audio):
    result = run(signed_in, "stream", "--file", str(audio / "long.flac"), "--fast", "--json")
    assert result.returncode == 0, result.stderr
    summary = check_stream_events(jsonl(result.stdout))
    assert summary["windows"] >= 13


def test_fast_stream_session_is_timed_by_its_audio(stack, signed_in, audio):
    """A 14 s file sent in about a second lasts 14 s of audio in its analytics, and its time line
    goes forward by the windows' audio, not back and forth by their arrival."""
    result = run(signed_in, "stream", "--file", str(audio / "long.flac"), "--fast", "--json")
    assert result.returncode == 0, result.stderr
    summary = check_stream_events(jsonl(result.stdout))
    client = MoodMirrorClient(stack.base_url)
    client.login(EMAIL, PASSWORD)
    analytics = client.json("GET", f"/api/sessions/{summary['session_id']}/analytics")
    assert analytics["duration_seconds"] == pytest.approx(14.0, abs=0.5)
    times = [datetime.fromisoformat(point["timestamp"]) for point in analytics["timeline"]]
    assert times == sorted(times) and (times[-1] - times[0]).total_seconds() >= 10
    insights = client.json("GET", f"/api/sessions/{summary['session_id']}/insights")
    span = re.search(r"readings over (\d+) s", insights["summary"])
    assert span and int(span.group(1)) >= 8, insights["summary"]  # not "over 1 s"


def test_stream_file_plain_lines_when_not_a_terminal(signed_in, audio):
    result = run(signed_in, "stream", "--file", str(audio / "short.wav"), "--fast")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    windows = [line for line in lines if line.startswith("window ")]
    assert len(windows) >= 3 and "\r" not in result.stdout
    assert any("confidence" in line and "valence" in line for line in windows)
    assert lines[-1].startswith("session ")
    assert f"{len(windows)} windows, {len(windows)} analysed, 0 dropped" in lines[-1]


def test_stream_into_a_closed_pipe_ends_quietly_like_unix_tools(signed_in, audio):
    environment = {**os.environ, "HOME": str(signed_in), "XDG_CONFIG_HOME": str(signed_in / ".config"),
                   "PYTHONPATH": str(ROOT)}
    environment.pop("MOOD_MIRROR_URL", None)
    command = f"{sys.executable} -m mood_mirror.cli stream --file {audio / 'long.flac'} --fast | head -2"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command],
                            env=environment, capture_output=True, text=True, timeout=180, cwd=signed_in)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""
    # The stream was stopped properly: its session has ended.
    assert run(signed_in, "sessions", "--status", "active").stdout == "no active sessions\n"


def test_stream_compact_live_line_on_a_terminal(signed_in, audio):
    code, drawn = run_on_terminal(signed_in, "stream", "--file", str(audio / "short.wav"), "--fast")
    assert code == 0, drawn
    frames = [f for f in drawn.replace("\x1b[K", "").replace("\n", "\r").split("\r") if f.strip()]
    live = [f for f in frames if "valence" in f and "arousal" in f and "lag" in f and "errors 0" in f]
    assert live and all(len(f) < 120 for f in live), drawn
    assert any("█" in f and "%" in f for f in live)
    assert frames[-1].startswith("session ")


def test_stream_interrupted_with_ctrl_c_stops_the_session_cleanly(signed_in, audio):
    environment = {**os.environ, "HOME": str(signed_in), "XDG_CONFIG_HOME": str(signed_in / ".config"),
                   "PYTHONPATH": str(ROOT)}
    environment.pop("MOOD_MIRROR_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "mood_mirror.cli", "stream", "--file", str(audio / "long.flac"),
                             "--json"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # the first window's emotion: streaming is under way
    assert json.loads(first)["event"] == "emotion", proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    rest, errors = proc.communicate(timeout=60)
    assert proc.returncode == 130, errors
    assert "Traceback" not in errors
    events = jsonl(first + rest)
    summary = events[-1]
    assert summary["event"] == "summary" and 1 <= summary["windows"] < 13  # stopped well before the end
    assert summary["analysed"] == summary["windows"] == len([e for e in events if e["event"] == "emotion"])
    sessions = jsonl(run(signed_in, "sessions", "--json", "--limit", "1").stdout)
    assert sessions[0]["id"] == summary["session_id"] and sessions[0]["status"] == "ended"


def test_stream_continues_an_active_session_and_refuses_others(stack, signed_in, audio):
    saved = json.loads(credentials(signed_in).read_text())
    client = MoodMirrorClient(stack.base_url, saved["access_token"], saved["refresh_token"])
    session = client.json("POST", "/api/sessions", json={"name": "kitchen", "source": "stream"})["id"]
    result = run(signed_in, "stream", "--file", str(audio / "short.wav"), "--fast", "--json", "--session", session)
    assert result.returncode == 0, result.stderr
    assert check_stream_events(jsonl(result.stdout))["session_id"] == session
    assert_one_line_error(run(signed_in, "stream", "--file", str(audio / "short.wav"), "--session", session), 1,
                          f"session {session} has ended")
    assert_one_line_error(run(signed_in, "stream", "--file", str(audio / "short.wav"), "--session", "0" * 24), 1,
                          "404 Not Found")


def test_stream_needs_mic_or_file(signed_in):
    assert_one_line_error(run(signed_in, "stream"), 2, "--mic or --file")
    assert_one_line_error(run(signed_in, "stream", "--file", "/nonexistent.wav"), 2, "no such file")


# -- microphone ------------------------------------------------------------------------------

ASOUNDRC = """pcm.moodmic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
    hint {{ show on description "Mood Mirror test microphone" }}
}}
"""


def pyaudio_or_skip():
    try:
        __import__("pyaudio")
    except ImportError:
        pytest.skip("pyaudio is not installed (needs portaudio19-dev)")


@pytest.fixture(scope="module")
def mic_home(stack, tmp_path_factory):
    """A HOME whose ALSA configuration has a capture device that reads speech from a file."""
    pyaudio_or_skip()
    directory = tmp_path_factory.mktemp("mic-home")
    raw = directory / "speech.s16le"
    (np.clip(speech(8.0), -1, 1) * 32767).astype("<i2").tofile(raw)
    (directory / ".asoundrc").write_text(ASOUNDRC.format(infile=raw))
    result = run(directory, "login", "--email", EMAIL, "--password-stdin", server=stack.base_url,
                 stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return directory


def test_mic_list_devices_through_portaudio(mic_home):
    result = run(mic_home, "stream", "--mic", "--list-devices")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["INDEX", "NAME", "CHANNELS", "DEFAULT", "RATE", "HOST", "API"]
    assert any("moodmic" in line and "ALSA" in line for line in result.stdout.splitlines())
    assert "ALSA lib" not in result.stderr and "jack" not in result.stderr.lower(), "PortAudio's noise hidden"


def test_mic_stream_through_portaudio(mic_home):
    result = run(mic_home, "stream", "--mic", "--device", "moodmic", "--rate", "16000", "--duration", "5", "--json")
    assert result.returncode == 0, result.stderr
    summary = check_stream_events(jsonl(result.stdout))
    assert summary["windows"] >= 4


def test_mic_unknown_device_is_one_line(mic_home):
    assert_one_line_error(run(mic_home, "stream", "--mic", "--device", "no-such-mic"), 2,
                          "no input device named like 'no-such-mic'", "--list-devices")


def test_mic_without_an_input_device(signed_in):
    pyaudio_or_skip()
    listing = run(signed_in, "stream", "--mic", "--list-devices")
    assert listing.returncode == 0, listing.stderr
    if "no audio input devices found" not in listing.stdout:
        pytest.skip("this machine has a capture device")
    assert listing.stderr == ""
    assert_one_line_error(run(signed_in, "stream", "--mic"), 2, "no audio input device found", "--file")


def test_mic_without_pyaudio_names_what_to_install(signed_in, tmp_path):
    (tmp_path / "pyaudio.py").write_text("raise ImportError('No module named pyaudio')\n")
    result = run(signed_in, "stream", "--mic", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert_one_line_error(result, 2, "pyaudio is not installed", "portaudio19-dev", "pip install pyaudio==0.2.14")


# -- sessions and export ---------------------------------------------------------------------

def test_sessions_table_and_json(signed_in):
    as_json = run(signed_in, "sessions", "--json")
    assert as_json.returncode == 0, as_json.stderr
    sessions = jsonl(as_json.stdout)
    assert sessions and all(s["status"] == "ended" for s in sessions)
    assert {s["source"] for s in sessions} == {"stream", "upload"}
    # Every analysed file became a session named after it.
    assert {"speech.flac", "mp3.mp3", "short.wav"} <= {s["name"] for s in sessions if s["source"] == "upload"}
    assert "cli test" in {s["name"] for s in sessions}
    none_active = run(signed_in, "sessions", "--status", "active")
    assert none_active.returncode == 0 and none_active.stdout == "no active sessions\n"
    table = run(signed_in, "sessions", "--limit", "2")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.strip().splitlines()
    assert header.split() == ["ID", "STARTED", "DURATION", "SOURCE", "STATUS", "NAME"]
    assert len(rows) == 2 and rows[0].startswith(sessions[0]["id"])


def test_export_csv_to_a_file_and_json_to_stdout(signed_in, tmp_path):
    as_json = run(signed_in, "export", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    readings = json.loads(as_json.stdout)
    assert {r["source"] for r in readings} == {"upload", "stream"}
    target = tmp_path / "readings.csv"
    as_csv = run(signed_in, "export", "--format", "csv", "--output", str(target))
    assert as_csv.returncode == 0, as_csv.stderr
    assert f"to {target}" in as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == len(readings)
    assert {r["id"] for r in rows} == {r["id"] for r in readings}
    assert {"dominant", "confidence", "valence", "arousal", "p_happy"} <= set(rows[0])
    uploads = run(signed_in, "export", "--format", "json", "--source", "upload")
    assert {r["source"] for r in json.loads(uploads.stdout)} == {"upload"}
    recent = run(signed_in, "export", "--format", "json", "--since", "yesterday")
    assert recent.returncode == 0, recent.stderr
    assert len(json.loads(recent.stdout)) == len(readings)
    assert json.loads(run(signed_in, "export", "--format", "json", "--since", "2h").stdout)
    assert json.loads(run(signed_in, "export", "--format", "json", "--until", "2h").stdout) == []
    bad = run(signed_in, "export", "--format", "json", "--since", "last tuesday")
    assert_one_line_error(bad, 2, "--since", "ISO 8601", "yesterday", "7d")


# -- installed command and logout ------------------------------------------------------------

def test_installed_console_script(stack, signed_in):
    script = Path(sys.executable).parent / "mood-mirror"
    if not script.exists():
        pytest.skip("mood-mirror is not installed in this environment (make install does it)")
    result = subprocess.run([str(script), "sessions", "--limit", "1"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HOME": str(signed_in), "XDG_CONFIG_HOME": str(signed_in / ".config")},
                            cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ID")


def test_logout_revokes_and_deletes_the_file(stack, signed_in):
    saved = json.loads(credentials(signed_in).read_text())
    result = run(signed_in, "logout")
    assert result.returncode == 0, result.stderr
    assert not credentials(signed_in).exists()
    with pytest.raises(ApiClientError) as refused:
        MoodMirrorClient(stack.base_url, saved["refresh_token"]).json("POST", "/api/auth/refresh",
                                                                       retry_on_expiry=False)
    assert refused.value.status == 401 and refused.value.code == "token_revoked"
    again = run(signed_in, "logout")
    assert again.returncode == 0 and "not signed in" in again.stdout


# -- error lines without a server ------------------------------------------------------------

@pytest.mark.parametrize("status,code,message,expected", [
    (413, "payload_too_large", "Request larger than 25 MB", "413 Content Too Large: Request larger than 25 MB"),
    (415, "unsupported_audio", "Not audio", "415 Unsupported Media Type: Not audio [unsupported_audio]"),
    (429, "rate_limited", "Too many requests", "429 Too Many Requests: Too many requests [rate_limited]; wait"),
    (502, "http_error", "<html>\n<body>Bad gateway</body>\n</html>", "502 Bad Gateway: <html> <body>Bad gateway"),
    (None, "unreachable", "cannot reach http://x: ConnectionError", "cannot reach http://x: ConnectionError"),
])
def test_error_lines(status, code, message, expected):
    from mood_mirror.errors import describe_error, exit_code_for

    line = describe_error(ApiClientError(status, code, message))
    assert line.startswith(expected) and "\n" not in line
    assert exit_code_for(ApiClientError(status, code, message)) == 1
