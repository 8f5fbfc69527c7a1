"""Sign-in and what is yours: `mood-mirror login`, `logout`, `sessions` and `export`, and the
saved sign-in every command uses (Context)."""
import getpass
import os
import sys
from datetime import datetime
from pathlib import Path

from mood_mirror import config
from mood_mirror.client import ApiClientError, MoodMirrorClient
from mood_mirror.display import err, print_json, print_table, progress_bar
from mood_mirror.errors import EXIT_AUTH, EXIT_OK, EXIT_SERVER, PROG, CliError, describe_error, exit_code_for, one_line
from mood_mirror.when import parse_when


def normalize_server(url):
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the server must be an http:// or https:// URL, not {url!r}")
    return url


class Context:
    """The server to talk to and the saved sign-in; saves refreshed tokens at the end."""

    def __init__(self, args):
        explicit = getattr(args, "server", None) or os.environ.get("MOOD_MIRROR_URL")
        self.explicit = normalize_server(explicit) if explicit else None
        self.saved = config.load()
        self.client = None

    @property
    def server(self):
        return self.explicit or (self.saved or {}).get("server") or config.DEFAULT_SERVER

    def signed_in(self):
        """A client with the saved tokens, refreshed first when the access token runs out soon."""
        if not self.saved:
            raise CliError(f"not signed in: run `{PROG} login` first", EXIT_AUTH)
        if self.explicit and self.explicit != self.saved.get("server"):
            raise CliError(f"signed in to {self.saved.get('server')}, not {self.explicit}: "
                           f"run `{PROG} login --server {self.explicit}`", EXIT_AUTH)
        self.client = MoodMirrorClient(self.saved["server"], self.saved["access_token"],
                                       self.saved.get("refresh_token"))
        self.fresh()
        return self.client

    def fresh(self):
        """Refresh an access token that expires within 30 s (before a stream or an upload,
        which cannot simply be replayed after a 401 the way the client library replays GETs)."""
        if self.client.refresh_token and config.expiring(self.client.access_token):
            self.client.refresh()
            self.persist()

    def persist(self):
        """Save tokens the client library refreshed during the command."""
        if self.client is None or not self.saved or not self.client.access_token:
            return
        if self.client.access_token != self.saved.get("access_token"):
            self.saved = {**self.saved, "access_token": self.client.access_token,
                          "refresh_token": self.client.refresh_token or self.saved.get("refresh_token")}
            config.save(self.saved)


def read_password(args, prompt="Password: ", confirm=False):
    if args.password is not None:
        return args.password
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    try:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise CliError("the passwords differ")
    except EOFError:
        raise CliError("no password given (use --password-stdin when there is no terminal)") from None
    return password


def cmd_login(args, ctx):
    email = args.email
    if not email:
        try:
            email = input("Email: ").strip()
        except EOFError:
            email = ""
        if not email:
            raise CliError("no email given (use --email)")
    password = read_password(args, confirm=args.register and args.password is None and not args.password_stdin)
    server = ctx.server
    client = MoodMirrorClient(server)
    try:
        body = client.register(email, password, args.name) if args.register else client.login(email, password)
    except ApiClientError as exc:
        raise CliError(("registration refused: " if args.register else "sign-in refused: ")
                       + describe_error(exc, hint=False), exit_code_for(exc)) from None
    previous = ctx.saved
    path = config.save({"server": server, "email": email, "access_token": body["access_token"],
                        "refresh_token": body["refresh_token"], "saved_at": datetime.now().astimezone().isoformat()})
    if previous and previous.get("access_token") != body["access_token"]:
        # The tokens this replaces would otherwise stay valid until they expire.
        old = MoodMirrorClient(previous.get("server", server), previous.get("access_token"),
                               previous.get("refresh_token"))
        try:
            old.request("POST", "/api/auth/logout", retry_on_expiry=False, timeout=5,
                        json={"refresh_token": old.refresh_token} if old.refresh_token else {})
        except ApiClientError:
            pass
    print(f"{'registered and signed in' if args.register else 'signed in'} to {server} as {email} "
          f"(tokens saved in {path})")
    return EXIT_OK


def cmd_logout(args, ctx):
    saved = ctx.saved
    if not saved:
        print("not signed in")
        return EXIT_OK
    client = MoodMirrorClient(saved["server"], saved.get("access_token"), saved.get("refresh_token"))
    try:
        client.logout()
    except ApiClientError as exc:
        config.delete()
        if exc.status == 401:  # both tokens already expired or revoked: nothing left to revoke
            print(f"signed out (the server had already ended this sign-in: {exc.code})")
            return EXIT_OK
        raise CliError("signed out here, but the server could not revoke the tokens: "
                       + describe_error(exc, hint=False), exit_code_for(exc)) from None
    config.delete()
    print(f"signed out of {saved['server']}")
    return EXIT_OK


def local_time(stamp):
    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def duration(session):
    try:
        start = datetime.fromisoformat(session["started_at"])
        end = datetime.fromisoformat(session["ended_at"]) if session.get("ended_at") else datetime.now(start.tzinfo)
    except (KeyError, TypeError, ValueError):
        return ""
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def cmd_sessions(args, ctx):
    client = ctx.signed_in()
    params = {"limit": min(args.limit, 100)} | ({"status": args.status} if args.status else {})
    sessions = []
    for session in client.pages("/api/sessions", **params):
        sessions.append(session)
        if len(sessions) >= args.limit:
            break
    if args.json:
        for session in sessions:
            print_json(session)
        return EXIT_OK
    if not sessions:
        print(f"no {args.status} sessions" if args.status else "no sessions yet")
        return EXIT_OK
    rows = [("ID", "STARTED", "DURATION", "SOURCE", "STATUS", "NAME")]
    rows += [(s["id"], local_time(s.get("started_at")), duration(s), s.get("source", ""), s.get("status", ""),
              one_line(s.get("name"), 50)) for s in sessions]
    print_table(rows, right={2})
    return EXIT_OK


def cmd_export(args, ctx):
    client = ctx.signed_in()
    params = {"format": args.format}
    for option in ("since", "until"):
        if getattr(args, option):
            try:
                params[option] = parse_when(getattr(args, option)).isoformat()
            except ValueError as exc:
                raise CliError(f"--{option}: {exc}") from None
    for option in ("source", "dominant"):
        if getattr(args, option):
            params[option] = getattr(args, option)
    if args.session:
        params["session_id"] = args.session
    response = client.request("GET", "/api/export", params=params, stream=True)
    written = 0
    try:
        if args.output in (None, "-"):
            out = sys.stdout.buffer
            for block in response.iter_content(65536):
                out.write(block)
                written += len(block)
            out.flush()
            return EXIT_OK
        target = Path(args.output)
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as out, progress_bar(args, unit="B", unit_scale=True, unit_divisor=1024,
                                                          desc="export") as bar:
                for block in response.iter_content(65536):
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
            os.replace(partial, target)  # a broken download never leaves a half file under the name
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        err(f"exported {written} bytes of {args.format.upper()} to {target}")
        return EXIT_OK
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise CliError(f"export interrupted: {one_line(exc)}", EXIT_SERVER) from None
    finally:
        response.close()
