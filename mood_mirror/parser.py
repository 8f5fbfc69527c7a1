"""The `mood-mirror` command line: its commands, options and help."""
import argparse

from audio import SAMPLE_RATE, SAMPLE_RATES
from mood_mirror import config
from mood_mirror.account import cmd_export, cmd_login, cmd_logout, cmd_sessions
from mood_mirror.analyze import cmd_analyze
from mood_mirror.errors import PROG
from mood_mirror.stream import cmd_stream


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=argparse.SUPPRESS, metavar="URL",
                        help=f"server URL (default: $MOOD_MIRROR_URL, else the one you signed in to, "
                             f"else {config.DEFAULT_SERVER})")
    parser = argparse.ArgumentParser(prog=PROG, parents=[common],
                                     description="Mood Mirror from the terminal: live emotions from your "
                                                 "microphone or a recording, uploads, sessions and exports.",
                                     epilog="Exit codes: 0 done, 1 server error or unreachable, 2 usage or local "
                                            "problem, 3 not signed in or sign-in refused, 130 interrupted.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    login = commands.add_parser("login", parents=[common], help="sign in and save the tokens",
                                description="Sign in (or --register) and save the tokens, mode 0600, in "
                                            f"{config.credentials_path()}.")
    login.add_argument("--email")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument("--password", help="the password (visible to other local users in the process list; "
                                           "prefer the prompt or --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    login.add_argument("--register", action="store_true", help="create the account first")
    login.add_argument("--name", help="display name, with --register")
    login.set_defaults(func=cmd_login)

    logout = commands.add_parser("logout", parents=[common], help="revoke the tokens and delete them")
    logout.set_defaults(func=cmd_logout)

    stream = commands.add_parser("stream", parents=[common], help="live emotions from the microphone or a file",
                                 description="Stream audio live and show each window's emotion as it comes back.")
    source = stream.add_mutually_exclusive_group()
    source.add_argument("--mic", action="store_true", help="record from a microphone (needs pyaudio)")
    source.add_argument("--file", metavar="FILE", help="stream a recording (any format FFmpeg decodes)")
    stream.add_argument("--device", help="input device: index or part of its name (see --list-devices)")
    stream.add_argument("--rate", type=int, choices=SAMPLE_RATES, metavar="HZ",
                        help=f"recording rate (default: {SAMPLE_RATE} when the device takes it)")
    stream.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    stream.add_argument("--duration", type=float, metavar="SECONDS", help="stop the microphone after this long")
    stream.add_argument("--fast", action="store_true",
                        help="send the file as fast as the server analyses it, not at real-time pace")
    stream.add_argument("--name", help="session name")
    stream.add_argument("--session", metavar="ID", help="continue this active session of yours")
    stream.add_argument("--json", action="store_true", help="JSON Lines: one object per event")
    stream.set_defaults(func=cmd_stream)

    analyze = commands.add_parser("analyze", parents=[common], help="upload recordings for analysis",
                                  description="Upload recordings, wait for the analysis and print the results.")
    analyze.add_argument("files", nargs="+", metavar="FILE")
    analyze.add_argument("--json", action="store_true", help="one JSON object per file per line")
    analyze.add_argument("--session", metavar="ID", help="attach the readings to this session of yours")
    analyze.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                         help="longest wait for one analysis (default 600)")
    analyze.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    analyze.set_defaults(func=cmd_analyze)

    sessions = commands.add_parser("sessions", parents=[common], help="your recent sessions")
    sessions.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    sessions.add_argument("--status", choices=("active", "ended"))
    sessions.add_argument("--json", action="store_true", help="one JSON object per session per line")
    sessions.set_defaults(func=cmd_sessions)

    export = commands.add_parser("export", parents=[common], help="download your readings as CSV or JSON")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", "-o", metavar="FILE", help="write here (default: standard output)")
    export.add_argument("--since", metavar="TIME", help="readings at or after this time: an ISO 8601 date or time "
                                                        "(local unless it has a zone), now, today, yesterday, "
                                                        "or an age such as 30m, 2h, 7d, 2w")
    export.add_argument("--until", metavar="TIME", help="readings before this time (the same forms)")
    export.add_argument("--session", metavar="ID", help="one session's readings")
    export.add_argument("--source", choices=("stream", "upload", "manual"))
    export.add_argument("--dominant", metavar="EMOTION", help="only readings with this dominant emotion")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=cmd_export)
    return parser
