"""heap.settle: start-up objects frozen out of collections, young threshold raised;
heap.frozen: the same freeze for one block only.

Run in a child interpreter: gc settings are process-wide and must not leak into pytest.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc
from gateway.heap import YOUNG_THRESHOLD, settle
before = gc.get_threshold()
settle()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:]), gc.get_threshold()
gc.collect()
assert gc.get_freeze_count() > 1000  # a full collection leaves the frozen objects alone
junk = []
junk.append(junk)  # cyclic garbage is still collected
del junk
assert gc.collect() >= 1
print("ok")
"""


def test_settle_freezes_start_up_objects_and_still_collects_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


FROZEN_CHILD = """
import gc
from gateway.heap import frozen, settle
assert gc.get_freeze_count() == 0
with frozen():
    assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
    junk = []
    junk.append(junk)  # cyclic garbage made inside the block is still collected
    del junk
    assert gc.collect() >= 1
assert gc.get_freeze_count() == 0  # undone: nothing stays out of collections for good
settle()
settled = gc.get_freeze_count()
with frozen():
    pass
assert gc.get_freeze_count() == settled  # a settled process keeps its own policy
print("ok")
"""


def test_frozen_freezes_for_one_block_and_leaves_a_settled_heap_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FROZEN_CHILD], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
