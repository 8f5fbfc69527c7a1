"""Web process entry point: Flask-SocketIO's own server under eventlet, bound to $PORT.

gunicorn 24+ has no eventlet worker, so the server is socketio.run (ARCHITECTURE.md, decision 5).
"""
from config import Config

if Config.ASYNC_MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()

    from app import runtime

    runtime.patch_eventlet_websocket()

from app import create_app  # noqa: E402  (after monkey-patching)
from app.extensions import socketio  # noqa: E402
from app.runtime import freeze_startup_objects, no_delay_protocol  # noqa: E402

app = create_app()

if __name__ == "__main__":
    freeze_startup_objects()
    server_options = {"protocol": no_delay_protocol()} if Config.ASYNC_MODE == "eventlet" else {}
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], log_output=True, **server_options)
