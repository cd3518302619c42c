"""The constructor's arguments, checked once.

Only values that can never work raise (a non-string, an empty key, a line break in a key, a URL
without ``http://``): those are programming or deployment mistakes best seen at start-up. A key
that merely does not *look* like a loopwatch key — such as the README's placeholder ``lw_…`` — is
accepted with a warning: the server is the judge of a key, and the client must not crash a model
server over one. Warnings never repeat the key itself (no secrets in logs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

KEY_PREFIX = "lw_"
# What `loopwatch keys create` prints: "lw_" + secrets.token_urlsafe(32) (43 characters).
_KEY_SHAPE = re.compile(r"lw_[A-Za-z0-9_-]{16,}")


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to send: the checked form of ``url``, ``api_key`` and ``model``."""

    base_url: str
    authorization: bytes  # the whole header value; bytes because a key may hold non-ASCII text
    predictions_path: str
    labels_path: str
    key_warning: str | None  # why the key looks wrong, if it does


def endpoint(url: object, api_key: object, model: object) -> Endpoint:
    """Check the three arguments; raise ``TypeError``/``ValueError`` only for hopeless values."""
    base_url = _check_url(url)
    header, warning = _check_key(api_key)
    name = _check_model(model)
    quoted = quote(name, safe="")  # the name is one path segment, whatever it contains
    return Endpoint(
        base_url=base_url,
        authorization=header,
        predictions_path=f"/v1/models/{quoted}/predictions",
        labels_path=f"/v1/models/{quoted}/labels",
        key_warning=warning,
    )


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as 'http://loopwatch:8080', not {type(url).__name__}")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself is not repeated: it may carry credentials (http://user:pass@host).
        raise ValueError("url must start with http:// or https:// and name a host, e.g. 'http://loopwatch:8080'")
    return url.strip().rstrip("/")


def _check_key(api_key: object) -> tuple[bytes, str | None]:
    if not isinstance(api_key, str):
        raise TypeError(
            f"api_key must be a str (a key from `loopwatch keys create --scope ingest`), not {type(api_key).__name__}"
        )
    key = api_key.strip()  # a key read from a file or a secret often ends with a line break
    if not key:
        raise ValueError("api_key is empty: create one with `loopwatch keys create --scope ingest`")
    bad = next((i for i, ch in enumerate(key) if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        raise ValueError(f"api_key has a control character at position {bad}: an HTTP header cannot carry it")
    warning = None
    if not _KEY_SHAPE.fullmatch(key):
        placeholder = "…" in key or "..." in key or "<" in key
        warning = (
            "api_key does not look like a loopwatch key ('lw_' followed by 43 letters, digits, '-' or '_')"
            + (" — it looks like a placeholder left from an example" if placeholder else "")
            + "; the server will refuse every batch (401) until a key from"
            " `loopwatch keys create --scope ingest` is used"
        )
    return b"Bearer " + key.encode("utf-8"), warning


def _check_model(model: object) -> str:
    if not isinstance(model, str):
        raise TypeError(f"model must be the registered model's name (a str), not {type(model).__name__}")
    if not model.strip():
        raise ValueError("model is empty: pass the name the model was registered under, e.g. 'harsh-braking'")
    return model.strip()
