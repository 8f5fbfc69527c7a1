"""Process tuning and the one patch of a third-party library, in one place.

* eventlet's WebSocket unmasking. Every frame a client sends is XOR-masked (RFC 6455, 5.3).
  eventlet 0.41 unmasks it one byte at a time in a Python generator: for live audio (3.2 kB per
  100 ms chunk) that was a third of the web process's CPU time under load (py-spy,
  docs/BENCHMARKS.md). A frame of audio is XOR-ed as 32-bit words with NumPy (8 kB: 4.5 us,
  against 24 us as one big integer, the websockets library's pure-Python fallback, and far more
  byte by byte); a short frame (an event's text) as one big integer, which costs less there than
  NumPy's set-up. The patch is installed only on the eventlet release it was written for;
  tests/test_runtime.py fails when another one is installed.
* Nagle's algorithm on the web process's connections. eventlet's HTTP server writes a response
  through a 16 KiB buffer: a larger body (a session's analytics with its time line, 32 KB)
  leaves in two sends, headers then body, and Nagle holds the body until the client acknowledges
  the headers, which a keep-alive client (every browser) delays by 40 ms. On one keep-alive
  connection: 44 ms for such a body against 2 ms for a smaller one (docs/BENCHMARKS.md, "API").
  TCP_NODELAY sends it at once, as nginx and uvicorn do by default.
* Garbage-collector pauses. CPython's full collection walks every tracked object. A web process
  holds about 135,000 of them once its app is built, a worker about 115,000 with its model
  loaded, and each full collection of such a heap took about 95 ms here: a stall of every
  stream in that process, a few times a minute under load (docs/BENCHMARKS.md). Almost all of
  those objects are modules, classes and functions that live as long as the process, so they
  are frozen once start-up is done and later collections look only at what was made since.
"""
import gc
import logging
import socket

import numpy as np

log = logging.getLogger(__name__)

# The eventlet release whose RFC6455WebSocket._apply_mask apply_mask replaces.
PATCHED_EVENTLET_VERSION = "0.41.3"
# Frames of at least this many bytes are unmasked with NumPy (below it, its set-up costs more).
NUMPY_MASK_FROM = 256


def apply_mask(data, mask, length=None, offset=0):
    """eventlet's RFC6455WebSocket._apply_mask: the first `length` bytes of `data` XOR-ed with
    the 4-byte `mask`, starting `offset` bytes into the mask's cycle."""
    if length is None:
        length = len(data)
    shift = offset % 4
    key = bytes(mask[shift:]) + bytes(mask[:shift])
    if length < NUMPY_MASK_FROM:
        key *= length // 4 + 1
        return (int.from_bytes(data[:length], "big") ^ int.from_bytes(key[:length], "big")).to_bytes(length, "big")
    out = np.frombuffer(data, np.uint8, length).copy()
    words = length // 4
    out[:4 * words].view(np.uint32)[:] ^= np.frombuffer(key, np.uint32)[0]
    out[4 * words:] ^= np.frombuffer(key, np.uint8, length - 4 * words)
    return out.tobytes()


def patch_eventlet_websocket():
    """Install apply_mask in eventlet's WebSocket server (the web process, under eventlet).
    On another eventlet release eventlet's own unmasking stays, and a warning says so."""
    import eventlet
    from eventlet.websocket import RFC6455WebSocket

    if eventlet.__version__ != PATCHED_EVENTLET_VERSION:
        log.warning("eventlet %s is not %s: its WebSocket unmasking is left unpatched (see app/runtime.py)",
                    eventlet.__version__, PATCHED_EVENTLET_VERSION)
        return False
    RFC6455WebSocket._apply_mask = staticmethod(apply_mask)
    return True


def no_delay_protocol():
    """eventlet's HttpProtocol with TCP_NODELAY on each connection (the web process's server,
    under eventlet; imported here only when asked for)."""
    import eventlet.wsgi

    class NoDelayHttpProtocol(eventlet.wsgi.HttpProtocol):
        def setup(self):
            try:
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # not a TCP socket (a Unix one): nothing to turn off
                pass
            super().setup()

    return NoDelayHttpProtocol


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
