"""Gate reports: ``report.json`` (the record), ``report.html`` (for people), and their checks.

Reproducible by construction: the same inputs give a byte-identical ``report.json`` apart from
``generated_at`` (keys sorted, floats rounded to 12 significant digits, no paths that depend on
the working directory beyond what the user passed). The report records the sha256 of the spec,
of the dataset manifest and of both prediction files, the loopwatch version, and a copy of the
spec (``spec.yaml``) so the directory is a self-contained verification record. ``verify``
recomputes all of it — input hashes, the evaluation, the HTML — and checks the signature.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from dashboards.assets import plotly_js_path
from dashboards.figures import Figure, figure
from dashboards.html import json_for_script
from gates.evaluate import GateResult, evaluate
from gates.inputs import DatasetVersion, evaluation_set, read_dataset, read_predictions
from gates.signing import Signature, SigningKeys
from gates.spec import LOWER_IS_BETTER, GateSpec, parse_spec
from monitor.errors import FieldError, InvalidInput, LoopwatchError
from monitor.files import fsync_path, sha256_file
from monitor.version import VERSION

REPORT_FORMAT = "loopwatch-gate-report/1"
EXIT_CODES = {"ship": 0, "no_ship": 1, "insufficient_evidence": 3}
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("gates", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class GateInputs:
    spec_path: Path
    dataset_ref: str
    candidate_path: Path
    champion_path: Path | None
    datasets_root: Path


@dataclass
class GateRun:
    spec: GateSpec
    spec_text: str
    dataset: DatasetVersion
    result: GateResult
    report: dict[str, Any]


def run_gate(inputs: GateInputs, now: datetime) -> GateRun:
    """Read and check the inputs, judge the candidate, and build the report (not yet written)."""
    if not inputs.spec_path.is_file():
        raise InvalidInput("spec file not found", [FieldError(field="spec", reason=f"no file at {inputs.spec_path}")])
    spec_text = inputs.spec_path.read_text()
    spec = parse_spec(spec_text, str(inputs.spec_path))
    dataset = read_dataset(inputs.datasets_root, inputs.dataset_ref)
    candidate = read_predictions(inputs.candidate_path, "candidate")
    champion = read_predictions(inputs.champion_path, "champion") if inputs.champion_path else None
    result = evaluate(spec, evaluation_set(spec, dataset, candidate, champion))
    report = _report(spec, spec_text, inputs, dataset, result, now)
    return GateRun(spec, spec_text, dataset, result, report)


def _file_entry(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    # Absolute, so `gate verify` finds the file from any working directory.
    return {"path": str(path.resolve()), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _report(
    spec: GateSpec, spec_text: str, inputs: GateInputs, dataset: DatasetVersion, result: GateResult, now: datetime
) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "gate": spec.name,
        "model": spec.model,
        "verdict": result.verdict,
        "exit_code": EXIT_CODES[result.verdict],
        "generated_at": now.isoformat(),
        "loopwatch_version": VERSION,
        "method": {
            "confidence": spec.confidence,
            "alpha_one_sided": float(f"{spec.alpha:.12g}"),
            "power": spec.power,
            "min_samples": spec.min_samples,
            "pass": "one-sided confidence bound clears the threshold (intersection-union: all must pass)",
            "fail": "violation shown after Holm's adjustment across criteria × slices",
            "intervals": "Wilson score (rates); Newcombe 1998 method 10 paired (non-inferiority of rates); "
            "CLT (mae and paired error differences)",
        },
        "inputs": {
            "spec": {
                "path": str(inputs.spec_path.resolve()),
                "sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
                "content": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            },
            "dataset": {
                "ref": f"{dataset.name}@{dataset.version}",
                "datasets_root": str(inputs.datasets_root.resolve()),
                "manifest_sha256": dataset.manifest_sha256,
                "content_hash": dataset.manifest.get("content_hash"),
                "rows": dataset.table.num_rows,
                "splits_judged": spec.splits or "all",
            },
            "candidate": _file_entry(inputs.candidate_path),
            "champion": _file_entry(inputs.champion_path),
        },
        "result": result.to_dict(),
    }


def report_bytes(report: dict[str, Any]) -> bytes:
    """The canonical bytes of ``report.json`` (what is hashed and signed)."""
    return (json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def render_html(report: dict[str, Any]) -> str:
    """A readable page: verdict, the table of criterion × slice, and one plot per criterion of
    champion vs candidate with their intervals. Self-contained (plotly.js inline) so the record
    opens offline years later."""
    checks = report["result"]["checks"]
    criteria = report["inputs"]["spec"]["content"]["criteria"]
    figures = [_criterion_figure(i, criteria[i], checks) for i in range(len(criteria))]
    return _TEMPLATES.get_template("report.html.j2").render(
        report=report,
        checks=checks,
        figures=[markupsafe.Markup(json_for_script(f)) for f in figures if f],
        plotly_js=markupsafe.Markup(plotly_js_path().read_text().replace("</script", "<\\/script")),
    )


def _criterion_figure(index: int, criterion: dict[str, Any], checks: list[dict[str, Any]]) -> Figure | None:
    """Per slice value: the candidate's estimate and interval, the champion's beside it, and the
    threshold as a dashed line (for non-inferiority: the difference and the margin on the worse
    side: −margin, or +margin for fnr, fpr and mae)."""
    rows = [c for c in checks if c["criterion"] == index]
    if not rows:
        return None
    label = rows[0]["label"]
    xs = [c["value"] if c["slice"] == "all" else f"{c['slice']}={c['value']}" for c in rows]
    paired = rows[0]["difference"] is not None

    def series(key: str, name: str, color: str) -> dict[str, Any] | None:
        points = [c[key] for c in rows]
        if all(p is None or p["value"] is None for p in points):
            return None
        ys = [p["value"] if p else None for p in points]
        plus = [(p["high"] - p["value"]) if p and p["value"] is not None else None for p in points]
        minus = [(p["value"] - p["low"]) if p and p["value"] is not None else None for p in points]
        return {
            "type": "scatter",
            "mode": "markers",
            "name": name,
            "x": xs,
            "y": ys,
            "marker": {"color": color, "size": 9},
            "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": color},
        }

    data = [
        s
        for s in (
            series("difference", "candidate − champion", "#2563eb")
            if paired
            else series("candidate", "candidate", "#2563eb"),
            None if paired else series("champion", "champion", "#94a3b8"),
        )
        if s
    ]
    if "non_inferiority" in criterion:
        margin = float(criterion["non_inferiority"])
        threshold = margin if criterion["metric"] in LOWER_IS_BETTER else -margin
    else:
        threshold = float(criterion["min"] if "min" in criterion else criterion["max"])
    line = {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": threshold,
        "y1": threshold,
        "line": {"color": "#dc2626", "dash": "dash", "width": 1.5},
    }
    return figure(
        data,
        label,
        height=300,
        xaxis={"type": "category"},
        yaxis={"title": {"text": label.split(" ")[0]}},
        shapes=[line],
    )


@dataclass
class WrittenReport:
    directory: Path
    verdict: str
    exit_code: int
    signature: Signature | None = None
    files: list[str] = field(default_factory=list)


def write_report(run: GateRun, out: Path, keys: SigningKeys) -> WrittenReport:
    """``report.json``, ``report.html``, ``spec.yaml`` and (when a key is configured)
    ``signature.json`` into ``out``, each fsynced; existing files are replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    payload = report_bytes(run.report)
    files = {
        "report.json": payload,
        "report.html": render_html(run.report).encode(),
        "spec.yaml": run.spec_text.encode(),
    }
    signature = keys.sign(payload)
    if signature:
        files["signature.json"] = (json.dumps(signature.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    else:
        (out / "signature.json").unlink(missing_ok=True)  # a stale signature would not match
    for name, content in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(content)
        fsync_path(tmp)
        os.replace(tmp, out / name)
    fsync_path(out)
    verdict = str(run.report["verdict"])
    return WrittenReport(out, verdict, EXIT_CODES[verdict], signature, sorted(files))


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    problems: list[str]
    verdict: str | None
    signed: bool


def _without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "generated_at"}


def verify_report(directory: Path, keys: SigningKeys, datasets_root: Path | None = None) -> Verification:
    """Recompute everything the report claims: the signature (if signed), the hashes of the
    spec copy and of every input, the evaluation (the same report apart from ``generated_at``)
    and the HTML. Any difference is a problem; ``ok`` only when there is none."""
    problems: list[str] = []
    path = directory / "report.json"
    if not path.is_file():
        return Verification(False, [f"no report.json in {directory}"], None, False)
    payload = path.read_bytes()
    try:
        report = json.loads(payload)
    except json.JSONDecodeError as exc:
        return Verification(False, [f"report.json is not JSON: {exc}"], None, False)
    if report.get("format") != REPORT_FORMAT:
        return Verification(False, [f"not a loopwatch gate report (format {report.get('format')!r})"], None, False)
    signed = (directory / "signature.json").is_file()
    if signed:
        try:
            raw = json.loads((directory / "signature.json").read_text())
            why = keys.verify(payload, Signature(raw["scheme"], raw["key_id"], raw["signature"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            why = f"signature.json is not readable: {exc}"
        if why:
            problems.append(f"signature: {why}")
    if payload != report_bytes(report):
        problems.append("report.json is not in its canonical form (edited by hand?)")
    spec_copy = directory / "spec.yaml"
    recorded_spec = report["inputs"]["spec"]
    if not spec_copy.is_file() or hashlib.sha256(spec_copy.read_bytes()).hexdigest() != recorded_spec["sha256"]:
        problems.append("spec.yaml is missing or differs from the spec the report records")
    for role in ("candidate", "champion"):
        entry = report["inputs"].get(role)
        if entry and (not Path(entry["path"]).is_file() or sha256_file(Path(entry["path"])) != entry["sha256"]):
            problems.append(f"{role} file {entry['path']} is missing or changed since the report")
    if problems:
        return Verification(False, problems, report.get("verdict"), signed)
    dataset = report["inputs"]["dataset"]
    inputs = GateInputs(
        spec_path=spec_copy,
        dataset_ref=dataset["ref"],
        candidate_path=Path(report["inputs"]["candidate"]["path"]),
        champion_path=Path(report["inputs"]["champion"]["path"]) if report["inputs"].get("champion") else None,
        datasets_root=datasets_root or Path(dataset["datasets_root"]),
    )
    try:
        again = run_gate(inputs, datetime.fromisoformat(report["generated_at"]))
    except LoopwatchError as exc:
        return Verification(False, [f"the inputs no longer evaluate: {exc}"], report.get("verdict"), signed)
    recomputed = again.report
    recomputed["inputs"]["spec"]["path"] = recorded_spec["path"]  # judged from the copy
    recomputed["inputs"]["dataset"]["datasets_root"] = dataset["datasets_root"]
    if _without_time(recomputed) != _without_time(report):
        changed = sorted(k for k in recomputed if recomputed.get(k) != report.get(k) and k != "generated_at")
        problems.append(f"recomputing the gate gives a different report (differs in: {', '.join(changed)})")
    html = directory / "report.html"
    if not html.is_file() or html.read_text() != render_html(report):
        problems.append("report.html is missing or does not match report.json")
    return Verification(not problems, problems, report.get("verdict"), signed)
