"""Signing webhook bodies so a receiver can trust them (the scheme Stripe and Slack use).

The signed string is ``"<timestamp>." + raw body``; the signature is HMAC-SHA256 of it with the
shared secret (``LOOPWATCH_WEBHOOK_SECRET``), sent as ``X-Loopwatch-Signature: sha256=<hex>``
next to ``X-Loopwatch-Timestamp: <unix seconds>``. Because the timestamp is signed, a captured
request cannot be replayed outside the receiver's tolerance window. :func:`verify` is what a
receiver runs (docs/alerting.md shows it standalone).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Loopwatch-Signature"
TIMESTAMP_HEADER = "X-Loopwatch-Timestamp"
DEFAULT_TOLERANCE = 300  # seconds


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` and that is within ``tolerance``
    seconds of ``now`` (constant-time comparison)."""
    if not timestamp or not signature:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)
