"""Web process entry point: Flask-SocketIO's own server under eventlet, bound to $PORT.

gunicorn 24+ has no eventlet worker, so the server is socketio.run (ARCHITECTURE.md, decision 5).
"""
import os

from dotenv import load_dotenv

load_dotenv()
if os.environ.get("ASYNC_MODE", "eventlet") == "eventlet":
    import eventlet

    eventlet.monkey_patch()

    from app import eventlet_websocket

    eventlet_websocket.install()

from app import create_app  # noqa: E402  (after monkey-patching)
from app.heap import freeze_startup_objects  # noqa: E402
from app.extensions import socketio  # noqa: E402

app = create_app()

if __name__ == "__main__":
    freeze_startup_objects()
    socketio.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=app.config["PORT"], log_output=True)
