"""Emitting Socket.IO events from any process.

The web process emits through its own server; workers and cron emit through a write-only
client of the Redis message queue, which the web processes relay to their connected clients
(ARCHITECTURE.md, decision 3).
"""
from flask import current_app
from flask_socketio import SocketIO

from app.extensions import socketio

COLLECTIVE_ROOM = "collective"


def session_room(session_id):
    return f"session:{session_id}"


def emitter():
    if socketio.server is not None:
        return socketio
    instance = current_app.extensions.get("socketio_emitter")
    if instance is None:
        instance = SocketIO(message_queue=current_app.config["REDIS_URL"])
        current_app.extensions["socketio_emitter"] = instance
    return instance


def emit(event, payload, room):
    emitter().emit(event, payload, to=room)
