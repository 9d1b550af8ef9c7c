"""`keep_freed_memory`: a freed large tensor's memory is reused instead of page-faulted in afresh."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

FAULTS_OF_A_REFILL = """
import resource, sys
import torch
from vidgen.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, over glibc's largest mmap threshold
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_refilled_tensor_no_longer_page_faults() -> None:
    def faults(mode: str) -> int:
        result = subprocess.run([sys.executable, "-c", FAULTS_OF_A_REFILL, mode], capture_output=True, text=True,
                                check=True)
        return int(result.stdout)

    pages = 64 * 2**20 // 4096
    assert faults("system") > pages // 2  # glibc maps and unmaps it each time: every page faults again
    assert faults("keep") < pages // 10
