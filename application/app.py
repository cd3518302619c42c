"""One object carrying every use case for one data directory (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from application.alerts import AlertOps
from application.audit import AuditOps
from application.gates import GateOps
from application.keys import KeyOps
from application.labeling import LabelingOps
from application.models import ModelOps
from application.monitors import MonitorOps, Scheduling
from application.sources import Consuming, SourceOps
from application.store import StoreOps
from labeling.curation import DatasetStore
from labeling.queue import LabelingQueue

if TYPE_CHECKING:
    from labeling.sync import LabelSync
    from monitor.alerting.pipeline import AlertPipeline
    from monitor.service import Loopwatch


@dataclass
class Application:
    """The use cases over one :class:`~monitor.service.Loopwatch`.

    ``pipeline`` is the server's (its dispatcher delivers); the CLI working on a free data
    directory builds an offline one (state changes recorded, delivered when a server runs). A
    server attaches its scheduler (:meth:`attach_scheduler`); offline there is none, and a
    server schedules every stored monitor when it starts."""

    service: Loopwatch
    pipeline: AlertPipeline
    queue: LabelingQueue | None = None
    label_sync: LabelSync | None = None
    models: ModelOps = field(init=False)
    keys: KeyOps = field(init=False)
    monitors: MonitorOps = field(init=False)
    sources: SourceOps = field(init=False)
    alerts: AlertOps = field(init=False)
    audit: AuditOps = field(init=False)
    store: StoreOps = field(init=False)
    labeling: LabelingOps = field(init=False)
    datasets: DatasetStore = field(init=False)

    def __post_init__(self) -> None:
        self.models = ModelOps(self.service)
        self.keys = KeyOps(self.service)
        self.monitors = MonitorOps(self.service)
        self.sources = SourceOps(self.service)
        self.alerts = AlertOps(self.service, self.pipeline)
        self.audit = AuditOps(self.service)
        self.store = StoreOps(self.service)
        queue = self.queue or LabelingQueue(
            self.service, self.service.now, daily_budget=self.service.settings.labeling_daily_budget
        )
        self.labeling = LabelingOps(self.service, self.pipeline, queue, self.label_sync)
        self.datasets = DatasetStore(self.service, self.service.now)

    @cached_property
    def gates(self) -> GateOps:
        """Release gates (built on first use: a misconfigured signing key then fails only the
        gate operations, not every command)."""
        from gates.runs import GateRunStore
        from gates.signing import keys_from_settings

        settings = self.service.settings
        runs = GateRunStore(settings.data_dir / "gates", settings.data_dir / "datasets", keys_from_settings(settings))
        return GateOps(self.service, runs, self.pipeline, self.labeling.queue)

    def attach_scheduler(self, scheduler: Scheduling | None) -> None:
        """The server's scheduler, told when monitors are applied or deleted."""
        self.monitors.attach_scheduler(scheduler)

    def attach_sources(self, runner: Consuming | None) -> None:
        """The server's source consumers, told when sources are applied or deleted."""
        self.sources.attach_runner(runner)

    @classmethod
    def offline(cls, service: Loopwatch) -> Application:
        """For the CLI on a free data directory: an alert pipeline that records state but does
        not deliver (no dispatcher runs); the next server start delivers what is due."""
        from monitor.alerting.pipeline import build_pipeline

        return cls(service, build_pipeline(service))
