"""Flask-Admin MongoEngine views, one per model in app.models.ALL_MODELS.

Readings, environment responses, snapshots and jobs are written by the pipeline and keep
invariants (probabilities summing to 1, derived valence...), so the admin may inspect and
delete them but not edit them. Users and sessions allow the few edits that are safe. A delete
goes through the area that owns the data (on_model_delete), which also removes what depends
on it; Flask-Admin's own delete of the document afterwards then finds nothing.
"""
from flask import g
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.form import SecureForm

from app.admin.base import AdminOnlyMixin
from app.auth.accounts import delete_account
from app.environment.store import delete_responses
from app.models import (
    ALL_MODELS,
    AnalysisJob,
    CollectiveEmotion,
    EmotionReading,
    EmotionSession,
    EnvironmentResponse,
    User,
)
from app.models.base import ref_id
from app.readings.store import delete_readings
from app.sessions.store import delete_session


def _ref(field):
    # Shows the referenced id without loading the document: no query per row.
    return lambda view, context, model, name: ref_id(model, field)


def _owner(view, context, model, name):
    # The owner's email, looked up once per page (get_list), else the id.
    owner_id = ref_id(model, "owner")
    return g.get("admin_owner_emails", {}).get(owner_id, owner_id)


class AdminModelView(AdminOnlyMixin, ModelView):
    form_base_class = SecureForm  # CSRF tokens on create, edit, delete and bulk actions
    can_create = False
    can_edit = False
    can_view_details = True
    can_export = False
    page_size = 50
    column_default_sort = ("id", True)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        rows = list(rows)
        if "owner" in (self.column_list or ()):
            owners = list({ref_id(row, "owner") for row in rows} - {None})
            g.admin_owner_emails = {str(user.id): user.email for user in User.objects(id__in=owners).only("email")}
        return count, rows

    def search_placeholder(self):
        # Flask-Admin's MongoEngine views would print "None" in the search box.
        return "Search: " + ", ".join(self.column_searchable_list or ())


class UserView(AdminModelView):
    can_edit = True
    # Accounts come from registration or `flask users create-admin`; the hash is never shown or set here.
    column_list = ("email", "display_name", "role", "created_at", "last_login_at")
    column_details_list = ("id", "email", "display_name", "role", "created_at", "last_login_at")
    form_columns = ("display_name", "role")
    column_searchable_list = ("email", "display_name")
    column_filters = ("role",)

    def on_model_delete(self, model):
        delete_account(model)  # everything the user owns goes with the account


class SessionView(AdminModelView):
    can_edit = True
    column_list = ("owner", "name", "source", "status", "started_at", "ended_at")
    column_formatters = {"owner": _owner}
    form_columns = ("name", "status")
    column_searchable_list = ("name",)
    column_filters = ("status", "source", "started_at")

    def on_model_delete(self, model):
        delete_session(model)


class ReadingView(AdminModelView):
    column_list = ("timestamp", "owner", "session", "source", "dominant", "confidence", "valence", "arousal",
                   "intensity", "silence", "model_version")
    column_formatters = {"owner": _owner, "session": _ref("session")}
    column_filters = ("dominant", "source", "silence", "timestamp", "model_version")

    def on_model_delete(self, model):
        delete_readings(EmotionReading.objects(id=model.id))  # out of the live collective mood as well


class EnvironmentView(AdminModelView):
    column_list = ("created_at", "owner", "session", "reading")
    column_formatters = {"owner": _owner, "session": _ref("session"), "reading": _ref("reading")}
    column_filters = ("created_at",)

    def on_model_delete(self, model):
        delete_responses(EnvironmentResponse.objects(id=model.id))


class CollectiveView(AdminModelView):
    column_list = ("created_at", "window_start", "window_end", "active_users", "active_sessions", "reading_count",
                   "dominant", "mean_valence", "mean_arousal")
    column_filters = ("created_at", "dominant")


class JobView(AdminModelView):
    column_list = ("created_at", "owner", "session", "status", "progress", "filename", "duration_s", "attempts",
                   "finished_at")
    column_formatters = {"owner": _owner, "session": _ref("session")}
    column_filters = ("status", "created_at")


# model: (view class, menu name, URL slug under /admin)
VIEWS = {
    User: (UserView, "Users", "users"),
    EmotionSession: (SessionView, "Sessions", "sessions"),
    EmotionReading: (ReadingView, "Readings", "readings"),
    EnvironmentResponse: (EnvironmentView, "Environment responses", "environment"),
    CollectiveEmotion: (CollectiveView, "Collective snapshots", "collective"),
    AnalysisJob: (JobView, "Analysis jobs", "jobs"),
}


def model_views(url):
    """New view objects for every model (a model added to ALL_MODELS without a view fails here)."""
    views = []
    for model in ALL_MODELS:
        view_class, name, slug = VIEWS[model]
        views.append(view_class(model, name=name, endpoint=f"admin_{slug}", url=f"{url}/{slug}"))
    return views
