"""Flask commands: `flask users create-admin`, `flask db ensure-indexes`, `flask db rebuild-rollups`, `flask export`,
`flask seed-demo`, `flask prune`, `flask aggregate-collective`. Each is a thin wrapper over its
area's code."""
import functools
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.api.errors import BACKING_SERVICE_ERRORS, down_component
from app.auth.accounts import delete_account, hash_password
from app.export.formats import FORMATS, export_chunks, readings_for_export
from app.models import ALL_MODELS, User
from app.readings.store import rebuild_rollups, rollups_built
from app.system.retention import prune

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
        user = User(email=email, password_hash=hash_password(password),
                    display_name=display_name or email.split("@")[0])
    user.role = "admin"
    user.save()
    click.echo(f"{email} is an admin")


@db_cli.command("ensure-indexes")
def ensure_indexes():
    """Create every index the API's queries use (the Procfile's release step)."""
    for model in ALL_MODELS:
        model.ensure_indexes()
        click.echo(f"indexes ensured: {model._get_collection_name()}")


@db_cli.command("rebuild-rollups")
@click.option("--if-missing", is_flag=True,
              help="Only when Redis holds no rollups of the current format (a new or emptied Redis, or an old format).")
def rebuild_rollups_command(if_missing):
    """Recompute the analytics' rollups from the readings (after a Redis loss; run it while no
    readings are being written): each user's buckets now, each session's series on first use."""
    if if_missing and rollups_built():
        click.echo("rollups present")
        return
    count = rebuild_rollups(progress=lambda n: click.echo(f"  {n} readings read", err=True))
    click.echo(f"rollups rebuilt from {count} readings")


@click.command("export")
@with_appcontext
@click.option("--format", "fmt", type=click.Choice(tuple(FORMATS)), required=True)
@click.option("--user", "email", required=True, help="Email of the account whose readings are exported.")
@click.option("--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write (default: standard output).")
def export_command(fmt, email, output):
    """Export one user's readings as CSV or JSON (the same output as GET /api/export)."""
    user = User.objects(email=User.normalize_email(email)).first()
    if user is None:
        raise click.BadParameter(f"no account with email {email}", param_hint="--user")
    chunks = export_chunks(readings_for_export(user), fmt)
    if output == "-":
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return
    # newline="": the CSV writer already ends rows with CRLF; no translation on any platform.
    with open(output, "w", encoding="utf-8", newline="") as out:
        out.writelines(chunks)
    click.echo(f"readings of {user.email} written to {output}", err=True)


@click.command("seed-demo")
@with_appcontext
@click.option("--users", "user_count", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90), help="Days of history.")
@click.option("--seed", "random_seed", default=42, show_default=True, help="Random seed (same seed, same data).")
@click.option("--replace", is_flag=True, help="Delete the existing demo users and their data first.")
def seed_demo(user_count, days, random_seed, replace):
    """Create demo users with sessions and readings over the past days, for the dashboard."""
    # Demo data is a development tool (devtools/, never imported by the web process or the
    # workers); numpy and tqdm are only needed here: imported late, so other commands start fast.
    from tqdm import tqdm

    from devtools.demo import existing_demo_users, seed

    existing = list(existing_demo_users())
    if existing and not replace:
        raise click.ClickException(f"{len(existing)} demo users exist already; "
                                   "run with --replace to delete them and seed again")
    for user in existing:
        delete_account(user)
    accounts, counts = seed(user_count, days, random_seed, progress=tqdm)
    click.echo(f"created {counts['users']} users, {counts['sessions']} sessions, {counts['readings']} readings")
    for email, _name, password in accounts:
        click.echo(f"  {email}  password: {password}")


@click.command("prune")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
def prune_command(dry_run):
    """Delete readings, environment responses, analysis jobs and ended sessions older than RETENTION_DAYS."""
    days = current_app.config["RETENTION_DAYS"]
    counts = prune(days, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"older than {days} days, {verb}: " + ", ".join(f"{count} {name}" for name, count in counts.items()))


@click.command("aggregate-collective")
@with_appcontext
def aggregate_collective_command():
    """Take one collective-mood snapshot now (the cron job does it every few seconds)."""
    from app.collective.snapshot import take_snapshot

    snapshot = take_snapshot()
    visible = "hidden breakdown" if snapshot.hidden else f"dominant {snapshot.dominant}"
    click.echo(f"snapshot {snapshot.id}: {snapshot.active_users} users, {snapshot.reading_count} readings, {visible}")


def _unreachable(component):
    """Where the command looked for the service, and what to do about it."""
    setting, embedded = {"mongodb": ("MONGO_URI", "EMBEDDED_MONGO_PORT"),
                         "redis": ("REDIS_URL", "EMBEDDED_REDIS_PORT")}[component]
    address = urlsplit(current_app.config[setting].split(",")[0]).netloc.rsplit("@", 1)[-1]
    name = "MongoDB" if component == "mongodb" else "Redis"
    return (f"no {name} answers at {address} ({setting}, by default the embedded server `make run` starts on "
            f"{embedded}). Start `make run` in another terminal first, or set {setting} to a running {name}.")


def _clear_when_down(command):
    """A command whose database or Redis does not answer says so in one line, not a traceback."""
    callback = command.callback
    if getattr(callback, "clear_when_down", False):  # every app made in one process registers them
        return command

    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except tuple(kind for kind, _name in BACKING_SERVICE_ERRORS) as error:
            raise click.ClickException(_unreachable(down_component(error))) from None

    run.clear_when_down = True
    command.callback = run
    return command


def register_cli(app):
    for group in (users_cli, db_cli):
        for command in group.commands.values():
            _clear_when_down(command)
        app.cli.add_command(group)
    for command in (export_command, seed_demo, prune_command, aggregate_collective_command):
        app.cli.add_command(_clear_when_down(command))
