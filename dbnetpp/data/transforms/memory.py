"""Keep freed heap memory in the process, so per-sample buffers are not re-faulted from the OS.

A training sample allocates ~12 MB of fresh arrays (decoded image, crop canvas, four label maps,
the float32 CHW image).  With glibc's default policy the blocks above the (adaptive) mmap
threshold are returned to the OS when freed and every new sample takes ~3000 page faults to get
them back, which costs about as much CPU time as the transforms themselves (measured with
``benchmarks/pipeline.py``).  :func:`retain_freed_memory` raises glibc's mmap and trim
thresholds so the memory stays in the heap and is reused.  ``Compose`` calls it on its first
sample in every process (main process or loader worker); it can also be called directly.
Elsewhere than glibc (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's upper limit on 64-bit
_TRIM_THRESHOLD = 256 << 20


def retain_freed_memory(trim_threshold: int = _TRIM_THRESHOLD) -> bool:
    """Set glibc ``M_MMAP_THRESHOLD`` to 32 MiB and ``M_TRIM_THRESHOLD`` (bytes); True if applied.

    Up to ``trim_threshold`` bytes of freed memory may stay mapped per process (RSS does not
    shrink back after a peak).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    return ok_mmap and ok_trim
