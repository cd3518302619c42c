#!/usr/bin/env python3
"""Container health probes for loopwatch (standard library only; installed as ``loopwatch-probe``).

    loopwatch-probe live     GET /healthz              -> exit 0 when the process answers
    loopwatch-probe ready    GET /readyz with a key    -> exit 0 when the store answers a query

``/readyz`` needs an API key, and neither Docker's HEALTHCHECK nor a Kubernetes ``httpGet`` probe
can read one from a secret. ``ready`` therefore uses the per-run token that ``loopwatch serve``
writes into its data directory for the local CLI (``server.json`` + ``.cli-token``, mode 0600):
the probe runs in the same container as the same user, so no key has to be created, stored in a
secret or rotated for it. ``LOOPWATCH_PROBE_KEY`` (an API key with scope ``read``) is used instead
when set.

Exit codes: 0 healthy, 1 unhealthy (the reason is printed on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"


def _get(url: str, token: str | None, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(2048).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2048).decode("utf-8", "replace")


def _runtime(data_dir: Path) -> tuple[str, str]:
    """(url, token) recorded by the running server in ``data_dir``."""
    info = json.loads((data_dir / "server.json").read_text(encoding="utf-8"))
    token = (data_dir / ".cli-token").read_text(encoding="utf-8").strip()
    return str(info["url"]).rstrip("/"), token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loopwatch-probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=("live", "ready"))
    parser.add_argument("--url", help=f"server base URL (default: from server.json, else {DEFAULT_URL})")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("LOOPWATCH_DATA_DIR", "loopwatch-data")),
        help="the server's data directory (default: $LOOPWATCH_DATA_DIR)",
    )
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per request (default 4)")
    args = parser.parse_args(argv)

    url, token = args.url, os.environ.get("LOOPWATCH_PROBE_KEY") or None
    try:
        if args.check == "ready" and (url is None or token is None):
            runtime_url, runtime_token = _runtime(args.data_dir)
            url, token = url or runtime_url, token or runtime_token
        url = (url or DEFAULT_URL).rstrip("/")
        path = "/healthz" if args.check == "live" else "/readyz"
        status, body = _get(url + path, token if args.check == "ready" else None, args.timeout)
    except (OSError, ValueError, KeyError) as exc:  # no server.json yet, refused connection, timeout …
        print(f"loopwatch-probe {args.check}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"loopwatch-probe {args.check}: {url}{path} answered {status}: {body[:300]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
