"""The running code's version, recorded with every detector run for reproducibility."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("loopwatch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    VERSION = "0.0.0+source"
