"""The admin's sign-in forms. SecureForm carries a CSRF token bound to the session cookie."""
import wtforms
from flask_admin.form import SecureForm


class LoginForm(SecureForm):
    email = wtforms.EmailField("Email", [wtforms.validators.InputRequired(), wtforms.validators.Length(max=254)])
    password = wtforms.PasswordField("Password", [wtforms.validators.InputRequired(),
                                                  wtforms.validators.Length(max=1024)])
    next = wtforms.HiddenField()


class LogoutForm(SecureForm):
    pass
