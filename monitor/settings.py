"""Service settings: environment (``LOOPWATCH_*``) first, then an optional YAML config file.

One data directory holds everything (DuckDB file, sealed Parquet, datasets), so backing up
or moving an installation is copying one folder.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DATA_DIR = Path("loopwatch-data")
_config_path: ContextVar[Path | None] = ContextVar("loopwatch_config_path", default=None)


class Settings(BaseSettings):
    """Everything the service can be configured with; names match ``LOOPWATCH_<FIELD>``."""

    # Inputs are never echoed in validation errors: a refused value may hold a credential.
    model_config = SettingsConfigDict(
        env_prefix="LOOPWATCH_", extra="forbid", populate_by_name=True, hide_input_in_errors=True
    )

    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None

    # Ingestion limits.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_future_seconds: int = Field(default=24 * 3600, ge=0)  # a timestamp further ahead is refused
    max_batch_rows: int = Field(default=1_000_000, ge=1)
    # Backpressure: ingest requests (predictions + labels) handled at once; more get 503 with
    # Retry-After, which the Python client honours. Sized for 2 cores (the JSON pool has 2 workers).
    max_inflight_ingest: int = Field(default=4, ge=1)
    overload_retry_after_seconds: int = Field(default=1, ge=1)
    # JSON bodies above this size are decoded in worker processes (the GIL limits one process
    # to one core); 0 workers decodes everything in the server process.
    json_workers: int = Field(default=2, ge=0, le=64)
    json_worker_min_bytes: int = Field(default=256 * 1024, ge=0)
    json_offload: Literal["auto", "always", "never"] = "auto"  # auto: only while another decode runs

    # Store tuning. A large checkpoint threshold keeps DuckDB from checkpointing inside ingest
    # requests (measured: 296k → 880k rows/s); the WAL still makes every commit durable.
    # DuckDB's buffer pool keeps every block it has read or checkpointed until memory_limit (its
    # own default: 80 % of RAM), so the server's RSS grew with the hot table (~50 MB/min at
    # 5k rows/s). 256MB holds the un-checkpointed rows plus a 1-minute window's sort at that rate
    # (128MB made monitor runs fail out of memory); larger scans spill. "" = DuckDB's default.
    duckdb_memory_limit: str | None = "256MB"
    duckdb_threads: int | None = None
    checkpoint_threshold: str = "1GB"
    # Flat memory (issue 11): a background job checkpoints every wal_checkpoint_interval_seconds
    # once the WAL exceeds wal_checkpoint_bytes (0 = off), under the write lock between ingest
    # commits, so the WAL and the memory it pins stay bounded while requests never checkpoint.
    wal_checkpoint_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    wal_checkpoint_interval_seconds: float = Field(default=30, gt=0)
    # Free C-heap pages handed back to the OS every memory_release_interval_seconds (0 = only after
    # monitor runs): ingest, sealing and the id index's merges leave freed pages in glibc's arenas
    # between monitor runs (monitor/memory.py; docs/architecture.md, "Flat memory").
    memory_release_interval_seconds: float = Field(default=10, ge=0)
    # DuckDB's cached table blocks (read or checkpointed) evicted every
    # duckdb_cache_release_interval_seconds while no monitor run is in progress (0 = never), so
    # they do not sit in the pool until memory_limit (Database.release_cache).
    duckdb_cache_release_interval_seconds: float = Field(default=30, ge=0)
    # Drift references (issue 11, flat memory): a reference slice (the window, or one segment
    # value) above reference_sample_rows rows is judged on a uniform sample of that many
    # (detectors/sampling.py; 0 = every row), and prepared references are kept in an LRU of at
    # most reference_cache_mb. A 30-minute trailing reference at 5k rows/s held 4.7 GB whole.
    reference_sample_rows: int = Field(default=50_000, ge=0)
    reference_cache_mb: int = Field(default=512, ge=1)
    hot_days: int = Field(default=2, ge=0)  # whole days kept in DuckDB before sealing to Parquet
    seal_interval_seconds: int = Field(default=3600, ge=1)
    # Sealed files are re-hashed against the catalog this often (first pass right after start),
    # reading at most this many bytes per second (0 = unthrottled).
    verify_interval_seconds: int = Field(default=86400, ge=1)
    verify_bytes_per_second: int = Field(default=100_000_000, ge=0)

    # Integrations (later issues use these).
    slack_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LOOPWATCH_SLACK_TOKEN", "SLACK_BOT_TOKEN", "slack_token")
    )
    slack_channel: str | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Alert receivers besides Slack (monitor/alerting/notify/; docs/alerting.md). Each exists as
    # soon as its first setting is set; the default route then delivers to every configured one.
    webhook_url: str | None = None  # Alertmanager-shaped JSON POSTed here
    webhook_secret: SecretStr | None = None  # HMAC-SHA256 signature key (X-Loopwatch-Signature)
    pagerduty_routing_key: SecretStr | None = None  # Events API v2 integration key
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # default: 465 with smtp_ssl, else 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_to: str | None = None  # comma-separated addresses
    smtp_starttls: bool = True  # upgrade a plain connection with STARTTLS (refused if the server cannot)
    smtp_ssl: bool = False  # implicit TLS from the first byte (port 465)
    smtp_timeout_seconds: float = Field(default=10, gt=0)
    # A YAML routing tree (Alertmanager-style route + named receivers); see docs/alerting.md.
    routing_file: Path | None = None
    label_studio_url: str | None = None
    label_studio_token: SecretStr | None = None
    label_studio_webhook_secret: SecretStr | None = None  # header X-Loopwatch-Webhook-Secret on webhooks
    # Release-gate reports (gates/signing.py): an HMAC secret, or an Ed25519 private key (PEM) to
    # sign with and a public key to verify with (auditors need only the public key).
    gate_signing_key: SecretStr | None = None
    gate_signing_key_file: Path | None = None
    gate_verify_key_file: Path | None = None
    labeling_sync_interval_seconds: int = Field(default=60, ge=1)
    labeling_daily_budget: int = Field(default=500, ge=0)
    labeling_auto_route_budget: int = Field(default=20, ge=0)  # samples routed when an alert fires; 0 = off
    # Blind labelling: samples routed as likely errors (strategy `errors`) reach annotators without
    # the model's answer (no pre-annotation, no model output in the task). True shows the model's
    # output and pre-selects it, as for the other strategies; `show_model_output` on a route overrides.
    labeling_errors_show_model_output: bool = False

    # The Spark engine (monitor/engines/spark.py; docs/spark.md): where the scheduled runs of
    # `engine: spark` monitors and `backfill --engine spark` without --spark-master run, and extra
    # spark.* settings (LOOPWATCH_SPARK_CONF as JSON, e.g. {"spark.hadoop.fs.s3a.endpoint": "..."}).
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = Field(default_factory=dict)
    spark_driver_memory: str = "1g"
    # Where Spark reads sealed files instead of DATA_DIR/sealed (a mirror kept by `loopwatch sealed
    # push`, same layout): s3a://bucket/prefix, hdfs://…, file:///abs/path. None: the local files.
    spark_sealed_uri: str | None = None
    # Sealed files pushed to a mirror automatically (monitor/sealed_push.py), every
    # sealed_mirror_interval_seconds and once shortly after start, so an engine reading the mirror
    # (spark_sealed_uri) finds newly sealed days without a cron job: s3://bucket/prefix (the
    # credentials and AWS_ENDPOINT_URL from the server's environment) or a directory. None: only
    # `loopwatch sealed push` pushes.
    sealed_mirror: str | None = None
    sealed_mirror_interval_seconds: float = Field(default=300, gt=0)

    # SIGTERM: monitor runs still going after this many seconds are recorded as `interrupted`
    # and the server exits without waiting for them.
    shutdown_grace_seconds: float = Field(default=20, ge=0)

    log_level: str = "INFO"

    @field_validator("webhook_url", "pagerduty_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("spark_conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.startswith("spark."):
                raise ValueError(f"{key!r} is not a Spark setting (they start with 'spark.')")
        return value

    @field_validator("spark_sealed_uri")
    @classmethod
    def _sealed_uri(cls, value: str | None) -> str | None:
        return None if value is None else normalize_sealed_uri(value)

    @field_validator("sealed_mirror")
    @classmethod
    def _mirror(cls, value: str | None) -> str | None:
        # Only the form here, by the push's own rules (the destination is reached at each push).
        if value is None:
            return None
        from monitor.sealed_push import form_problem  # pyarrow.fs: imported only when a mirror is set

        text = value.strip()
        problem = form_problem(text)
        if problem is None and not urlsplit(text).scheme and not text.startswith("/"):
            problem = "a directory mirror must be an absolute path"
        if problem is not None:
            raise ValueError(problem)
        return text

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def db_path(self) -> Path:
        return self.data_dir / "loopwatch.duckdb"

    @property
    def sealed_dir(self) -> Path:
        return self.data_dir / "sealed"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (CLI flags) beat the environment, which beats the config file.
        return init_settings, env_settings, _YamlFileSource(settings_cls)


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(/.*)?$")


def normalize_sealed_uri(value: str) -> str:
    """The root of a sealed-file mirror (``spark_sealed_uri``, ``--spark-sealed-uri``) without its
    trailing slashes — ``s3a://b/p/`` and ``s3a://b/p`` name one root, and files are
    ``<root>/model=…/date=…/part-….parquet`` — or :class:`ValueError` saying what is wrong. A scheme
    is required (a bare path would be resolved differently by the driver and by each executor);
    credentials, queries and fragments are refused (credentials belong in the environment or the
    ``spark.hadoop.fs.s3a.*`` settings, never in a URI that is printed and audited)."""
    text = value.strip()
    match = _SCHEME.match(text)
    if match is None or any(c.isspace() for c in text):
        raise ValueError(f"{value!r} is not a URI with a scheme, e.g. s3a://bucket/prefix or file:///abs/path")
    scheme, authority, path = match.group(1).lower(), match.group(2), match.group(3) or ""
    if "@" in authority:
        raise ValueError("credentials do not belong in the URI: give them through the environment or spark_conf")
    if "?" in text or "#" in text:
        raise ValueError(
            "a query or fragment is not part of a mirror root; give the bare root, e.g. s3a://bucket/prefix"
        )
    if scheme == "file":
        if authority or not path.startswith("/"):
            raise ValueError(f"{value!r}: a file URI needs an absolute path, file:///abs/path")
    elif not authority:
        raise ValueError(f"{value!r} names no bucket or host after {scheme}://")
    root = f"{scheme}://{authority}{path.rstrip('/')}"
    if scheme == "file" and root == "file://":
        raise ValueError("file:/// is the filesystem's root, not a mirror directory")
    return root


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the file given to ``--config`` (or named by ``LOOPWATCH_CONFIG``), if any."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _config_path.get() or os.environ.get("LOOPWATCH_CONFIG")
        if not path:
            return {}
        return load_config_file(Path(path))


def load_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file whose keys are setting names (``data_dir``, ``port`` …)."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ValueError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(content, dict):
        raise ValueError(f"config file {path} must hold a mapping of setting names to values")
    return {str(k).lower().removeprefix("loopwatch_"): v for k, v in content.items()}


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from flags (``overrides``), the environment and the config file."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    token = _config_path.set(config)
    try:
        return Settings(**clean)
    finally:
        _config_path.reset(token)
