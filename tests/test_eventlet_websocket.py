import random

import pytest
from eventlet.websocket import RFC6455WebSocket

from app.eventlet_websocket import apply_mask

# eventlet's own byte-at-a-time version, which apply_mask must match exactly.
reference = RFC6455WebSocket.__dict__["_apply_mask"].__func__


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 3200, 65537])
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


def test_installed_by_the_web_entry_point():
    import subprocess
    import sys

    code = ("import wsgi; from eventlet.websocket import RFC6455WebSocket; "
            "from app.eventlet_websocket import apply_mask; "
            "assert RFC6455WebSocket._apply_mask is apply_mask")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
