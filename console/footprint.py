"""What the console's process costs the bastion it runs on (issue 16).

Two settings of the process, made once before the screen starts:

- glibc gives every thread that allocates its own malloc arena (up to eight
  per core). The console's threads (the Kubernetes client, DNS, parsing a
  scrape, file writes) each touched one, and their free pages stayed: two
  arenas hold the same work in less memory.
- Everything alive after the first frame (modules, the widget tree, the
  config) lives as long as the console: ``gc.freeze`` moves it out of the
  collector's generations, so a full collection no longer walks it, which
  took tens of milliseconds on the event loop at random moments.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


def fewer_malloc_arenas() -> bool:
    """At most :data:`ARENAS` malloc arenas from now on; False where the C
    library is not glibc (musl has no arenas to limit)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError):
        return False


def settle_after_start() -> None:
    """What exists now stays: keep it out of later collections. Without a
    collection first: with a 10,000-entry journal in memory one took 0.6 s
    of the event loop (a freeze only moves the generations' lists)."""
    gc.freeze()
