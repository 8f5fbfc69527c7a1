"""MongoEngine documents. Importing this package registers every document class."""
from app.models.collective import CollectiveEmotion
from app.models.environment import EnvironmentResponse
from app.models.job import AnalysisJob
from app.models.reading import SILENCE, EmotionReading
from app.models.session import EmotionSession
from app.models.user import User

ALL_MODELS = (User, EmotionSession, EmotionReading, CollectiveEmotion, EnvironmentResponse, AnalysisJob)

__all__ = [
    "ALL_MODELS",
    "SILENCE",
    "AnalysisJob",
    "CollectiveEmotion",
    "EmotionReading",
    "EmotionSession",
    "EnvironmentResponse",
    "User",
]
