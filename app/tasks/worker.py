"""The RQ worker class the Procfile runs.

SimpleWorker runs jobs in its own process instead of forking one child per job: TensorFlow is
not fork-safe once initialised, and loading the model per job would cost far more than the
inference (ARCHITECTURE.md, decision 2). The Flask app is built once here, so jobs share its
MongoDB connection and configuration, and the model is loaded before the first job arrives.
"""
import logging

from rq import SimpleWorker

from app import create_app
from app.tasks.model import recognizer

log = logging.getLogger(__name__)


class AnalysisWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = create_app(serve_socketio=False)
        self.app.app_context().push()
        try:
            recognizer()
        except Exception:  # the collective jobs still run; analysis jobs will fail with the reason
            log.exception("the emotion model could not be loaded")
