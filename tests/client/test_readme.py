"""The README's Python-client snippet runs as written, and the constructor raises only for
arguments that can never work."""

from __future__ import annotations

import logging
import re

import pytest
from loopwatch_client import PredictionLogger

from tests.client.conftest import Live
from tests.conftest import REPO, free_port

README_URL = '"http://loopwatch:8080"'
README_KEY = '"lw_…"'


def readme_snippet() -> str:
    """The python block of the README paragraph "Log from Python without adding latency"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("**Log from Python without adding latency**")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None, "the paragraph lost its python block"
    snippet = match.group(1)
    assert snippet.count(README_URL) == 1 and snippet.count(README_KEY) == 1, snippet
    return snippet


def run_snippet(snippet: str, model: str) -> PredictionLogger:
    """Run the snippet with ``request_id`` defined (the model server's own id) and the model
    renamed to this test's model; returns the logger it made."""
    namespace: dict[str, object] = {"request_id": "readme-1"}
    exec(compile(snippet.replace('"harsh-braking"', repr(model)), "README.md", "exec"), namespace)
    logger = namespace["logger"]
    assert isinstance(logger, PredictionLogger)
    return logger


@pytest.mark.slow  # a server subprocess
def test_readme_snippet_delivers_with_a_real_url_and_key(live: Live, model: str) -> None:
    """With the placeholders (URL and key) substituted, the snippet's prediction and label arrive."""
    snippet = readme_snippet().replace(README_URL, repr(live.url)).replace(README_KEY, repr(live.key))
    logger = run_snippet(snippet, model)
    try:
        assert logger.flush(timeout=20)
        stats = logger.stats
        assert (stats.sent, stats.dropped, stats.last_error) == (2, 0, None)
    finally:
        logger.close()
    assert live.counts(model) == (1, 1)


@pytest.mark.slow  # a server subprocess
def test_readme_snippet_with_its_placeholder_key_constructs_and_never_raises(
    live: Live, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The key exactly as the README writes it ("lw_…", not ASCII) is accepted: a clear warning,
    then the server's 401 drops the records — no exception anywhere, and the key is not logged."""
    snippet = readme_snippet().replace(README_URL, repr(live.url))  # loopback instead of a DNS name
    with caplog.at_level(logging.WARNING, logger="loopwatch.client"):
        logger = run_snippet(snippet, model)
        try:
            assert logger.flush(timeout=20)
            stats = logger.stats
            assert (stats.sent, stats.rejected) == (0, 2)
            assert "401" in (stats.last_error or "") and "api_key" in (stats.last_error or "")
        finally:
            logger.close()
    assert any("placeholder" in r.getMessage() for r in caplog.records)
    assert not any("lw_…" in r.getMessage() for r in caplog.records)
    assert live.counts(model) == (0, 0)


@pytest.mark.slow  # a server subprocess
def test_a_key_with_a_trailing_line_break_is_used_as_the_key(live: Live, model: str) -> None:
    """A key read from a file or secret ("lw_…\\n") works: surrounding whitespace is not the key."""
    with PredictionLogger(live.url, api_key=f"  {live.key}\n", model=model, flush_interval=0.05) as logger:
        assert logger.log("k-1", prediction="brake")
        assert logger.flush(timeout=20)
        assert logger.stats.sent == 1
    assert live.counts(model) == (1, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"api_key": None}, TypeError, "api_key must be a str"),
        ({"api_key": "   "}, ValueError, "api_key is empty"),
        ({"api_key": "lw_abc\r\nX-Evil: 1"}, ValueError, "control character"),
        ({"model": ""}, ValueError, "model is empty"),
        ({"model": 3}, TypeError, "model must be"),
        ({"url": "loopwatch:8080"}, ValueError, "http://"),
        ({"url": "ftp://user:secret@host"}, ValueError, "http://"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"flush_interval": 0}, ValueError, "flush_interval"),
    ],
)
def test_only_hopeless_arguments_raise(kwargs: dict[str, object], error: type[Exception], says: str) -> None:
    """Values that can never work raise a clear TypeError/ValueError at construction (and never
    repeat a URL that may hold credentials)."""
    arguments: dict[str, object] = {
        "url": f"http://127.0.0.1:{free_port()}",
        "api_key": "lw_" + "k" * 43,
        "model": "harsh-braking",
        **kwargs,
    }
    url = arguments.pop("url")
    with pytest.raises(error, match=re.escape(says)) as raised:
        PredictionLogger(url, **arguments)  # type: ignore[arg-type]
    assert "secret" not in str(raised.value)


def test_api_key_and_model_are_keyword_only() -> None:
    """PredictionLogger(url, *, api_key, model): a positional key cannot be mistaken for the model."""
    with pytest.raises(TypeError):
        PredictionLogger("http://127.0.0.1:1", "lw_" + "k" * 43, "harsh-braking")  # type: ignore[call-arg]
