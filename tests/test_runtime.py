"""app.runtime: the eventlet WebSocket patch (and the release it was written for), and the
garbage-collector freezing (in child processes, so this test process's own heap is left alone)."""
import random
import subprocess
import sys

import eventlet
import pytest
from eventlet.websocket import RFC6455WebSocket

from app.runtime import PATCHED_EVENTLET_VERSION, apply_mask

# eventlet's own byte-at-a-time version, which apply_mask must match exactly.
reference = RFC6455WebSocket.__dict__["_apply_mask"].__func__


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 255, 256, 257, 3200, 8000, 65537])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 6])
def test_matches_eventlet(length, offset):
    rng = random.Random(length * 10 + offset)
    data = bytes(rng.getrandbits(8) for _ in range(length + 7))
    mask = bytes(rng.getrandbits(8) for _ in range(4))
    assert apply_mask(data, mask, length, offset) == reference(data, mask, length, offset)


def test_accepts_buffers_and_defaults_to_the_whole_frame():
    data, mask = bytearray(b"\x00\xff" * 50), bytearray(b"\x01\x02\x03\x04")
    assert apply_mask(memoryview(data), mask) == reference(data, mask)
    assert apply_mask(apply_mask(data, mask), mask) == bytes(data)  # masking twice undoes it


def test_the_installed_eventlet_is_the_release_the_patch_was_written_for():
    """Fails on purpose when eventlet changes: re-read its RFC6455WebSocket._apply_mask and the
    frame reader that calls it, check that apply_mask still matches them (the tests above), then
    update PATCHED_EVENTLET_VERSION in app/runtime.py, or drop the patch if eventlet is fast now."""
    assert eventlet.__version__ == PATCHED_EVENTLET_VERSION, (
        f"eventlet {eventlet.__version__} is installed; app/runtime.py patches {PATCHED_EVENTLET_VERSION}")


def test_installed_by_the_web_entry_point():
    code = ("import wsgi; from eventlet.websocket import RFC6455WebSocket; "
            "from app.runtime import apply_mask; "
            "assert RFC6455WebSocket._apply_mask is apply_mask")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_another_eventlet_release_is_left_unpatched():
    code = ("import eventlet; from eventlet.websocket import RFC6455WebSocket; from app import runtime; "
            "original = RFC6455WebSocket._apply_mask; eventlet.__version__ = '0.0.1'; "
            "assert runtime.patch_eventlet_websocket() is False; "
            "assert RFC6455WebSocket._apply_mask is original")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


CHILD = """
import gc, time
import app  # a start-up's worth of modules, classes and functions
from app.runtime import freeze_startup_objects
tracked = len(gc.get_objects())
freeze_startup_objects()
assert gc.get_freeze_count() >= tracked * 0.9, (gc.get_freeze_count(), tracked)
assert len(gc.get_objects()) < tracked * 0.1, len(gc.get_objects())
"""


def test_freeze_moves_startup_objects_out_of_collections():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


SURVIVORS = """
import gc
from app.runtime import freeze_survivors_of_full_collections
freeze_survivors_of_full_collections()
gc.collect()
before = gc.get_freeze_count()
kept = [[i] for i in range(50_000)]  # data that lives on (lists: tracked by the collector)
gc.collect()
frozen = gc.get_freeze_count()
assert frozen >= before + 50_000, (before, frozen)
del kept  # still freed: frozen objects go when their last reference does
assert gc.get_freeze_count() <= frozen - 50_000, (frozen, gc.get_freeze_count())
"""


def test_survivors_of_a_full_collection_are_frozen_and_still_freed():
    result = subprocess.run([sys.executable, "-c", SURVIVORS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_web_connections_send_without_nagle_delay():
    """The web process's HTTP connections have TCP_NODELAY: a body over eventlet's 16 KiB write
    buffer leaves right after its headers, not 40 ms later (app/runtime.py)."""
    import socket

    from app.runtime import no_delay_protocol

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        protocol_class = no_delay_protocol()
        protocol = protocol_class.__new__(protocol_class)  # setup() alone: __init__ would serve the connection
        protocol.request = accepted
        protocol.setup()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        protocol.rfile.close()
        protocol.wfile.close()
    finally:
        for sock in (accepted, client, listener):
            sock.close()
