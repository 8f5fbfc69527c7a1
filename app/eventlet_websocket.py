"""A faster WebSocket unmasking for eventlet's server.

Every frame a client sends is XOR-masked (RFC 6455, 5.3). eventlet 0.41 unmasks it one byte
at a time in a Python generator: for live audio (3.2 kB per 100 ms chunk) that was a third of
the web process's CPU time under load (py-spy, docs/BENCHMARKS.md). XOR-ing the frame as one
big integer does the same work in C, as the websockets library's pure-Python fallback does.
"""
from eventlet.websocket import RFC6455WebSocket


def apply_mask(data, mask, length=None, offset=0):
    """eventlet's RFC6455WebSocket._apply_mask: the first `length` bytes of `data` XOR-ed with
    the 4-byte `mask`, starting `offset` bytes into the mask's cycle."""
    if length is None:
        length = len(data)
    shift = offset % 4
    key = (bytes(mask[shift:]) + bytes(mask[:shift])) * (length // 4 + 1)
    masked = int.from_bytes(data[:length], "big") ^ int.from_bytes(key[:length], "big")
    return masked.to_bytes(length, "big")


def install():
    RFC6455WebSocket._apply_mask = staticmethod(apply_mask)
