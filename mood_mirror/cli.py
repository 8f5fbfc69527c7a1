"""`mood-mirror`: the Mood Mirror command-line client (docs/CLI.md).

    mood-mirror login [--email E] [--register]
    mood-mirror stream --mic [--device D] [--rate R] [--list-devices] [--duration S]
    mood-mirror stream --file FILE [--fast]
    mood-mirror analyze FILE... [--json]
    mood-mirror sessions [--json]
    mood-mirror export --format csv|json [--output FILE]
    mood-mirror logout

Built on mood_mirror.client (REST and Socket.IO). Exit codes: 0 done, 1 the server answered an
error or could not be reached, 2 a usage or local problem (bad option, unreadable file, no
pyaudio, no microphone), 3 not signed in or the sign-in was refused (401), 130 interrupted.
"""
import sys

from mood_mirror.account import Context
from mood_mirror.client import ApiClientError
from mood_mirror.display import err, quiet_stdout
from mood_mirror.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError, describe_error, exit_code_for
from mood_mirror.mic import MicError
from mood_mirror.parser import build_parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = None
    try:
        ctx = Context(args)
        return args.func(args, ctx)
    except CliError as exc:
        err(str(exc))
        return exc.exit_code
    except MicError as exc:
        err(str(exc))
        return EXIT_USAGE
    except ApiClientError as exc:
        err(describe_error(exc))
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mood-mirror export | head`); say nothing more on a closed pipe.
        quiet_stdout()
        return EXIT_OK
    finally:
        if ctx is not None:
            try:
                ctx.persist()
            except OSError as exc:
                err(f"could not save the refreshed tokens: {exc}")


if __name__ == "__main__":
    sys.exit(main())
