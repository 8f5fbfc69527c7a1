"""Flask commands: `flask users create-admin`, `flask db ensure-indexes`."""
import click
from flask import current_app
from flask.cli import AppGroup

from app.accounts import hash_password
from app.models import ALL_MODELS, User

users_cli = AppGroup("users", help="Manage accounts.")
db_cli = AppGroup("db", help="Database maintenance.")


@users_cli.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--display-name", default=None)
@click.password_option(help="At least PASSWORD_MIN_LENGTH characters.")
def create_admin(email, display_name, password):
    """Create an admin account, or promote an existing account to admin."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    email = User.normalize_email(email)
    user = User.objects(email=email).first()
    if user is None:
        if len(password) < minimum:
            raise click.BadParameter(f"must be at least {minimum} characters", param_hint="password")
        user = User(email=email, password_hash=hash_password(password), display_name=display_name or email.split("@")[0])
    user.role = "admin"
    user.save()
    click.echo(f"{email} is an admin")


@db_cli.command("ensure-indexes")
def ensure_indexes():
    """Create every index the API's queries use (the Procfile's release step)."""
    for model in ALL_MODELS:
        model.ensure_indexes()
        click.echo(f"indexes ensured: {model._get_collection_name()}")


def register_cli(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(db_cli)
