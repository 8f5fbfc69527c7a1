"""Account-wide operations shared by the API, the admin and the CLI."""
import functools
import secrets

from app.auth import voice
from app.auth.tokens import mark_account_gone
from app.environment.store import delete_responses
from app.extensions import bcrypt
from app.models import AnalysisJob, EmotionSession, EnvironmentResponse, User
from app.readings.store import delete_owner_readings


def delete_account(user):
    """Remove the user and everything they own; dependants first, so a crash leaves no orphans.
    Marked gone first: their live streams end within a second of audio, and workers store
    nothing more for them (app/live/drain.py removes what a batch stored meanwhile)."""
    mark_account_gone(user.id)
    delete_responses(EnvironmentResponse.objects(owner=user))
    delete_owner_readings(user, EmotionSession.objects(owner=user).scalar("id"))
    for model in (AnalysisJob, EmotionSession):
        model.objects(owner=user).delete()
    user.delete()
    # After the user: a worker loading the baseline now finds no user and caches nothing.
    voice.forget(user)


def hash_password(password):
    return bcrypt.generate_password_hash(password).decode()


@functools.cache
def _timing_dummy_hash():
    return hash_password(secrets.token_urlsafe(16))


def authenticate(email, password):
    """The user whose credentials these are, else None. An unknown email costs a bcrypt check
    too, so both failures take as long and the answer time reveals nothing."""
    user = User.objects(email=User.normalize_email(email)).first()
    stored = user.password_hash if user else _timing_dummy_hash()
    return user if bcrypt.check_password_hash(stored, password) and user is not None else None
