"""Python client for Mood Mirror: the REST API and live streaming over Socket.IO.

    client = MoodMirrorClient("http://127.0.0.1:5000")
    client.login("ada@example.com", "correct horse battery")
    job = client.wait_for_job(client.analyze("talk.wav")["job_id"])
    with client.live_stream() as live:
        live.start({"encoding": "s16le", "sample_rate": 16000, "channels": 1})
        live.send(pcm_bytes)
        summary = live.stop()
    live.emotions  # the `emotion` events, in window order

The tests and the `mood-mirror` command line use it; docs/PROTOCOL.md documents the protocol.
"""
import threading
import time
from pathlib import Path

import requests
import socketio

from audio import SAMPLE_RATE


class ApiClientError(Exception):
    """An error answer from the server (status, code, message) or no answer at all (status None)."""

    def __init__(self, status, code, message, details=None):
        super().__init__(f"{status or 'no answer'} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class MoodMirrorClient:
    def __init__(self, base_url, access_token=None, refresh_token=None, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.access_token, self.refresh_token = access_token, refresh_token
        self.timeout = timeout
        self.http = requests.Session()

    # -- REST ---------------------------------------------------------------------------

    def request(self, method, path, *, retry_on_expiry=True, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        try:
            response = self.http.request(method, self.base_url + path, headers=headers,
                                         timeout=kwargs.pop("timeout", self.timeout), **kwargs)
        except requests.RequestException as exc:
            raise ApiClientError(None, "unreachable", f"cannot reach {self.base_url}: {exc.__class__.__name__}")
        if response.status_code == 401 and retry_on_expiry and self.refresh_token and self._expired(response):
            self.refresh()
            return self.request(method, path, retry_on_expiry=False, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:200] or response.reason}
            raise ApiClientError(response.status_code, error.get("code"), error.get("message"), error.get("details"))
        return response

    @staticmethod
    def _expired(response):
        try:
            return response.json()["error"]["code"] == "token_expired"
        except (ValueError, KeyError, TypeError):
            return False

    def json(self, method, path, **kwargs):
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def _signed_in(self, body):
        self.access_token, self.refresh_token = body["access_token"], body["refresh_token"]
        return body

    def register(self, email, password, display_name=None):
        payload = {"email": email, "password": password} | ({"display_name": display_name} if display_name else {})
        return self._signed_in(self.json("POST", "/api/auth/register", json=payload))

    def login(self, email, password):
        return self._signed_in(self.json("POST", "/api/auth/login", json={"email": email, "password": password}))

    def refresh(self):
        access, self.access_token = self.access_token, self.refresh_token
        try:
            self.access_token = self.json("POST", "/api/auth/refresh", retry_on_expiry=False)["access_token"]
        except ApiClientError:
            self.access_token = access
            raise
        return self.access_token

    def logout(self):
        self.json("POST", "/api/auth/logout", json={"refresh_token": self.refresh_token} if self.refresh_token else {})
        self.access_token = self.refresh_token = None

    def analyze(self, audio, session_id=None, filename=None):
        """Upload a file (path or bytes) for analysis; returns {"job_id", "status_url"}."""
        data = Path(audio).read_bytes() if isinstance(audio, (str, Path)) else audio
        name = filename or (Path(audio).name if isinstance(audio, (str, Path)) else "audio")
        params = {"session_id": session_id} if session_id else None
        return self.json("POST", "/api/analyze", files={"file": (name, data)}, params=params)

    def job(self, job_id):
        return self.json("GET", f"/api/analyze/{job_id}")

    def wait_for_job(self, job_id, timeout=120, poll=0.25, on_progress=None):
        """Poll until the analysis is finished or failed; returns the job."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_progress:
                on_progress(job)
            if job["status"] in ("finished", "failed"):
                return job
            if time.monotonic() > deadline:
                raise ApiClientError(None, "timeout", f"analysis {job_id} not done after {timeout} s")
            time.sleep(poll)

    def pages(self, path, **params):
        """Every item of a paginated list, following `next` links."""
        url, query = path, params
        while url:
            page = self.json("GET", url, params=query)
            yield from page["items"]
            url, query = page["next"], None

    # -- live streaming -----------------------------------------------------------------

    def live_stream(self, **kwargs):
        return LiveStream(self, **kwargs)


# `error` codes with which the server ends a stream's connection: its token no longer holds.
CUT_OFF = ("token_expired", "token_revoked", "user_not_found")
# 1 s chunks, the windows' hop: each Socket.IO message costs the server about the same whatever
# its size, and a chunk of one hop completes one window, so its result waits for no more audio
# than with shorter chunks (docs/BENCHMARKS.md).
CHUNK_MS = 1000


class LiveStream:
    """One Socket.IO connection streaming PCM and collecting the events it gets back."""

    def __init__(self, client, wait_timeout=30, transports=("websocket",)):
        self.client = client
        self.wait_timeout = wait_timeout
        self.transports = list(transports)
        # The REST session's cookies go with the connection: a sticky load balancer's cookie
        # keeps a client's REST calls and its stream on one web process.
        self.sio = socketio.Client(reconnection=False, http_session=client.http)
        self.emotions, self.environments, self.collective, self.lags, self.errors = [], [], [], [], []
        self.received_at = {}  # window index -> time.time() when its emotion event arrived
        self.session_id = None
        self.format = None
        self.cut_off = None  # the `error` with which the server ended the connection (its token failed)
        self._started, self._stopped = threading.Event(), threading.Event()
        self._disconnected = threading.Event()
        self.summary = None
        self._on_emotion = None
        self._refusal = None
        self.sio.on("connect_error", self._refused)
        for event, handler in (("started", self._started_event), ("stopped", self._stopped_event),
                               ("emotion", self._emotion_event), ("environment", self.environments.append),
                               ("collective", self.collective.append), ("lag", self.lags.append),
                               ("error", self.errors.append), ("disconnect", self._disconnect_event)):
            self.sio.on(event, handler)

    def __enter__(self):
        return self.connect()

    def __exit__(self, *_exc):
        self.close()

    def on_emotion(self, callback):
        self._on_emotion = callback

    def connect(self):
        self._disconnected.clear()
        try:
            self.sio.connect(self.client.base_url, auth={"token": self.client.access_token},
                             transports=self.transports, wait_timeout=self.wait_timeout)
        except socketio.exceptions.ConnectionError as exc:
            # The server refuses with {"message", "data": {"code", "message"}}.
            detail = self._refusal.get("data") if isinstance(self._refusal, dict) else None
            detail = detail if isinstance(detail, dict) else {}
            raise ApiClientError(401 if detail else None, detail.get("code", "unreachable"),
                                 detail.get("message", str(exc)))
        return self

    def _refused(self, data=None):
        self._refusal = data

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()

    def _disconnect_event(self, *_reason):
        if self.errors and self.errors[-1].get("code") in CUT_OFF:
            self.cut_off = self.errors[-1]
        self._disconnected.set()

    def resume(self):
        """After the server cut the stream off because its access token expired: a new
        connection with a refreshed token, resuming the same session where it was."""
        self._disconnected.wait(self.wait_timeout)
        self.client.refresh()
        self.cut_off = None
        self.connect()
        self.start(self.format, session_id=self.session_id)
        return self

    def _started_event(self, data):
        self.session_id = data["session_id"]
        self._started.set()

    def _stopped_event(self, data):
        self.summary = data
        self._stopped.set()

    def _emotion_event(self, data):
        index = data.get("window_index")
        if index in self.received_at:  # a retried job may emit a window twice
            return
        self.received_at[index] = time.time()
        self.emotions.append(data)
        if self._on_emotion:
            self._on_emotion(data)

    def _wait(self, event, what):
        if not event.wait(self.wait_timeout):
            reason = self.errors[-1]["message"] if self.errors else "no answer"
            raise ApiClientError(None, "timeout", f"{what}: {reason}")

    def start(self, fmt, session_id=None, name=None):
        payload = {"format": fmt, **({"session_id": session_id} if session_id else {}),
                   **({"name": name} if name else {})}
        self.format = fmt
        self._started.clear()
        self.sio.emit("start", payload)
        self._wait(self._started, "stream not started")
        return self.session_id

    def send(self, chunk):
        self.sio.emit("audio", chunk)

    def join_collective(self):
        self.sio.emit("join", {"room": "collective"})

    def stop(self):
        self.sio.emit("stop")
        self._wait(self._stopped, "stream not stopped")
        return self.summary

    def wait_for_emotions(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.emotions) + self.dropped() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.emotions

    def dropped(self):
        return sum(lag["dropped"] for lag in self.lags)

    def stream_samples(self, pcm16, sample_rate=SAMPLE_RATE, chunk_ms=CHUNK_MS, realtime=True, on_chunk=None):
        """Send int16 mono samples in chunks, at real-time pace unless realtime is False.
        Returns the send time of each chunk (for latency measurements)."""
        step = int(sample_rate * chunk_ms / 1000)
        sent = []
        started = time.monotonic()
        for i, first in enumerate(range(0, len(pcm16), step)):
            if realtime:
                delay = started + i * chunk_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.send(pcm16[first:first + step].astype("<i2").tobytes())
            sent.append(time.time())
            if on_chunk:
                on_chunk(i)
        return sent
