"""Keep freed tensor memory in the process, so large CPU tensors are not page-faulted in afresh.

glibc hands every allocation above its mmap threshold (at most 32 MB) to the kernel and gives it back
on free, so each new feature map of a video frame (a 64-channel fp32 map of 640×360 is 59 MB) costs
page faults: on a 2-core CPU that was 25 % of an SR forward pass. The PyTorch CPU tuning guides swap
in jemalloc or tcmalloc for this; `keep_freed_memory` gets the same reuse from glibc itself. The
process keeps what it has used instead of returning it (a loop of one 64 MB tensor settled at five
blocks' worth, then reused them), which suits a streaming job whose groups all have the same shape.
The `vidgen` command calls it; a library user may call it once at start-up.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # mallopt takes an int: the largest is "never give the top of the heap back"


def keep_freed_memory() -> bool:
    """Serve large allocations from the reusable heap (glibc only); True where it took effect."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them (find_library would run ldconfig)
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
