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
