"""Extension objects, created unbound and attached to the app in create_app."""
from flask_bcrypt import Bcrypt
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import Api
from flask_socketio import SocketIO

from app.errors import ErrorShapeApi

bcrypt = Bcrypt()
cors = CORS()
jwt = JWTManager()
limiter = Limiter(key_func=get_remote_address)
api: Api = ErrorShapeApi()
socketio = SocketIO()
