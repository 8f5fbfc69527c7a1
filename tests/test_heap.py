"""app.heap: start-up objects leave the collector's view (in a child process, so this test
process's own heap is left alone)."""
import subprocess
import sys

CHILD = """
import gc, time
import app  # a start-up's worth of modules, classes and functions
from app.heap import freeze_startup_objects
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
from app.heap import freeze_survivors_of_full_collections
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
