"""The admin's own sign-in: an email and password form into the signed session cookie."""
from flask import current_app, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose

from app.admin.base import AdminOnlyMixin, safe_next
from app.admin.forms import LoginForm, LogoutForm
from app.admin.security import sign_in, sign_out
from app.auth.accounts import authenticate
from app.auth.guard import SignInGuard
from app.extensions import limiter
from app.models import ALL_MODELS

# The same budgets (and counters) as the API's sign-in: a guesser gains nothing by switching.
_admin_login_rate_limited = limiter.shared_limit(lambda: current_app.config["RATELIMIT_AUTH_IP"], scope="auth-ip",
                                                 methods=["POST"])


class AdminHomeView(AdminOnlyMixin, AdminIndexView):
    """/admin itself (admins only), and /admin/login and /admin/logout (open to everyone)."""

    OPEN_VIEWS = {"login", "logout"}

    def _handle_view(self, name, **kwargs):
        if name in self.OPEN_VIEWS:
            return None
        return super()._handle_view(name, **kwargs)

    @expose("/")
    def index(self):
        counts = {model.__name__: model.objects.count() for model in ALL_MODELS}
        return self.render("admin/mood_index.html", counts=counts)

    @expose("/login", methods=["GET", "POST"])
    @_admin_login_rate_limited
    def login(self):
        form = LoginForm(request.form if request.method == "POST" else None, next=request.args.get("next"))
        if request.method == "GET":
            return self.render("admin/mood_login.html", form=form)
        if not form.validate():
            return self.render("admin/mood_login.html", form=form), 400
        guard = SignInGuard(form.email.data)
        if wait := guard.retry_after():
            flash(f"Too many failed sign-ins to this account from this address; try again in {wait} s.", "error")
            return self.render("admin/mood_login.html", form=form), 429, {"Retry-After": str(wait)}
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            guard.failed()
        elif user.is_admin:
            sign_in(user)
            return redirect(safe_next(form.next.data))
        # One message for every failure: whether an account exists or is an admin stays private.
        flash("Invalid email or password, or not an admin account.", "error")
        return self.render("admin/mood_login.html", form=form), 401

    @expose("/logout", methods=["POST"])
    def logout(self):
        if LogoutForm(request.form).validate():
            sign_out()
        return redirect(url_for("admin.login"))
