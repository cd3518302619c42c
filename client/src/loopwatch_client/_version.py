"""The installed distribution's version (sent as the User-Agent, so server logs show it)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loopwatch-client")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree without install
    __version__ = "0.0.0+source"
