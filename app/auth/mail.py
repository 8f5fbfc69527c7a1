"""Account e-mail (password reset links), sent by Flask-Mail from a worker (queue `mail`), so a
request never waits on an SMTP server and answers as fast whether or not a message is sent.

With MAIL_SINK_DIR set (the default in development and tests) nothing reaches an SMTP server:
each message is written to that folder as an .eml file and logged, so the whole flow can be
followed, and tested, without a mail server."""
import logging
import time
import uuid
from pathlib import Path

from flask import current_app
from flask_mail import Mail, Message, email_dispatched
from rq import Queue, Retry

log = logging.getLogger(__name__)
mail = Mail()
QUEUE = "mail"


def init_mail(app):
    if app.config["MAIL_SINK_DIR"]:
        app.config["MAIL_SUPPRESS_SEND"] = True
    mail.init_app(app)


def enqueue_mail(recipient, subject, body):
    Queue(QUEUE, connection=current_app.extensions["redis"]).enqueue(
        "app.auth.mail.send_mail", recipient, subject, body, retry=Retry(max=3, interval=[5, 30, 120]),
        result_ttl=0, failure_ttl=24 * 3600)


def send_mail(recipient, subject, body):
    """The worker's job: send one message."""
    mail.send(Message(subject, recipients=[recipient], body=body))


@email_dispatched.connect
def _to_sink(app, message):
    sink = app.config.get("MAIL_SINK_DIR")
    if not sink:
        return
    folder = Path(sink)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
    path.write_text(message.as_string())
    log.info("mail to %s (%s) written to %s, not sent: MAIL_SINK_DIR is set", ", ".join(message.recipients),
             message.subject, path)
