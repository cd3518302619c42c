"""The Grafana dashboard (deploy/grafana/loopwatch.json) agrees with what ``/metrics`` exports.

No Grafana runs in CI, so these checks stand in for one: the JSON parses and is laid out as
Grafana expects, every variable it uses is defined, every query is valid PromQL (parsed by
promql-parser, a PromQL parser), and every metric it names is in a real scrape of a real app
holding a model, monitors, findings and alerts — so the dashboard cannot chart a metric that
does not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_model_metrics import _app, _populate

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "loopwatch.json"
# Grafana's own variables that may appear in queries.
BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms", "__dashboard"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
# Samples a family of each type exposes: a family declared on /metrics with no sample yet (a
# labelled counter nothing has incremented) is still a metric Prometheus will scrape.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "summary": ("_sum", "_count"),
}


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def queries(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana's variables replaced by values of
    the right kind first; ``$model`` only ever appears inside a label matcher's string)."""
    concrete = re.sub(r"\$__\w+", "5m", expr)
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(concrete), pre_visit=visit)
    return names


def test_metric_names_finds_every_selector() -> None:
    """Rule (of the checker itself): names inside functions, aggregations and binary operations
    are all found, so a misspelt metric anywhere in a query is caught."""
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket[$__rate_interval]))) / on() b + time() - c{x=~"$model"}'
    assert metric_names(expr) == {"a_bucket", "b", "c"}


def test_dashboard_parses_and_is_laid_out_for_grafana() -> None:
    """Rule: valid JSON, schemaVersion ≥ 39, a stable uid, unique panel ids, panels inside the
    24-column grid, every query panel on the ``${DS_PROMETHEUS}`` datasource with unique refIds."""
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] and board["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" and t["expr"].strip() for t in panel["targets"])


def test_variables_are_defined() -> None:
    """Rule: the datasource variable and the ``model`` variable (from
    ``label_values(loopwatch_model_alerts_firing, model)``) exist, and every variable used anywhere
    in the dashboard is one of them or one of Grafana's own."""
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    model = variables["model"]
    assert model["type"] == "query" and model["datasource"]["uid"] == "${DS_PROMETHEUS}"
    assert model["definition"] == model["query"]["query"] == "label_values(loopwatch_model_alerts_firing, model)"
    used = {a or b for a, b in VARIABLE.findall(DASHBOARD.read_text(encoding="utf-8"))}
    assert used - BUILTINS <= set(variables), used - BUILTINS - set(variables)
    assert {"model", "DS_PROMETHEUS"} <= used
    assert all('model=~"$model"' in q for q in queries(board) if "loopwatch_model_" in q)


def test_panels_the_on_call_asked_for_are_there() -> None:
    """Rule: the dashboard charts firing alerts, drift per feature, realized vs estimated
    performance, volume, label coverage and freshness, and the service's ingest, notifications,
    DuckDB/WAL and memory."""
    text = " ".join(queries(dashboard()))
    for name in (
        "loopwatch_model_alerts_firing",
        "loopwatch_model_drift_score",
        "loopwatch_model_drift_status",
        'kind="realized"',
        'kind="estimated"',
        "loopwatch_model_predictions_total",
        "loopwatch_model_label_coverage_ratio",
        "loopwatch_model_last_prediction_timestamp_seconds",
        "loopwatch_ingested_rows_total",
        "loopwatch_ingest_seconds_bucket",
        "loopwatch_alert_notifications_total",
        "loopwatch_duckdb_wal_bytes",
        "loopwatch_memory_bytes",
    ):
        assert name in text, name


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """(names declared on /metrics, names with at least one sample) of a real app that ingested
    predictions and labels, ran drift, performance and estimated-performance monitors live and
    fired alerts."""
    with _app(tmp_path_factory.mktemp("grafana") / "data") as api:
        _populate(api)
        response = api.client.get("/metrics", headers=api.read)
        assert response.status_code == 200
    declared: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        declared.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        sampled.update(sample.name for sample in family.samples)
    return declared | sampled, sampled


def test_every_metric_in_the_dashboard_is_exported(scraped: tuple[set[str], set[str]]) -> None:
    """Rule: every query parses as PromQL and every metric it selects (and the ``model``
    variable's) is on a real ``/metrics``; the per-model ones have samples there."""
    exported, sampled = scraped
    board = dashboard()
    wanted: set[str] = set()
    for expr in queries(board):
        wanted |= metric_names(expr)
    variable = next(v for v in board["templating"]["list"] if v["name"] == "model")
    inner = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
    assert inner is not None
    wanted |= metric_names(inner.group(1))
    assert wanted, "no metric found in the dashboard"
    assert wanted <= exported, f"the dashboard charts metrics /metrics does not export: {sorted(wanted - exported)}"
    per_model = {name for name in wanted if name.startswith("loopwatch_model_")}
    assert per_model <= sampled, sorted(per_model - sampled)
