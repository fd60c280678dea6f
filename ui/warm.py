"""Everything the pages import, imported once per server process before any page runs.

Streamlit runs each session's script in a thread of its own. When a class opens a fresh
server, forty threads import the same libraries for the first time at once, and Python
breaks the resulting import cycles by handing a thread a half-imported module ("partially
initialized module 'pandas' has no attribute 'Series'"). So the first run imports them
all, under a lock, while the other sessions' runs wait for it.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading

from streamlit import runtime

# the libraries the pages use directly (the rest come with the modules below)
LIBRARIES = ("pandas", "plotly.graph_objects", "segno")
PACKAGES = ("convae", "ui")  # every module of these, the package's subpackages included
LEFT_LAZY = ("ui.pad",)  # the drawing pad's component registers itself where it is shown

_lock = threading.Lock()
_done = False


def import_everything() -> None:
    """Import :data:`LIBRARIES` and every module of :data:`PACKAGES`, once per process."""
    global _done
    if _done or not runtime.exists():  # done already; or not a server (a worker's start)
        return
    with _lock:
        if _done:
            return
        for name in LIBRARIES:
            importlib.import_module(name)
        for package in PACKAGES:
            root = importlib.import_module(package)
            for module in pkgutil.walk_packages(root.__path__, f"{package}."):
                if module.name not in LEFT_LAZY and not module.name.endswith("__main__"):
                    importlib.import_module(module.name)  # (__main__: the command line)
        _done = True
