"""Keeping garbage-collector pauses out of the latency tail of long-running processes.

CPython's full collection walks every tracked object. A web process holds about 135,000 of
them once its app is built, a worker about 115,000 with its model loaded, and each full
collection of such a heap took about 95 ms here: a stall of every stream in that process, a
few times a minute under load (docs/BENCHMARKS.md). Almost all of those objects are modules,
classes and functions that live as long as the process, so they are frozen once start-up is
done and later collections look only at what was made since.
"""
import gc


def freeze_startup_objects():
    """Call once a process has built everything it keeps for its life, before it serves."""
    gc.collect()
    gc.freeze()


def freeze_survivors_of_full_collections():
    """For a process whose heap grows with data that lives on (the embedded MongoDB-wire
    server's memory engine keeps every document as Python objects, and its full collections
    had grown to 65 ms with a bench's worth of readings): what survives a full collection is
    frozen as well, so the next one looks only at what came since. Objects frozen this way
    are still freed when their last reference goes; only a reference cycle among them that
    later becomes garbage is never collected."""
    def freeze_after(phase, info):
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(freeze_after)
