"""Flask's signed-cookie session, with its signing serializer built once per key set.

Flask builds a new itsdangerous serializer for every request context it pushes, and
Flask-SocketIO pushes one for every Socket.IO event: with live audio arriving ten times a
second per stream, that was 9% of the web process's CPU (py-spy, docs/BENCHMARKS.md).
"""
from flask.sessions import SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    def __init__(self):
        self._serializers = {}

    def get_signing_serializer(self, app):
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = self._serializers[keys] = super().get_signing_serializer(app)
        return serializer
