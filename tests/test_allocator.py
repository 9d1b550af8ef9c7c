"""`keep_freed_memory`: a freed large tensor's memory is reused instead of page-faulted in afresh."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

REFILLS = """
import json, resource, sys
import torch
from vidgen.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()

def data_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmData"))

faults, sizes = [], []
for _ in range(24):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, over glibc's largest mmap threshold
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    sizes.append(data_kib())
    del block
print(json.dumps({"faults": faults, "data_kib": sizes}))
"""


def refills(mode: str) -> dict[str, list[int]]:
    """Page faults and data-segment size (KiB) of each of 24 allocate-fill-free rounds of a 64 MB tensor."""
    result = subprocess.run([sys.executable, "-c", REFILLS, mode], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_refilled_tensor_stops_page_faulting_and_memory_stays_bounded() -> None:
    pages = 64 * 2**20 // 4096
    system, kept = refills("system"), refills("keep")
    assert min(system["faults"][-8:]) > pages // 2  # glibc maps and unmaps it each time: every page faults again
    assert max(kept["faults"][-8:]) < pages // 10  # once the heap has grown, the same pages are reused
    assert kept["data_kib"][-1] - kept["data_kib"][11] < 64 * 1024  # and it stops growing
