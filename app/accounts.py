"""Account-wide operations shared by the API and the CLI."""
from app.extensions import bcrypt
from app.models import AnalysisJob, EmotionReading, EmotionSession, EnvironmentResponse


def delete_account(user):
    """Remove the user and everything they own; dependants first, so a crash leaves no orphans."""
    for model in (EnvironmentResponse, EmotionReading, AnalysisJob, EmotionSession):
        model.objects(owner=user).delete()
    user.delete()


def hash_password(password):
    return bcrypt.generate_password_hash(password).decode()
