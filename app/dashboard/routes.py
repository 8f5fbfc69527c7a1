"""The web dashboard: one HTML shell, client-side views (static ES modules, no build step).

Every dashboard path answers the same shell, so deep links and reloads work; the browser's
router (app/static/dashboard/main.js) shows the view. One document for all views keeps the
Socket.IO connection, a running microphone stream and the refresh token (held in memory only,
never in storage) alive while the user moves between Live, Upload, History, Collective and Account.
"""
import functools

from flask import Blueprint, current_app, redirect, render_template, url_for

from ml.params import CLASSES

bp = Blueprint("dashboard", __name__)

# Each view at /<view>, under the endpoint dashboard.<view>.
VIEWS = ("live", "upload", "history", "collective", "account", "login", "signup", "forgot-password", "reset-password")


def shell(view, session_id=None):
    return render_template("dashboard/app.html", view=view, session_id=session_id, classes=CLASSES,
                           max_upload_mb=current_app.config["MAX_UPLOAD_MB"],
                           max_audio_seconds=current_app.config["MAX_AUDIO_SECONDS"])


@bp.route("/")
def index():
    return redirect(url_for("dashboard.live"))


for _view in VIEWS:
    bp.add_url_rule(f"/{_view}", endpoint=_view, view_func=functools.partial(shell, _view))


@bp.route("/profile")
def profile():
    # The Profile page became part of Account.
    return redirect(url_for("dashboard.account"))


@bp.route("/history/<session_id>")
def session_detail(session_id):
    return shell("session", session_id=session_id)
