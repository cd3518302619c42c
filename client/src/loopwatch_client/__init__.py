"""loopwatch's logging client: log predictions and labels from a model server without adding latency.

Example::

    from loopwatch_client import PredictionLogger

    logger = PredictionLogger("http://loopwatch:8080", api_key="lw_…", model="harsh-braking")
    logger.log(prediction_id=request_id, prediction="brake", score=0.91, latency_ms=14.2,
               features={"speed_kmh": 72.5}, model_version="3.1.0", segments={"firmware": "3.2"})
    logger.log_label(request_id, "none")   # later, when ground truth is known

Depends on httpx and orjson only; see README.md for the behaviour guarantees.
"""

from __future__ import annotations

from loopwatch_client._logger import PredictionLogger
from loopwatch_client._records import Authority
from loopwatch_client._responses import RETRYABLE_STATUS
from loopwatch_client._stats import ClientStats
from loopwatch_client._version import __version__

__all__ = ["RETRYABLE_STATUS", "Authority", "ClientStats", "PredictionLogger", "__version__"]
