"""Memory a decode freed goes back to the system once the render pool runs.

Without this, glibc serves a large block from the heap of the thread that asks once a
block of that size has been freed, and those pages stay with the process: a render
thread kept 17 MB after decoding HEIC thumbnails, for the life of the server. The check
runs in a fresh process (the setting is process-wide) on glibc, the system allocator the
server runs on here.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

PROCESS = """
import ctypes, sys, threading
from pathlib import Path
from kernel.testing import harness

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
BLOCKS = (8 << 20, 6 << 20)  # decode buffers' sizes: the first raises glibc's threshold


def private_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])


def decode_twice(grown):
    # the first block has its own mapping either way; the second is the test
    for size in BLOCKS:
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
    grown.append(private_kb() - before)


def measure():
    global before
    before = private_kb()
    grown = []
    thread = threading.Thread(target=decode_twice, args=(grown,))
    thread.start()
    thread.join()
    print(grown[0])


if sys.argv[2] == "pool":
    with harness(Path(sys.argv[1]), ["thumbnails"]) as h:
        h.kernel.plugin("thumbnails").thumbnailer  # the render pool runs
        measure()
else:
    measure()  # a process without imageapi: what glibc does by itself
"""


def grown_kb(tmp_path: Path, when: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    done = subprocess.run(
        [sys.executable, "-c", PROCESS, str(tmp_path / when), when],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)
def test_large_blocks_go_back_to_the_system_once_the_render_pool_runs(tmp_path):
    # What glibc does by itself: the second block stays on the thread's heap.
    assert grown_kb(tmp_path, "bare") >= 4096
    assert grown_kb(tmp_path, "pool") < 1024  # both blocks unmapped when freed
