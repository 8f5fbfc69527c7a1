"""The web dashboard: one HTML shell, client-side views (static ES modules, no build step).

Every dashboard path answers the same shell, so deep links and reloads work; the browser's
router (app/static/dashboard/main.js) shows the view. One document for all views keeps the
Socket.IO connection, a running microphone stream and the refresh token (held in memory only,
never in storage) alive while the user moves between Live, Upload, History and Collective.
"""
from flask import Blueprint, redirect, render_template, url_for

from ml.params import CLASSES

bp = Blueprint("dashboard", __name__)

VIEWS = ("live", "upload", "history", "collective", "login", "signup")


def _shell(view, session_id=None):
    return render_template("dashboard/app.html", view=view, session_id=session_id, classes=CLASSES)


@bp.route("/")
def index():
    return redirect(url_for("dashboard.live"))


@bp.route("/live")
def live():
    return _shell("live")


@bp.route("/upload")
def upload():
    return _shell("upload")


@bp.route("/history")
def history():
    return _shell("history")


@bp.route("/history/<session_id>")
def session_detail(session_id):
    return _shell("session", session_id=session_id)


@bp.route("/collective")
def collective():
    return _shell("collective")


@bp.route("/login")
def login():
    return _shell("login")


@bp.route("/signup")
def signup():
    return _shell("signup")
