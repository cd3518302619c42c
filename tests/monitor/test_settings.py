"""Settings come from flags, then LOOPWATCH_* environment, then the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.service import Loopwatch
from monitor.settings import load_settings


def test_environment_overrides_config_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precedence: explicit flag > environment > config file > default."""
    config = tmp_path / "loopwatch.yaml"
    config.write_text("port: 9000\nhot_days: 5\ndata_dir: /tmp/from-file\n")
    monkeypatch.setenv("LOOPWATCH_PORT", "9100")
    settings = load_settings(config)
    assert settings.port == 9100 and settings.hot_days == 5 and settings.data_dir == Path("/tmp/from-file")
    assert load_settings(config, port=9200).port == 9200


def test_slack_token_falls_back_to_slack_bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOOPWATCH_SLACK_TOKEN falls back to SLACK_BOT_TOKEN, and is never shown in repr."""
    monkeypatch.delenv("LOOPWATCH_CONFIG", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    settings = load_settings()
    assert settings.slack_token is not None and settings.slack_token.get_secret_value() == "xoxb-secret"
    assert "xoxb-secret" not in repr(settings)


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config file that is not a mapping is refused with its path in the message."""
    config = tmp_path / "bad.yaml"
    config.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        load_settings(config)


def test_duckdb_memory_is_capped_by_default_and_the_cap_can_be_lifted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flat memory (issue 11): the server's DuckDB buffer pool is capped at 256MB unless
    configured, instead of DuckDB's 80 % of RAM (it caches the whole hot table until then);
    an empty ``LOOPWATCH_DUCKDB_MEMORY_LIMIT`` leaves DuckDB's own default."""
    monkeypatch.delenv("LOOPWATCH_CONFIG", raising=False)
    monkeypatch.delenv("LOOPWATCH_DUCKDB_MEMORY_LIMIT", raising=False)
    default = Loopwatch(load_settings(data_dir=tmp_path / "a"))
    try:
        assert default.db.query_one("SELECT current_setting('memory_limit')") == ("244.1 MiB",)
    finally:
        default.close()
    monkeypatch.setenv("LOOPWATCH_DUCKDB_MEMORY_LIMIT", "")
    lifted = Loopwatch(load_settings(data_dir=tmp_path / "b"))
    try:
        (limit,) = lifted.db.query_one("SELECT current_setting('memory_limit')") or ("",)
        assert limit != "244.1 MiB" and "GiB" in limit
    finally:
        lifted.close()


def test_spark_settings_come_from_the_environment_and_refuse_non_spark_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOOPWATCH_SPARK_MASTER and LOOPWATCH_SPARK_CONF (JSON) set the Spark engine's session — the
    options scheduled `engine: spark` runs start it with; a conf key that is not a spark.* setting
    is refused at start-up rather than ignored by Spark."""
    from monitor.engines.spark import SparkOptions

    monkeypatch.delenv("LOOPWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LOOPWATCH_SPARK_MASTER", "spark://cluster:7077")
    monkeypatch.setenv("LOOPWATCH_SPARK_CONF", '{"spark.hadoop.fs.s3a.endpoint": "http://minio:9000"}')
    options = SparkOptions.from_settings(load_settings())
    assert options.master == "spark://cluster:7077"
    assert options.conf == (("spark.hadoop.fs.s3a.endpoint", "http://minio:9000"),)
    assert SparkOptions.from_settings(load_settings(), "local[2]").master == "local[2]"
    monkeypatch.setenv("LOOPWATCH_SPARK_CONF", '{"fs.s3a.endpoint": "http://minio:9000"}')
    with pytest.raises(ValueError, match="not a Spark setting"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("s3a://bucket/prefix", "s3a://bucket/prefix"),
        ("s3a://bucket/prefix/", "s3a://bucket/prefix"),
        ("S3A://bucket", "s3a://bucket"),
        ("file:///srv/mirror//", "file:///srv/mirror"),
        ("hdfs://namenode:8020/loopwatch/sealed", "hdfs://namenode:8020/loopwatch/sealed"),
    ],
)
def test_spark_sealed_uri_is_one_root_without_trailing_slashes(
    monkeypatch: pytest.MonkeyPatch, given: str, root: str
) -> None:
    """LOOPWATCH_SPARK_SEALED_URI names the mirror's root the same way with or without a trailing
    slash (files are <root>/model=…/…), and reaches the Spark engine's options."""
    from monitor.engines.spark import SparkOptions

    monkeypatch.delenv("LOOPWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LOOPWATCH_SPARK_SEALED_URI", given)
    settings = load_settings()
    assert settings.spark_sealed_uri == root
    assert SparkOptions.from_settings(settings).sealed_uri == root
    assert SparkOptions.from_settings(settings, sealed_uri="file:///other").sealed_uri == "file:///other"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("/srv/mirror", "scheme"),
        ("bucket/prefix", "scheme"),
        ("s3a://", "no bucket"),
        ("file://relative/dir", "absolute path"),
        ("file:///", "root"),
        ("s3a://KEY:SECRET@bucket/p", "credentials"),
        ("s3a://bucket/p?versionId=1", "query"),
        ("s3a://bucket/my prefix", "scheme"),
    ],
)
def test_a_spark_sealed_uri_without_a_usable_root_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str, reason: str
) -> None:
    """A mirror root must be a URI with a scheme and (except file:///abs) a bucket or host, and
    carry no credentials, query or fragment: anything else is refused at start-up, saying why."""
    monkeypatch.delenv("LOOPWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LOOPWATCH_SPARK_SEALED_URI", given)
    with pytest.raises(ValueError, match=reason):
        load_settings()
