"""Ask the labeling queue for exactly the rows a gate run said would decide it.

A gate that ends in *insufficient evidence* lists, per slice value, how many more labelled rows
would decide its undecided criteria (``sample_requests``, long-tail slices first). Routing them
closes the loop: annotators label those rows, the next dataset version holds them, the gate is
run again.

The rows are drawn **uniformly at random** among the slice's *unlabelled* predictions in the
dataset's window (strategy ``random``): an evaluation set must stay representative of its slice,
and routing by uncertainty or likely error would bias the very metric the gate estimates. The
long-tail request uses the ``long_tail`` strategy (rare segment values), which is how the
curated set's long-tail split is defined. The queue's daily budget still applies; what was
queued per request is reported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gates.inputs import parse_dataset_ref
from gates.spec import LONGTAIL_SLICE
from labeling.curation import DatasetFiles
from labeling.queue import MAX_ROUTE_BUDGET, LabelingQueue, RouteRequest

DEFAULT_LOOKBACK = timedelta(days=7)  # a dataset without a recorded window: route from the last week


def route_sample_requests(
    run_id: str,
    report: dict[str, Any],
    queue: LabelingQueue,
    datasets_root: Path,
    now: datetime,
    requested_by: str,
) -> dict[str, Any]:
    """Route each of the run's sample requests; returns what was asked and queued per slice."""
    name, version = parse_dataset_ref(report["inputs"]["dataset"]["ref"])
    selection = DatasetFiles(datasets_root).show(name, version).get("selection") or {}  # the window only
    end = datetime.fromisoformat(selection["end"]) if selection.get("end") else now
    start = datetime.fromisoformat(selection["start"]) if selection.get("start") else end - DEFAULT_LOOKBACK
    routed = []
    for request in report["result"]["sample_requests"]:
        where = "all" if request["slice"] == "all" else f"{request['slice']}={request['value']}"
        longtail = request["slice"] == LONGTAIL_SLICE
        outcome = queue.route(
            RouteRequest(
                model=report["model"],
                strategy="long_tail" if longtail else "random",
                budget=max(1, min(int(request["rows"]), MAX_ROUTE_BUDGET)),
                start=start,
                end=end,
                segments=None if longtail or request["slice"] == "all" else {request["slice"]: request["value"]},
                unlabelled_only=True,
                requested_by=requested_by,
                note=f"gate {run_id}: {where} needs {request['rows']} more labelled rows",
            )
        )
        routed.append(
            {
                "slice": request["slice"],
                "value": request["value"],
                "requested": request["rows"],
                "queued": outcome["queued"],
            }
        )
    return {
        "run": run_id,
        "window": [start.isoformat(), end.isoformat()],
        "routed": routed,
        "queued": sum(r["queued"] for r in routed),
    }
