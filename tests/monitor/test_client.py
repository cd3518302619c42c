"""monitor.client, the client's old home, still works: it re-exports loopwatch_client and accepts
the old positional form, with a DeprecationWarning. (The client's behaviour is tested in
tests/client/.)"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable

import httpx
import loopwatch_client
import pytest

from tests.conftest import ServerProcess

ServerFactory = Callable[[], tuple[ServerProcess, str]]


def _import_fresh() -> object:
    sys.modules.pop("monitor.client", None)
    return importlib.import_module("monitor.client")


def test_old_import_path_reexports_the_client_with_a_deprecation_warning() -> None:
    """`from monitor.client import PredictionLogger, ClientStats` keeps working and warns."""
    with pytest.warns(DeprecationWarning, match="loopwatch_client"):
        module = _import_fresh()
    assert issubclass(module.PredictionLogger, loopwatch_client.PredictionLogger)  # type: ignore[attr-defined]
    assert module.ClientStats is loopwatch_client.ClientStats  # type: ignore[attr-defined]


@pytest.mark.slow  # a server subprocess
def test_old_positional_call_still_delivers(server_factory: ServerFactory) -> None:
    """PredictionLogger(url, api_key, model) — the old signature — warns and logs as before."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = _import_fresh()
    server, key = server_factory()
    server.start()
    with pytest.warns(DeprecationWarning, match="by keyword"):
        logger = module.PredictionLogger(server.url, key, "harsh-braking", flush_interval=0.05)  # type: ignore[attr-defined]
    with logger:
        assert logger.log("old-1", prediction="brake")
        assert logger.log_label("old-1", "brake")
        assert logger.flush(timeout=20)
    stats = httpx.get(f"{server.url}/v1/models/harsh-braking/stats", headers={"Authorization": f"Bearer {key}"}).json()
    assert (stats["predictions"], stats["labels"]) == (1, 1)


def test_old_positional_call_rejects_ambiguous_arguments() -> None:
    """A key given both by position and by keyword is a clear TypeError, not a silent pick."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = _import_fresh()
        with pytest.raises(TypeError, match="multiple values for 'api_key'"):
            module.PredictionLogger("http://127.0.0.1:1", "lw_a", api_key="lw_b", model="m")  # type: ignore[attr-defined]
