"""Deprecated: the logging client moved to its own small distribution, ``loopwatch-client``.

Install it with ``pip install ./client`` (httpx and orjson only) and import
``from loopwatch_client import PredictionLogger``. This module keeps old imports working: it
re-exports the client and still accepts the old positional form
``PredictionLogger(url, api_key, model)``, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

try:
    import loopwatch_client
    from loopwatch_client import RETRYABLE_STATUS, ClientStats
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "monitor.client moved to the loopwatch-client distribution: `pip install ./client` "
        "(`make install` does it) and import from loopwatch_client"
    ) from exc

__all__ = ["RETRYABLE_STATUS", "ClientStats", "PredictionLogger"]

warnings.warn(
    "monitor.client is deprecated: `pip install ./client` and use `from loopwatch_client import PredictionLogger`",
    DeprecationWarning,
    stacklevel=2,
)


class PredictionLogger(loopwatch_client.PredictionLogger):
    """``loopwatch_client.PredictionLogger`` that also takes ``api_key`` and ``model`` by position."""

    def __init__(self, url: str, *legacy: str, **kwargs: Any) -> None:
        if legacy:
            if len(legacy) > 2:
                raise TypeError(f"PredictionLogger takes url, api_key, model positionally; got {1 + len(legacy)}")
            warnings.warn(
                "pass api_key= and model= by keyword: PredictionLogger(url, api_key=..., model=...)",
                DeprecationWarning,
                stacklevel=2,
            )
            for name, value in zip(("api_key", "model"), legacy, strict=False):
                if name in kwargs:
                    raise TypeError(f"PredictionLogger got multiple values for {name!r}")
                kwargs[name] = value
        super().__init__(url, **kwargs)
