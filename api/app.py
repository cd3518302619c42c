"""The composition root: ``create_app()`` builds the service and mounts every router.

Later capabilities (scheduler, alert pipeline, labeling, dashboards) are assembled here too,
so the core packages never import what sits above them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.guard import RequestGuard
from api.metrics import Metrics
from api.model_metrics import ModelHealthReader, ModelMetricsCollector
from api.routes import (
    alerts,
    audit,
    console,
    dashboards,
    datasets,
    gates,
    health,
    keys,
    labeling,
    models,
    monitors,
    predictions,
    reports,
    session,
    sources,
    store,
)
from api.version import VERSION
from application import Application
from labeling.queue import LabelingQueue
from labeling.routing import why_labels_cannot_help
from labeling.sync import LabelSync
from monitor.alerting.notify import Notifier
from monitor.alerting.notify.receivers import notifier_from_settings
from monitor.alerting.pipeline import Dispatcher, build_pipeline
from monitor.clock import Clock, utcnow
from monitor.decoding import make_pool
from monitor.errors import InvalidInput, is_disk_full
from monitor.json_columns import warm_up
from monitor.memory import release_free_memory
from monitor.periodic import Periodic
from monitor.scheduling import MonitorScheduler, RunOutcome
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.streaming.runner import SourceRunner

log = logging.getLogger("loopwatch")


def connect_alerting(service: Loopwatch, settings: Settings, notifier: Notifier, now: Clock) -> Application:
    """Monitor outcomes → the alert pipeline → the routing policy (samples for each alert that
    starts firing). Used by the server and by the demo, which runs monitors before serving."""
    pipeline = build_pipeline(
        service, notifier, now, labels_help=lambda detector: why_labels_cannot_help(detector) is None
    )
    queue = LabelingQueue(service, now, daily_budget=settings.labeling_daily_budget)
    application = Application(service, pipeline, queue=queue, label_sync=make_label_sync(service, settings))
    auto_budget = settings.labeling_auto_route_budget

    def on_run(outcome: RunOutcome) -> None:
        for transition in pipeline.on_run(outcome):
            if transition.kind == "new" and auto_budget > 0:
                try:
                    application.labeling.route_for_alert(transition.alert_id, "policy:alert-fired", auto_budget)
                except Exception:
                    log.exception("automatic routing for alert %s failed", transition.alert_id)

    service.runner.subscribe(on_run)
    return application


def make_label_sync(service: Loopwatch, settings: Settings) -> LabelSync | None:
    """Label Studio sync when its URL and token are configured."""
    if not settings.label_studio_url or settings.label_studio_token is None:
        return None
    from labeling.label_studio.client import LabelStudioBackend

    backend = LabelStudioBackend(settings.label_studio_url, settings.label_studio_token.get_secret_value())
    return LabelSync(service, backend, service.now)


def watch_disk(app: FastAPI, name: str, job: Callable[[], object]) -> Callable[[], object]:
    """A background write job whose full disk shows on /readyz (503 ``disk_full``) like a refused
    request's; the job's next success clears what it set (a successful write request does too)."""

    def run() -> object:
        try:
            result = job()
        except Exception as exc:
            if is_disk_full(exc):
                app.state.disk_full = f"the server's disk is full: {name} could not write ({exc}); free space"
                app.state.disk_full_source = name
            raise
        if getattr(app.state, "disk_full_source", None) == name:
            app.state.disk_full = None
            app.state.disk_full_source = None
        return result

    return run


def push_sealed_mirror(application: Application, uri: str, metrics: Metrics) -> None:
    """One automatic push (every ``sealed_mirror_interval_seconds``): copied and failed files
    counted, a complete mirror time-stamped; a failure is logged and retried at the next tick."""
    try:
        report = application.store.push_to_mirror(uri)
    except InvalidInput as exc:  # unreachable, no such bucket: the whole push failed
        log.warning(
            "sealed mirror: %s (%s); retrying in the next interval", exc, "; ".join(e.reason for e in exc.errors)
        )
        return
    metrics.sealed_mirror_files.labels("pushed").inc(report.pushed)
    metrics.sealed_mirror_files.labels("failed").inc(len(report.failures))
    if report.failures:
        shown = ", ".join(f"{f.path} ({f.reason})" for f in report.failures[:3])
        log.warning("sealed mirror %s: %d files not mirrored: %s", report.destination, len(report.failures), shown)
    else:
        metrics.sealed_mirror_last_complete.set_to_current_time()
    if report.pushed:
        log.info("sealed mirror %s: %d files pushed (%d bytes)", report.destination, report.pushed, report.bytes)


def create_app(
    settings: Settings | None = None,
    *,
    now: Clock = utcnow,
    cli_token_hash: str | None = None,
    background: bool = True,
    notifier: Notifier | None = None,
    on_shutdown: Any = None,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Loopwatch(settings, now)
        app.state.service = service
        app.state.dashboards = dashboards.start_rollups(service, background)
        warm_up()
        app.state.json_pool = make_pool(settings.json_workers)
        maintenance = (
            Periodic(
                "loopwatch-sealing", settings.seal_interval_seconds, watch_disk(app, "sealing", service.store.seal)
            )
            if background
            else None
        )
        # Every model's id index opened before serving; its runs merged in the background.
        service.store.open_indexes()
        id_index_upkeep = (
            Periodic("loopwatch-id-index", 5.0, watch_disk(app, "id-index upkeep", service.store.maintain_indexes))
            if background
            else None
        )
        # Version counts tallied per batch, written every few seconds (monitor/versions.py).
        version_counts = (
            Periodic(
                "loopwatch-version-counts",
                5.0,
                watch_disk(app, "version counts", service.registry.write_version_counts),
            )
            if background
            else None
        )
        # The WAL kept bounded outside the request path (see Database.checkpoint_if_wal_over).
        wal_checkpoint = (
            Periodic(
                "loopwatch-wal-checkpoint",
                settings.wal_checkpoint_interval_seconds,
                watch_disk(
                    app, "WAL checkpoint", lambda: service.db.checkpoint_if_wal_over(settings.wal_checkpoint_bytes)
                ),
            )
            if background and settings.wal_checkpoint_bytes > 0
            else None
        )
        # Freed heap pages handed back between monitor runs too (monitor/memory.py).
        memory_release = (
            Periodic(
                "loopwatch-memory-release",
                settings.memory_release_interval_seconds,
                lambda: release_free_memory(arrow=False),  # Arrow's pool keeps the body buffers' pages
            )
            if background and settings.memory_release_interval_seconds > 0
            else None
        )
        # DuckDB's cached table blocks evicted between monitor runs (Database.release_cache).
        cache_release = (
            Periodic(
                "loopwatch-duckdb-cache-release",
                settings.duckdb_cache_release_interval_seconds,
                service.release_duckdb_cache,
            )
            if background and settings.duckdb_cache_release_interval_seconds > 0
            else None
        )
        # Sealed files re-hashed against the catalog: once shortly after start, then every
        # verify_interval_seconds, throttled; damage shows on /readyz and in every read needing it.
        verification = (
            Periodic(
                "loopwatch-verify-sealed",
                settings.verify_interval_seconds,
                lambda: service.store.verify_sealed(throttled=True),
                first_after=1.0,
            )
            if background
            else None
        )
        application = connect_alerting(service, settings, notifier or notifier_from_settings(settings), now)
        app.state.application = application
        pipeline, queue = application.pipeline, application.labeling.queue
        metrics: Metrics = app.state.metrics

        def count_run(outcome: RunOutcome) -> None:
            status = "failed" if outcome.error else "succeeded"
            metrics.detector_runs.labels(outcome.run.model, outcome.monitor.detector, status).inc()
            metrics.detector_seconds.labels(outcome.monitor.detector).observe(outcome.duration_s)

        service.runner.subscribe(count_run)
        metrics.outbox_depth.set_function(pipeline.outbox.depth)
        metrics.watch_memory(service.memory)
        metrics.watch_models(ModelMetricsCollector(ModelHealthReader(service, app.state.dashboards.rollups)))
        metrics.duckdb_wal_bytes.set_function(service.db.wal_bytes)
        pipeline.on_delivery = lambda receiver, result: metrics.notifications.labels(receiver, result).inc()
        app.state.alerts = pipeline
        label_sync = application.label_sync
        app.state.label_sync = label_sync
        app.state.datasets = application.datasets
        app.state.gate_runs = application.gates.runs
        app.state.gate_runs.remove_incomplete()
        labeling_loop = (
            Periodic(
                "loopwatch-labeling-sync",
                settings.labeling_sync_interval_seconds,
                lambda: (label_sync.push(), label_sync.poll()),
            )
            if background and label_sync
            else None
        )
        if labeling_loop:
            labeling_loop.start()
        app.state.labeling_queue = queue
        app.state.route_samples = application.labeling.route_for_alert
        dispatcher = Dispatcher(pipeline) if background else None
        if dispatcher:
            dispatcher.start()
        scheduler = (
            MonitorScheduler(
                service.runner,
                service.monitors,
                now=now,
                label_counter=lambda m, lo, hi: service.store.stats(m, lo, hi)["labels"],
            )
            if background
            else None
        )
        # Sealed files mirrored for an engine that reads the mirror (LOOPWATCH_SEALED_MIRROR).
        mirror = (
            Periodic(
                "loopwatch-sealed-mirror",
                settings.sealed_mirror_interval_seconds,
                lambda: push_sealed_mirror(application, settings.sealed_mirror or "", metrics),
                first_after=min(5.0, settings.sealed_mirror_interval_seconds),
            )
            if background and settings.sealed_mirror
            else None
        )
        app.state.scheduler = scheduler
        application.attach_scheduler(scheduler)
        if background:
            service.runs.interrupt_stale()
        if maintenance:
            maintenance.start()
        if id_index_upkeep:
            id_index_upkeep.start()
        if version_counts:
            version_counts.start()
        if wal_checkpoint:
            wal_checkpoint.start()
        if memory_release:
            memory_release.start()
        if cache_release:
            cache_release.start()
        if verification:
            verification.start()
        if mirror:
            mirror.start()
        if scheduler:
            scheduler.start()
        # A consumer per source (monitor/streaming): acknowledges/commits only what is stored.
        source_runner = SourceRunner(service, metrics.count_source_message) if background else None
        application.attach_sources(source_runner)
        if source_runner:
            metrics.watch_sources(source_runner.statuses)
            source_runner.start_all()
        try:
            yield
        finally:
            if source_runner:
                source_runner.stop_all()
            if scheduler:
                scheduler.shutdown(settings.shutdown_grace_seconds)
            else:
                service.runner.finish_runs(settings.shutdown_grace_seconds)  # manual runs from API threads
            app.state.dashboards.stop()
            if dispatcher:
                dispatcher.stop()
            if labeling_loop:
                labeling_loop.stop()
            if on_shutdown is not None:  # e.g. remove server.json: uvicorn re-raises SIGTERM after this
                on_shutdown()
            if maintenance:
                maintenance.stop()
            if id_index_upkeep:
                id_index_upkeep.stop()
            if version_counts:
                version_counts.stop()
            if wal_checkpoint:
                wal_checkpoint.stop()
            if memory_release:
                memory_release.stop()
            if cache_release:
                cache_release.stop()
            service.store.stop_verification()
            if verification:
                verification.stop()
            if mirror:
                mirror.stop()
            if app.state.json_pool is not None:
                app.state.json_pool.shutdown(wait=True, cancel_futures=True)
            service.close()

    app = FastAPI(
        title="loopwatch",
        version=VERSION,
        description="ML observability and feedback loop. Send `Authorization: Bearer KEY` on every call but /healthz.",
        lifespan=lifespan,
        docs_url=None,  # served by api.routes.session behind auth: Swagger UI 5 from dashboards/static/vendor
        redoc_url=None,
        openapi_url=None,
    )
    app.state.metrics = Metrics()
    app.state.cli_token_hash = cli_token_hash
    app.state.json_pool = None
    app.state.json_inflight = 0
    app.state.disk_full = None  # the message of the last write refused for lack of space, until one succeeds
    app.add_middleware(RequestGuard)
    app.state.scheduler = None
    app.state.label_sync = None
    install_error_handlers(app)
    dashboards.install_html_errors(app)  # pages answer errors as HTML pages; /v1/ keeps JSON
    for router in (
        health.router,
        session.router,
        models.router,
        predictions.router,
        monitors.router,
        alerts.router,
        labeling.router,
        datasets.router,
        gates.router,
        reports.router,
        keys.router,
        audit.router,
        store.router,
        sources.router,
        console.router,
        dashboards.router,
    ):
        app.include_router(router)
    dashboards.mount_static(app)  # the pages' CSS/JS/favicon (dashboards/static/app), public
    return app
