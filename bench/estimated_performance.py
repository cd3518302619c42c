"""How well ``estimated_performance`` sees a performance change before the labels arrive.

The analysis period's labels are withheld; every window is judged from scores (CBPE) or
predicted errors (DLE) alone, then compared with the metric *realized* from the withheld
labels. Two data sets, neither needs a download:

* **simulated, known truth** — a calibrated logistic model on five features (P(y) = score).
  Reference: 20,000 labelled rows. Windows of 5,000 rows: 40 with no change, 20 with a benign
  covariate shift (rows move away from the decision boundary: performance rises), 20 with a
  harmful one (rows crowd the boundary: accuracy 0.80 → ~0.70, ROC-AUC 0.88 → ~0.78) and 20
  with concept drift (the labels stop following the scores: P(y) = score²), which CBPE cannot
  see from scores and the estimator check must flag once labels arrive;
* **real: the RAND Health Insurance Experiment** (``statsmodels.datasets.randhie``, 20,190
  people, shipped inside statsmodels). Binary task "three or more doctor visits a year"
  (``mdvis ≥ 3``) and regression task ``mdvis``. A gradient-boosted model is trained on the
  first people of a seeded shuffle, the next ones are the labelled reference, and the analysis
  windows (drawn without replacement) come from the rest: 10 drawn at random (no shift) and 10
  from the sickest half by the disease index ``disea`` (a covariate shift we introduce, as if
  the insurer's population aged). Binary: 4,000 / 4,000 / 4,000-row windows of the other
  12,190; regression (DLE learns errors from the reference, so it gets more): 6,000 / 6,000 /
  2,000-row windows of the other 8,190.

Reported per data set: the mean and maximum absolute error of each estimate against the
realized value, and how the estimated verdicts agree with what the labels say — an estimated
``critical`` where the *realized* metric dropped by at least the relevance margin (a true
alert), where it did not (a false alarm), and realized drops that got no alert (a miss).

    .venv/bin/python bench/estimated_performance.py [--seed 0]

writes ``bench/results/estimated_performance.json`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors import EstimatedPerformance, ModelSpec, RunContext, Status  # noqa: E402
from detectors.performance import PerformanceConfig, relevance_margin  # noqa: E402

CTX = RunContext("bench", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))
BINARY_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "fpr", "fnr")
HIGHER_IS_WORSE = {"fpr", "fnr", "mae", "rmse"}


def _binary_table(x: np.ndarray, score: np.ndarray, y: np.ndarray | None) -> pa.Table:
    cols: dict[str, Any] = {f"x{i}": x[:, i] for i in range(x.shape[1])}
    cols |= {"score": score, "prediction": np.where(score >= 0.5, "pos", "neg")}
    cols["label"] = pa.array(np.where(y, "pos", "neg")) if y is not None else pa.nulls(len(score), pa.string())
    return pa.table(cols)


def _simulated(rng: np.random.Generator, n: int, kind: str) -> tuple[pa.Table, np.ndarray]:
    """(unlabelled window, its withheld labels) of the calibrated simulated model."""
    weights = np.array([1.2, -0.8, 0.6, 0.0, 0.4])
    spread = {"none": 1.0, "benign": 1.6, "harmful": 0.55, "concept": 1.0}[kind]
    x = rng.normal(0, 1, (n, 5))
    x[:, :3] *= spread
    score = 1 / (1 + np.exp(-(x @ weights)))
    y = rng.random(n) < (score**2 if kind == "concept" else score)
    return _binary_table(x, score, None), y


def _with_labels(table: pa.Table, labels: np.ndarray, positive: str = "pos", negative: str = "neg") -> pa.Table:
    index = table.schema.get_field_index("label")
    if labels.dtype == bool:
        return table.set_column(index, "label", pa.array(np.where(labels, positive, negative)))
    return table.set_column(index, "label", pa.array(labels.astype(np.float64)))


def _judge_windows(
    detector: EstimatedPerformance,
    reference: Any,
    cfg: Any,
    windows: list[tuple[str, pa.Table, np.ndarray]],
    metrics: tuple[str, ...],
) -> dict[str, Any]:
    """Estimate each window unlabelled, then realize it with its labels; tally the agreement."""
    rule = PerformanceConfig(margin=cfg.margin, relative_margin=cfg.relative_margin, confidence=cfg.confidence)
    errors: dict[str, dict[str, list[float]]] = {}
    verdicts: dict[str, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for kind, unlabelled, labels in windows:
        estimated = {f.metric: f for f in detector.run(unlabelled, reference, cfg, CTX) if f.segment is None}
        realized = {f.metric: f for f in detector.run(_with_labels(unlabelled, labels), reference, cfg, CTX) if f.segment is None}
        tally = verdicts.setdefault(kind, {"windows": 0, "true_alert": 0, "false_alarm": 0, "miss": 0, "check_warning": 0})
        tally["windows"] += 1
        alerted = dropped = False
        row: dict[str, Any] = {"kind": kind}
        for metric in metrics:
            est = estimated[metric]
            real_value = realized[metric].details.get("realized")
            if est.value is None or real_value is None:
                continue
            errors.setdefault(kind, {}).setdefault(metric, []).append(abs(est.value - real_value))
            ref_value = est.details["reference_value"]
            worse = (real_value - ref_value) if metric in HIGHER_IS_WORSE else (ref_value - real_value)
            margin = relevance_margin(metric, ref_value, rule)
            if metric == "rmse":
                margin = ref_value * rule.relative_margin
            dropped |= worse >= margin
            alerted |= est.status is Status.CRITICAL
            row[metric] = {"estimated": round(est.value, 4), "realized": round(real_value, 4), "status": est.status.value}
        check = realized.get("estimator_check")
        tally["check_warning"] += check is not None and check.status is Status.WARNING
        tally["true_alert"] += alerted and dropped
        tally["false_alarm"] += alerted and not dropped
        tally["miss"] += dropped and not alerted
        row |= {"alert": alerted, "realized_drop": dropped}
        rows.append(row)
    return {
        "mean_abs_error": {k: {m: round(float(np.mean(v)), 4) for m, v in e.items()} for k, e in errors.items()},
        "max_abs_error": {k: {m: round(float(np.max(v)), 4) for m, v in e.items()} for k, e in errors.items()},
        "verdicts": verdicts,
        "seconds_per_window": round((time.perf_counter() - started) / max(len(windows), 1) / 2, 3),
        "windows": rows,
    }


def simulated(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": list(BINARY_METRICS)})
    spec = ModelSpec(task="binary", classes=("neg", "pos"), positive_class="pos")
    ref_table, ref_labels = _simulated(rng, 20_000, "none")
    reference = detector.prepare_reference(_with_labels(ref_table, ref_labels), spec, cfg)
    plan = [("none", 40), ("benign", 20), ("harmful", 20), ("concept", 20)]
    windows = [(kind, *_simulated(rng, 5_000, kind)) for kind, count in plan for _ in range(count)]
    return _judge_windows(detector, reference, cfg, windows, BINARY_METRICS)


def _randhie(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data
    features = [c for c in data.columns if c != "mdvis"]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    return data[features].to_numpy(np.float64)[order], data["mdvis"].to_numpy(np.float64)[order], features


def _real_windows(
    rng: np.random.Generator, x: np.ndarray, disease: np.ndarray, size: int, count: int
) -> list[tuple[str, np.ndarray]]:
    """Row indices of ``count`` random windows and ``count`` from the sickest half."""
    sick = np.flatnonzero(disease >= np.median(disease))
    out = [("none", rng.choice(len(x), size, replace=False)) for _ in range(count)]
    out += [("sicker", rng.choice(sick, size, replace=False)) for _ in range(count)]
    return out


def real(seed: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x, visits, features = _randhie(seed)
    # Binary: 4,000 to train, 4,000 labelled reference, 4,000-row windows from the other 12,190.
    train, ref, analysis = slice(0, 4_000), slice(4_000, 8_000), slice(8_000, None)
    disease = x[:, features.index("disea")]
    rng = np.random.default_rng(seed + 1)
    out: dict[str, Any] = {"rows": len(x), "features": features}

    # Binary: three or more visits.
    y = visits >= 3
    clf = HistGradientBoostingClassifier(max_iter=150, random_state=seed).fit(x[train], y[train])
    score = clf.predict_proba(x)[:, 1]
    spec = ModelSpec(task="binary", classes=("neg", "pos"), positive_class="pos", features=dict.fromkeys(features, "numeric"))
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": list(BINARY_METRICS)})

    def table(rows: np.ndarray | slice, labelled: bool) -> pa.Table:
        return _binary_table(x[rows], score[rows], y[rows] if labelled else None)

    reference = detector.prepare_reference(table(ref, True), spec, cfg)
    pool = np.arange(len(x))[analysis]
    windows = [
        (kind, table(pool[idx], False), y[pool[idx]])
        for kind, idx in _real_windows(rng, x[analysis], disease[analysis], 4_000, 10)
    ]
    out["binary"] = {"positive_rate": round(float(y.mean()), 3)} | _judge_windows(
        detector, reference, cfg, windows, BINARY_METRICS
    )

    # Regression (DLE learns the error from the reference, so it gets more of it): 6,000 to
    # train, 6,000 labelled reference, 2,000-row windows from the other 8,190.
    train, ref, analysis = slice(0, 6_000), slice(6_000, 12_000), slice(12_000, None)
    pool = np.arange(len(x))[analysis]
    reg = HistGradientBoostingRegressor(max_iter=150, random_state=seed).fit(x[train], visits[train])
    predicted = reg.predict(x)
    rspec = ModelSpec(task="regression", features=dict.fromkeys(features, "numeric"))
    rcfg = detector.config({})

    def rtable(rows: np.ndarray | slice, labelled: bool) -> pa.Table:
        cols: dict[str, Any] = {f: x[rows, i] for i, f in enumerate(features)}
        cols["prediction"] = predicted[rows]
        cols["label"] = pa.array(visits[rows]) if labelled else pa.nulls(len(predicted[rows]), pa.float64())
        return pa.table(cols)

    rreference = detector.prepare_reference(rtable(ref, True), rspec, rcfg)
    rwindows = [
        (kind, rtable(pool[idx], False), visits[pool[idx]])
        for kind, idx in _real_windows(rng, x[analysis], disease[analysis], 2_000, 10)
    ]
    out["regression"] = _judge_windows(detector, rreference, rcfg, rwindows, ("mae", "rmse"))
    return out


def _table(name: str, result: dict[str, Any]) -> str:
    kinds = list(result["mean_abs_error"])
    lines = [
        f"### {name}",
        "",
        "Absolute error of the estimate against the realized value, mean / max over the windows of each kind:",
        "",
        "| metric | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for metric in result["mean_abs_error"][kinds[0]]:
        cells = [f"{result['mean_abs_error'][k][metric]:.4f} / {result['max_abs_error'][k][metric]:.4f}" for k in kinds]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines += ["", "| windows | n | alerts on a realized drop | false alarms | missed drops | estimator check warns |", "|---|---|---|---|---|---|"]
    for kind, t in result["verdicts"].items():
        lines.append(
            f"| {kind} | {t['windows']} | {t['true_alert']} | {t['false_alarm']} | {t['miss']} | {t['check_warning']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "estimated_performance.json")
    args = parser.parse_args()
    started = time.perf_counter()
    result = {"simulated": simulated(args.seed), "randhie": real(args.seed)}
    result |= {
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(_table("simulated (calibrated model, 5,000-row windows)", result["simulated"]))
    print()
    print(_table("randhie, binary: mdvis ≥ 3 (4,000-row windows)", result["randhie"]["binary"]))
    print()
    print(_table("randhie, regression: mdvis, DLE (2,000-row windows)", result["randhie"]["regression"]))
    print(f"\n{result['seconds']} s; written to {args.output}")


if __name__ == "__main__":
    main()
