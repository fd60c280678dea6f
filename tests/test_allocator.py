"""Freed memory is kept for reuse where glibc allows it (the trainer's page faults)."""

from __future__ import annotations

import platform
import sys

import pytest

from convae.nn.allocator import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc's mallopt only",
)
def test_glibc_agrees_to_keep_freed_memory():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process; asking again is harmless
