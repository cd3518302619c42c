"""Operations endpoints: liveness (open), readiness and Prometheus metrics (need a key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import MetricsDep, ReadKey, ServiceDep
from api.errors import ApiError
from api.version import VERSION
from monitor.clock import iso_z
from monitor.errors import DiskFull, FieldError, StorageDamaged

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Open (no key), so load balancers can probe it."""
    return {"status": "ok", "version": VERSION}


@router.get("/readyz")
def readyz(request: Request, service: ServiceDep, _: ReadKey) -> dict[str, str]:
    """Readiness: the store answers a query, the last write did not fail for lack of disk space
    (503 ``disk_full`` with Retry-After until a write succeeds again), and no sealed file is known
    to be damaged (503 ``storage_damaged`` naming each file, its window and why)."""
    full = getattr(request.app.state, "disk_full", None)
    if full:
        raise ApiError(503, "disk_full", full, {"Retry-After": str(DiskFull.RETRY_AFTER_SECONDS)})
    service.db.query("SELECT 1")
    damaged = service.store.damaged_files()
    if damaged:
        raise StorageDamaged(
            f"{len(damaged)} sealed file(s) damaged: {', '.join(p.path for p in damaged)}; reads that need them "
            "fail until they are restored from backup or dropped (`loopwatch store verify`, docs/operations.md)",
            [
                FieldError(p.path, f"{p.reason}; holds {p.model} rows {iso_z(p.window_start)} – {iso_z(p.window_end)}")
                for p in damaged
            ],
        )
    return {"status": "ready"}


@router.get("/metrics")
def metrics(request: Request, metrics: MetricsDep, _: ReadKey) -> Response:
    """Prometheus metrics; the labeling queue depth is read at scrape time."""
    queue = getattr(request.app.state, "labeling_queue", None)
    if queue is not None:
        depth = queue.depth()
        for status in ("queued", "pushed", "annotated"):
            metrics.labeling_queue.labels(status).set(depth.get(status, 0))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
