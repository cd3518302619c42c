"""A gate run's verdict as a message for on-call and scientists (Slack, or the log).

The verdict, the gate and model, the dataset, the counts, the failing criterion × slice pairs
(the first ten) and the largest sample requests, with a link to the run's report page. Delivered
through the same receivers as alerts (``Notifier.announce``), once per run, after the run is
recorded: a receiver that is down never fails or delays the run itself.
"""

from __future__ import annotations

import logging
from typing import Any

from monitor.alerting.notify import Announcement, Notifier, NotifyError

log = logging.getLogger(__name__)

_STATUS = {"ship": "ok", "no_ship": "critical", "insufficient_evidence": "warning"}
MAX_FAILING_LISTED = 10
MAX_REQUESTS_LISTED = 5


def gate_announcement(summary: dict[str, Any], public_url: str | None) -> Announcement:
    verdict = str(summary["verdict"])
    counts = summary["summary"]
    lines = [
        f"dataset {summary['dataset']}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['insufficient']} undecided"
    ]
    failing = list(summary["failing"])
    lines += [f"fails: {item}" for item in failing[:MAX_FAILING_LISTED]]
    if len(failing) > MAX_FAILING_LISTED:
        lines.append(f"… and {len(failing) - MAX_FAILING_LISTED} more failing")
    for request in summary["sample_requests"][:MAX_REQUESTS_LISTED]:
        where = "all" if request["slice"] == "all" else f"{request['slice']}={request['value']}"
        lines.append(f"needs {request['rows']} more labelled rows in {where}")
    base = (public_url or "").rstrip("/")
    return Announcement(
        key=str(summary["id"]),
        title=f"Gate {summary['gate']} for {summary['model']}: {verdict.replace('_', ' ')}",
        status=_STATUS[verdict],  # type: ignore[arg-type]
        lines=lines,
        link=f"{base}/v1/gates/{summary['id']}/report.html" if base else None,
    )


def announce_verdict(notifier: Notifier, summary: dict[str, Any], public_url: str | None) -> str:
    """Deliver the verdict; returns ``sent`` or ``failed`` (logged, never raised)."""
    try:
        notifier.announce(gate_announcement(summary, public_url))
    except NotifyError as exc:
        log.warning("gate run %s: the verdict could not be sent to %s: %s", summary["id"], notifier.name, exc)
        return "failed"
    return "sent"
