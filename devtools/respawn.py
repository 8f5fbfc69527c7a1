"""`make run`'s keeper of one Procfile process: `python -m devtools.respawn '<command>'` runs the
command, and runs it again when it exits on its own (a crash, an out-of-memory kill, a kill -9),
so that one process's end does not end the stack: honcho, which runs the processes, stops them
all when any one exits.

Restarts wait 1 s, then twice as long after each quick failure (at most 30 s); a run of a minute
or more counts as healthy and resets the wait. SIGTERM or SIGINT (honcho's stop, Ctrl-C) means
stop: honcho signals the whole process group, this keeper and the command alike, so the keeper
only stops restarting, waits for the command and exits with its code.
"""
import signal
import subprocess
import sys
import time

FIRST_WAIT_S, LONGEST_WAIT_S, HEALTHY_RUN_S = 1.0, 30.0, 60.0


def main(command):
    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wait = FIRST_WAIT_S
    while True:
        started = time.monotonic()
        returncode = subprocess.Popen(command, shell=True).wait()  # same process group: honcho's signals reach it
        if stopping:
            return returncode
        wait = FIRST_WAIT_S if time.monotonic() - started >= HEALTHY_RUN_S else wait
        print(f"exited with code {returncode}; starting it again in {wait:g} s", flush=True)
        deadline = time.monotonic() + wait
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return returncode
        wait = min(2 * wait, LONGEST_WAIT_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
