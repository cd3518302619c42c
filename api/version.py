"""Re-export of the code version (defined in the core so runs can record it)."""

from monitor.version import VERSION

__all__ = ["VERSION"]
