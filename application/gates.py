"""Release gates in a running service: judge a candidate on a dataset version, announce the
verdict to the alert receivers, read runs back, route the samples a run asked for.

(``loopwatch gate evaluate`` reads the dataset folder itself and needs no service: the same
evaluation, ``gates.report``, without a run record — see docs/gates.md.)"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gates.announce import announce_verdict
from gates.labeling import route_sample_requests

if TYPE_CHECKING:
    from gates.runs import GateRunStore
    from labeling.queue import LabelingQueue
    from monitor.alerting.pipeline import AlertPipeline
    from monitor.service import Loopwatch


class GateOps:
    def __init__(self, service: Loopwatch, runs: GateRunStore, pipeline: AlertPipeline, queue: LabelingQueue) -> None:
        self._service = service
        self.runs = runs
        self._pipeline = pipeline
        self._queue = queue

    def evaluate(
        self, actor: str, spec_text: str, dataset: str, candidate: pa.Table, champion: pa.Table | None
    ) -> dict[str, Any]:
        """Judge ``candidate`` (and ``champion``) on the dataset version against the spec; a run
        is recorded whatever its verdict. Returns the run's summary (``verdict``, ``exit_code``,
        ``failing``, ``sample_requests``)."""
        result = self.runs.create(spec_text, dataset, candidate, champion, datetime.now(UTC))
        self._service.audit.record(
            actor, "gate.evaluated", result["id"], {"verdict": result["verdict"], "dataset": result["dataset"]}
        )
        return result

    def announce(self, summary: dict[str, Any]) -> tuple[str, str]:
        """The verdict to the primary alert receiver (Slack, or the log); returns (receiver,
        ``sent`` | ``failed``) — never raises."""
        notifier = self._pipeline.notifier
        return notifier.name, announce_verdict(notifier, summary, self._service.settings.public_url)

    def list(self, model: str | None = None, limit: int = 100) -> builtins.list[dict[str, Any]]:
        return self.runs.list(model, limit)

    def report(self, run_id: str) -> dict[str, Any]:
        return self.runs.report(run_id)

    def html_path(self, run_id: str) -> Path:
        return self.runs.html_path(run_id)

    def route_requests(self, actor: str, run_id: str) -> dict[str, Any]:
        """Queue the run's sample requests for annotators: random unlabelled predictions of each
        undecided slice in the dataset's window (long-tail slices by the long_tail strategy)."""
        result = route_sample_requests(
            run_id,
            self.runs.report(run_id),
            self._queue,
            self._service.settings.data_dir / "datasets",
            datetime.now(UTC),
            actor,
        )
        self._service.audit.record(actor, "gate.routed", run_id, {"queued": result["queued"]})
        return result
