"""Live audio over Socket.IO (web process only; docs/PROTOCOL.md describes it for clients).

Clients connect with {"token": <access token>}, `start` a stream declaring its PCM format,
send binary `audio` chunks, and `stop`. The web process converts and windows the audio (cheap
numpy work per chunk) and puts each window on the workers' ready set in Redis (app.live.ready),
queueing a job to drain it when no drain job is waiting or queued; workers emit the results to
the session's room through the Redis message queue. Per-connection buffers and each user's
audio pace are the only state kept here (ARCHITECTURE.md, decision 8).

The token is checked at connect and again while a stream goes on: its expiry with every chunk
(no round trip), its revocation and the account's deletion with every window, i.e. once per
second of audio, inside the one Redis script that queues the window (app/live/ready.py). A
stream whose token fails ends with an `error` and a disconnect; its session stays active, so
the client resumes it with a fresh token (`start` with its `session_id`). Per-user limits on
connections, streams and new sessions are in app/live/limits.py.
"""
import json
import logging
import time
from dataclasses import dataclass

from bson import ObjectId
from flask import current_app, request
from flask_socketio import ConnectionRefusedError, emit, join_room, leave_room

from app.api.errors import down_component
from app.api.schemas import text_problem
from app.auth.tokens import TokenRejected, gone_key, revoked_key, user_from_access_token, version_key
from app.extensions import socketio
from app.live import limits, ready
from app.models import EmotionReading, EmotionSession, User
from app.models.base import ref_id
from app.realtime import COLLECTIVE_ROOM, session_room
from app.sessions.store import end_session
from audio import HOP_SECONDS, WINDOW_SECONDS
from audio.pcm import ChunkConverter, PcmFormat, StreamError, to_s16
from audio.windows import Windower

NAME_MAX = 120

log = logging.getLogger(__name__)


@dataclass
class LiveStream:
    session_id: str
    converter: ChunkConverter
    windower: Windower
    bytes_per_second: int
    windows: int = 0
    dropped_total: int = 0


@dataclass
class Connection:
    user_id: str
    is_admin: bool
    revoked_key: str   # the token's entry in the revocation list, were it revoked
    token_version: int  # revoked once the user's version is above it (app/auth/tokens.py revoke_all)
    expires_at: float  # the token's expiry, epoch seconds
    pace: limits.Pace  # shared by the user's connections to this process
    stream: LiveStream | None = None


# Seconds of audio a user may send at once before their pace holds them back.
PACE_BURST_S = 10.0
paces: dict[str, limits.Pace] = {}


# Why a stream's token no longer holds, by what app/live/ready.add_pending found.
STOPPED = {ready.TOKEN_REVOKED: ("token_revoked", "Token has been revoked: connect again with a fresh token and "
                                                  "resume the session with start {session_id}"),
           ready.ACCOUNT_GONE: ("user_not_found", "The account for this token no longer exists")}
TOKEN_EXPIRED = ("token_expired", "Token has expired: connect again with a fresh token and resume the session "
                                  "with start {session_id}")


connections: dict[str, Connection] = {}


def _reply(sid, event, payload):
    # Straight to the caller's own connection, not through the Redis message queue: it is
    # connected here, and an error about Redis being down must still reach it.
    socketio.emit(event, payload, to=sid, ignore_queue=True)


def _error_to(sid, code, message, field_name=None, **extra):
    _reply(sid, "error", {"code": code, "message": message, **({"field": field_name} if field_name else {}), **extra})


def _error(code, message, field_name=None, **extra):
    """An `error` to the connection whose event is being handled."""
    _error_to(request.sid, code, message, field_name, **extra)


def _connection():
    return connections.get(request.sid)


@socketio.on("connect")
def on_connect(auth=None):
    token = auth.get("token") if isinstance(auth, dict) else None
    config = current_app.config
    try:
        user, claims = user_from_access_token(token)
        allowed = limits.acquire(current_app.extensions["redis"], limits.CONNECTIONS, str(user.id), request.sid,
                                 claims["exp"], config["STREAM_MAX_CONNECTIONS_PER_USER"])
    except TokenRejected as rejected:
        raise ConnectionRefusedError(rejected.message, {"code": rejected.code, "message": rejected.message})
    except Exception as error:  # the token cannot be checked while Redis or MongoDB is down
        component = down_component(error)
        if component is None:
            raise
        message = f"{component} is unavailable; try again shortly"
        raise ConnectionRefusedError(message, {"code": "service_unavailable", "message": message,
                                               "component": component})
    if not allowed:
        message = f"At most {config['STREAM_MAX_CONNECTIONS_PER_USER']} live connections per user"
        raise ConnectionRefusedError(message, {"code": "too_many_connections", "message": message})
    user_id = str(user.id)
    pace = paces.get(user_id) or paces.setdefault(user_id, limits.Pace(config["STREAM_USER_AUDIO_SPEED"], PACE_BURST_S))
    connections[request.sid] = Connection(user_id=user_id, is_admin=user.is_admin, revoked_key=revoked_key(claims),
                                          token_version=int(claims.get("ver", 0)), expires_at=claims["exp"], pace=pace)


def _token_problem(conn):
    """Why this connection's token no longer holds (code, message), else None: one Redis round trip."""
    if time.time() >= conn.expires_at:
        return TOKEN_EXPIRED
    revoked, gone, version = current_app.extensions["redis"].mget([conn.revoked_key, gone_key(conn.user_id),
                                                                   version_key(conn.user_id)])
    if gone:
        return STOPPED[ready.ACCOUNT_GONE]
    return STOPPED[ready.TOKEN_REVOKED] if revoked or int(version or 0) > conn.token_version else None


def _cut_off(sid, conn, problem):
    """End the connection whose token no longer holds: its stream stops where it is (the audio
    not yet windowed is not analysed) and its session stays active, for `start` {session_id}
    with a fresh token; an `error` says why, then the server disconnects."""
    stream, conn.stream = conn.stream, None
    if stream is not None:
        app = socketio.server.get_environ(sid)["flask.app"]
        limits.release(app.extensions["redis"], limits.STREAMS, conn.user_id, sid)
    code, message = problem
    _error_to(sid, code, message, **({"session_id": stream.session_id} if stream else {}))
    socketio.server.disconnect(sid)


def _visible_session(conn, session_id, admin_sees_all):
    """The session if this connection's user may use it, else None (unknown and foreign alike)."""
    if not isinstance(session_id, str) or not ObjectId.is_valid(session_id):
        return None
    session = EmotionSession.objects(id=session_id).first()
    if session is None or (ref_id(session, "owner") != conn.user_id and not (admin_sees_all and conn.is_admin)):
        return None
    return session


def _own_active_session(conn, session_id):
    session = _visible_session(conn, session_id, admin_sees_all=False)
    if session is None:
        return None, ("session_not_found", "No such session of yours")
    if session.status != "active":
        return None, ("session_ended", "The session has ended; start a new one")
    return session, None


@socketio.on("start")
def on_start(data=None):
    """Begin a stream: {"format": {...}, "session_id"?: str, "name"?: str} -> `started`."""
    conn = _connection()
    if conn.stream is not None:
        return _error("already_streaming", "Stop the current stream before starting another")
    problem = _token_problem(conn)
    if problem:
        return _cut_off(request.sid, conn, problem)
    if not isinstance(data, dict) or set(data) - {"format", "session_id", "name"}:
        return _error("invalid_start", "start takes {format, session_id?, name?}")
    try:
        fmt = PcmFormat.from_dict(data.get("format"))
    except StreamError as error:
        return _error(error.code, error.message, error.field and f"format.{error.field}")
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > NAME_MAX:
        return _error("invalid_start", f"name must be a string of at most {NAME_MAX} characters", "name")
    if text_problem(name):
        return _error("invalid_start", f"name: {text_problem(name)}", "name")
    redis, config = current_app.extensions["redis"], current_app.config
    first_index = 0
    if "session_id" in data:
        session, problem = _own_active_session(conn, data["session_id"])
        if problem:
            return _error(*problem, "session_id")
    if not limits.acquire(redis, limits.STREAMS, conn.user_id, request.sid, conn.expires_at,
                          config["STREAM_MAX_STREAMS_PER_USER"]):
        return _error("too_many_streams", f"At most {config['STREAM_MAX_STREAMS_PER_USER']} live streams per user "
                                          "at once: stop one first")
    if "session_id" in data:
        session.update(set__audio_format=fmt.as_dict())
        first_index = _next_window_index(str(session.id))
    else:
        retry_after = limits.new_session_allowed(redis, conn.user_id, config["STREAM_SESSIONS_PER_MINUTE"],
                                                 request.sid)
        if retry_after is not None:
            limits.release(redis, limits.STREAMS, conn.user_id, request.sid)
            return _error("too_many_sessions", f"At most {config['STREAM_SESSIONS_PER_MINUTE']} new sessions per "
                                               "minute: resume one with start {session_id}, or wait",
                          retry_after=retry_after)
        session = EmotionSession(owner=User(id=conn.user_id), source="stream", name=name,
                                 audio_format=fmt.as_dict()).save()
    session_id = str(session.id)
    conn.stream = LiveStream(session_id=session_id, converter=ChunkConverter(fmt),
                             bytes_per_second=fmt.frame_bytes * fmt.sample_rate,
                             windower=Windower(WINDOW_SECONDS, HOP_SECONDS, warmup=True, first_index=first_index))
    join_room(session_room(session_id))
    emit("started", {"session_id": session_id, "window_s": WINDOW_SECONDS, "hop_s": HOP_SECONDS,
                     "format": fmt.as_dict()})


def _enqueue(app, sid, conn, stream, windows, received_at):
    """Hand completed windows to the workers: audio and descriptor into Redis, and a drain
    job when none is waiting or queued (app/live/drain.py drain_windows). Returns why the
    token no longer holds, if Redis said so instead of taking a window (then nothing more is
    queued)."""
    redis = app.extensions["redis"]
    dropped, drain = [], False
    for window in windows:
        pcm = to_s16(window.samples).tobytes()
        descriptor = json.dumps({"session_id": stream.session_id, "user_id": conn.user_id, "index": window.index,
                                 "start_s": window.start_s, "end_s": window.end_s, "received_at": received_at})
        stopped, more, claimed = ready.add_pending(redis, stream.session_id, conn.user_id, window.index,
                                                   app.config["STREAM_MAX_PENDING"], pcm, descriptor,
                                                   conn.revoked_key, gone_key(conn.user_id),
                                                   version_key(conn.user_id), conn.token_version,
                                                   app.config["STREAM_BATCH_WAIT_MS"])
        if stopped:
            return STOPPED[stopped]
        dropped += more
        drain = drain or claimed
        stream.windows += 1
    if drain:
        ready.enqueue_drain(redis)
    if dropped:
        stream.dropped_total += len(dropped)
        _reply(sid, "lag", {"dropped": len(dropped), "dropped_windows": dropped, "dropped_total": stream.dropped_total,
                            "pending": app.config["STREAM_MAX_PENDING"]})


def on_audio(sid, chunk=None):
    """A binary chunk of PCM in the declared format.

    Registered on the Socket.IO server itself (register_audio_handler), not through
    Flask-SocketIO: at ten chunks a second per stream, the Flask request context that
    Flask-SocketIO builds around every event took a third of the web process's CPU
    (docs/BENCHMARKS.md). This handler needs none, and answers its own failures."""
    try:
        conn = connections.get(sid)
        if conn is None:  # its connect was refused or it is gone
            return
        if conn.stream is None:
            return _error_to(sid, "not_started", "Send start before audio")
        if isinstance(chunk, bytes | bytearray):
            wait = conn.pace.delay(len(chunk) / conn.stream.bytes_per_second)
            if wait:
                socketio.sleep(wait)  # this connection's next events wait too: TCP holds its sender back
                if conn.stream is None or sid not in connections:  # cut off meanwhile
                    return
        received_at = time.time()
        if received_at >= conn.expires_at:
            return _cut_off(sid, conn, TOKEN_EXPIRED)
        try:
            samples = conn.stream.converter.convert(chunk)
        except StreamError as error:
            return _error_to(sid, error.code, error.message)
        windows = conn.stream.windower.feed(samples)
        if windows:
            app = socketio.server.get_environ(sid)["flask.app"]
            problem = _enqueue(app, sid, conn, conn.stream, windows, received_at)
            if problem:
                _cut_off(sid, conn, problem)
    except Exception as error:
        _answer_failure(sid, "audio", error)


class MalformedPackets(logging.Filter):
    """engineio logs a traceback, twice, for every packet that python-socketio cannot decode (a
    binary attachment without its event, bytes that are no packet): a client sending garbage
    costs the web process a traceback's formatting and the log pipeline its volume per packet
    (a flooding client that closed with its queue half sent made 29,000 of them). They are
    counted instead, with a warning at the first and every 1,000th."""

    count = 0

    def filter(self, record):
        if record.getMessage() != "message handler error" or not record.exc_info \
                or not isinstance(record.exc_info[1], ValueError):
            return True
        MalformedPackets.count += 1
        if MalformedPackets.count % 1000 == 1:
            log.warning("%d malformed Socket.IO packets ignored so far (%s)", MalformedPackets.count,
                        record.exc_info[1])
        return False


def register_audio_handler(server):
    server.on("audio", on_audio)
    server.eio.logger.addFilter(MalformedPackets())


def _finish(conn):
    """Flush the last partial window, end the session; returns the summary for `stopped`, or
    (code, message) when the token no longer holds (for _cut_off)."""
    stream, conn.stream = conn.stream, None
    app = current_app._get_current_object()
    limits.release(app.extensions["redis"], limits.STREAMS, conn.user_id, request.sid)
    received_at = time.time()
    windows = stream.windower.feed(stream.converter.flush())
    last = stream.windower.flush()
    if last is not None:
        windows.append(last)
    if received_at >= conn.expires_at:
        windows = []  # a token that expired meanwhile queues nothing more
    problem = windows and _enqueue(app, request.sid, conn, stream, windows, received_at)
    if problem:  # the token was revoked or the account deleted meanwhile: the session is not ended
        conn.stream = stream
        return problem
    end_session(stream.session_id)
    return {"session_id": stream.session_id, "windows": stream.windows, "dropped_total": stream.dropped_total}


@socketio.on("stop")
def on_stop(_data=None):
    conn = _connection()
    if conn.stream is None:
        return _error("not_started", "No stream to stop")
    summary = _finish(conn)
    if isinstance(summary, tuple):
        return _cut_off(request.sid, conn, summary)
    emit("stopped", summary)


@socketio.on("disconnect")
def on_disconnect(_reason=None):
    conn = connections.pop(request.sid, None)
    if conn is None:
        return
    if not any(other.user_id == conn.user_id for other in connections.values()):
        paces.pop(conn.user_id, None)
    session_id = conn.stream.session_id if conn.stream is not None else None
    try:
        limits.release(current_app.extensions["redis"], limits.CONNECTIONS, conn.user_id, request.sid)
        if conn.stream is not None:
            _finish(conn)
    except Exception as error:
        component = down_component(error)
        if component is None:
            raise
        # A slot not given back frees itself when the token expires (app/live/limits.py).
        if session_id is not None:  # the session could not be ended: it stays active, to be resumed
            log.warning("stream of session %s cut off while %s is down: the session stays active",
                        session_id, component)


@socketio.on("join")
def on_join(data=None):
    """{"room": "collective"} for anyone; {"session_id": id} for its owner or an admin."""
    conn = _connection()
    if data == {"room": "collective"}:
        join_room(COLLECTIVE_ROOM)
        return emit("joined", {"room": COLLECTIVE_ROOM})
    if not isinstance(data, dict) or set(data) != {"session_id"} or not isinstance(data["session_id"], str):
        return _error("invalid_join", 'join takes {"room": "collective"} or {"session_id": id}')
    if _visible_session(conn, data["session_id"], admin_sees_all=True) is None:
        return _error("session_not_found", "No such session of yours", "session_id")
    join_room(session_room(data["session_id"]))
    emit("joined", {"room": session_room(data["session_id"])})


@socketio.on("leave")
def on_leave(data=None):
    if data == {"room": "collective"}:
        leave_room(COLLECTIVE_ROOM)
    elif isinstance(data, dict) and isinstance(data.get("session_id"), str):
        leave_room(session_room(data["session_id"]))
    else:
        return _error("invalid_leave", 'leave takes {"room": "collective"} or {"session_id": id}')
    emit("left", data)


def _next_window_index(session_id):
    """Where a resumed session's window numbering goes on: after every window already stored
    or still waiting for a worker, so that no window key is used twice."""
    prefix = f"{session_id}:"
    keys = EmotionReading.objects(session=session_id, window_key__startswith=prefix).scalar("window_key")
    indices = [int(key[len(prefix):]) for key in keys if key[len(prefix):].isdigit()]
    pending = current_app.extensions["redis"].zrange(ready.pending_key(session_id), -1, -1, withscores=True)
    indices += [int(score) for _, score in pending]
    return max(indices) + 1 if indices else 0


def _answer_failure(sid, event, error):
    """A handler that failed answers `error` instead of leaving the client waiting: a backing
    service that is down is named (service_unavailable, component redis or mongodb); the
    connection and the stream stay up, and the windows completed meanwhile are not analysed."""
    component = down_component(error)
    if component is None:
        log.error("Socket.IO handler %s failed", event, exc_info=error)
        return _error_to(sid, "internal_error", "Internal server error")
    log.warning("Socket.IO %s: %s unavailable: %s", event, component, error)
    if event != "disconnect":
        _error_to(sid, "service_unavailable", f"{component} is unavailable; try again shortly", component=component)


@socketio.on_error_default
def on_handler_error(error):
    event = (getattr(request, "event", None) or {}).get("message")
    if event == "connect":  # never accept a connection whose check failed
        raise ConnectionRefusedError("internal error", {"code": "internal_error", "message": "Internal server error"})
    _answer_failure(request.sid, event, error)
