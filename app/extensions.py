"""Extension objects, created unbound and attached to the app in create_app, and the
connections to MongoDB and Redis every process opens."""
import mongoengine
import redis
from flask_bcrypt import Bcrypt
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import Api
from flask_socketio import SocketIO

from app.api.errors import ErrorShapeApi

bcrypt = Bcrypt()
cors = CORS()
jwt = JWTManager()
limiter = Limiter(key_func=get_remote_address)
api: Api = ErrorShapeApi()
socketio = SocketIO()


def connect_mongo(uri):
    mongoengine.disconnect()
    return mongoengine.connect(host=uri, tz_aware=True, serverSelectionTimeoutMS=3000, uuidRepresentation="standard")


def connect_redis(url):
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3, health_check_interval=30)
