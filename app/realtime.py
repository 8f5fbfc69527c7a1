"""Emitting Socket.IO events from any process.

The web process emits through its own server; workers and cron emit through a write-only
client of the Redis message queue, which the web processes relay to their connected clients
(ARCHITECTURE.md, decision 3).
"""
from contextlib import contextmanager, nullcontext

import socketio as python_socketio
from flask import current_app
from flask_socketio import SocketIO

from app.extensions import socketio

COLLECTIVE_ROOM = "collective"
# Flask-SocketIO's channel on the message queue, which the web processes listen to.
CHANNEL = "flask-socketio"


class BatchingRedisManager(python_socketio.RedisManager):
    """The write-only message-queue client of workers and cron, which can publish a batch of
    events in one Redis round trip, or queue them on a caller's pipeline to the same Redis
    (`_publish` is the method a message-queue manager implements; each message is the one the
    library builds, published as it would)."""

    def __init__(self, url):
        super().__init__(url, channel=CHANNEL, write_only=True)
        self._batch = None

    def _publish(self, data):
        if self._batch is None:
            return super()._publish(data)
        self._batch.append(data)

    @contextmanager
    def batch(self, pipe=None):
        self._batch = []
        try:
            yield
            if self._batch:
                own = pipe is None
                if own:
                    if not self.connected:
                        self._redis_connect()
                    pipe = self.redis.pipeline(transaction=False)
                for data in self._batch:
                    pipe.publish(self.channel, self.json.dumps(data))
                if own:
                    pipe.execute()
        finally:
            self._batch = None


def session_room(session_id):
    return f"session:{session_id}"


def emitter():
    if socketio.server is not None:
        return socketio
    instance = current_app.extensions.get("socketio_emitter")
    if instance is None:
        url = current_app.config["REDIS_URL"]
        instance = SocketIO(message_queue=url, client_manager=BatchingRedisManager(url))
        current_app.extensions["socketio_emitter"] = instance
    return instance


def emit(event, payload, room):
    emitter().emit(event, payload, to=room)


def emit_many(events, pipe=None):
    """Emit (event, payload, room) triples in order; from a worker, in one Redis round trip, or
    queued on `pipe` (a pipeline to the app's Redis, the message queue's) for the caller to execute."""
    instance = emitter()
    manager = instance.server.manager
    with manager.batch(pipe) if isinstance(manager, BatchingRedisManager) else nullcontext():
        for event, payload, room in events:
            instance.emit(event, payload, to=room)
