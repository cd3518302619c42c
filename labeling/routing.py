"""Which predictions go to annotators: selection strategies over a window of the store.

Each strategy ranks candidate predictions and returns the best ``budget`` of them with a
reason; a share of every budget (``random_share``) is always uniform random so that error
rates estimated from the annotated samples stay unbiased. Selection is deterministic for a
given (model, window, strategy) seed.

* ``uncertainty`` — least confident first (binary: score nearest 0.5; multiclass: smallest
  margin between the top two probabilities);
* ``errors`` — confirmed errors (label contradicts the prediction, most confident first),
  then likely errors (predictions nearest the decision threshold);
* ``drift_region`` — rows of the current window in the bins of the drifted feature whose
  share grew most against the reference;
* ``long_tail`` — rare segment values, by quota per value;
* ``random`` — uniform.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Strategy = Literal["uncertainty", "errors", "drift_region", "long_tail", "random"]
STRATEGIES: tuple[Strategy, ...] = ("uncertainty", "errors", "drift_region", "long_tail", "random")

# Which alerts annotators can help with, and how. Labels answer one question: "is the model
# right on these inputs?". They help when an alert is about what the model predicts or how well
# (its errors, its confidence, the inputs it now sees). They cannot help when the alert is about
# the serving system or the data pipeline — a label does not make a request faster, bring back
# missing traffic, or fix a null column — so those alerts never spend the annotators' budget.
# This is the one place that decides it: the routing policy, the Slack button and
# POST /v1/labeling/route all ask here.
LABEL_STRATEGY_BY_DETECTOR: dict[str, Strategy] = {
    "performance": "errors",  # labels on (likely) errors confirm and explain the regression
    "data_drift": "drift_region",  # labels where the inputs moved show whether the model still holds there
    "prediction_drift": "uncertainty",  # the output moved: label where the model is least sure
    "label_drift": "uncertainty",  # the class balance moved: more labels measure it and its cost
    "estimated_performance": "uncertainty",  # an estimate without labels: labels confirm or refute it
    "multivariate_drift": "uncertainty",
    "embedding_drift": "uncertainty",
}
LABELS_CANNOT_HELP: dict[str, str] = {
    "latency": "latency is a serving problem; a label does not make a prediction faster",
    "volume": "a traffic drop or spike is a pipeline or client problem; labels do not restore traffic",
    "freshness": "the model stopped logging; there are no new predictions to label",
    "data_quality": "broken inputs (schema, nulls, ranges) are fixed upstream, not by annotators",
    "run_error": "the detector itself failed; there is no finding for labels to confirm",
}


def why_labels_cannot_help(detector: str) -> str | None:
    """None when labels can help with this detector's alerts, else the reason they cannot.

    An allow-list: a detector not named in ``LABEL_STRATEGY_BY_DETECTOR`` never routes, so a new
    detector spends no annotator time until someone decides that labels help with it.

    >>> why_labels_cannot_help("performance") is None
    True
    >>> why_labels_cannot_help("latency")
    'latency is a serving problem; a label does not make a prediction faster'
    """
    if detector in LABEL_STRATEGY_BY_DETECTOR:
        return None
    return LABELS_CANNOT_HELP.get(detector, f"labels are not known to help with {detector} alerts")


def strategy_for_alert(detector: str, column: str | None = None) -> Strategy | None:
    """The selection strategy that fits an alert of ``detector`` (None: do not route).

    Drift on a named feature routes rows from the region that grew; drift without a column
    (e.g. the share of drifted columns) falls back to uncertainty.
    """
    strategy = LABEL_STRATEGY_BY_DETECTOR.get(detector)
    if strategy == "drift_region" and not column:
        return "uncertainty"
    return strategy


@dataclass(frozen=True)
class Selected:
    prediction_id: str
    priority: float
    reason: str


def seed_for(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _ids(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("prediction_id").to_pylist(), dtype=object)


def _numeric(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False).astype(float)


def uncertainty(table: pa.Table, task: str, classes: list[str]) -> list[Selected]:
    if task == "multiclass" and "probabilities" in table.column_names:
        probs = table.column("probabilities").to_pylist()
        margins = np.array([np.nan if p is None else float(np.diff(np.sort(p)[-2:])[0]) for p in probs])
        order = np.argsort(np.where(np.isnan(margins), np.inf, margins), kind="stable")
        return [
            Selected(pid, 1.0 - margins[i], f"low margin {margins[i]:.3f} between the top two classes")
            for i, pid in zip(order, _ids(table)[order], strict=True)
            if not np.isnan(margins[i])
        ]
    if "score" not in table.column_names:
        return []
    score = _numeric(table, "score")
    distance = np.abs(score - 0.5)
    order = np.argsort(np.where(np.isnan(distance), np.inf, distance), kind="stable")
    return [
        Selected(pid, 1.0 - 2 * distance[i], f"score {score[i]:.3f} near the decision threshold")
        for i, pid in zip(order, _ids(table)[order], strict=True)
        if not np.isnan(distance[i])
    ]


def errors(table: pa.Table, task: str, classes: list[str]) -> list[Selected]:
    out: list[Selected] = []
    if "label" in table.column_names and task != "regression":
        labeled = pc.is_valid(table.column("label"))
        wrong = pc.and_(labeled, pc.not_equal(table.column("prediction"), table.column("label")))
        wrong_rows = table.filter(wrong)
        confidence = (np.abs(_numeric(wrong_rows, "score") - 0.5) * 2) if "score" in wrong_rows.column_names else None
        order = (
            np.argsort(-np.nan_to_num(confidence, nan=0.0), kind="stable")
            if confidence is not None
            else np.arange(wrong_rows.num_rows)
        )
        preds = wrong_rows.column("prediction").to_pylist()
        labels = wrong_rows.column("label").to_pylist()
        ids = _ids(wrong_rows)
        for i in order:
            conf = "" if confidence is None or np.isnan(confidence[i]) else f" with confidence {confidence[i]:.2f}"
            out.append(
                Selected(
                    ids[i],
                    2.0 + (0 if confidence is None else float(np.nan_to_num(confidence[i]))),
                    f"confirmed error: predicted {preds[i]}{conf}, labelled {labels[i]}",
                )
            )
        unlabeled = table.filter(pc.invert(labeled))
    else:
        unlabeled = table
    seen = {s.prediction_id for s in out}
    for item in uncertainty(unlabeled, task, classes):
        if item.prediction_id not in seen:
            out.append(Selected(item.prediction_id, item.priority, f"likely error: {item.reason}"))
    return out


def drift_region(current: pa.Table, reference: pa.Table, column: str, bins: int = 10) -> list[Selected]:
    """Rows in the bins whose share grew most vs the reference (numeric: reference deciles;
    categorical: categories)."""
    if column not in current.column_names or column not in reference.column_names or current.num_rows == 0:
        return []
    ids = _ids(current)
    col_type = current.schema.field(column).type
    if pa.types.is_floating(col_type) or pa.types.is_integer(col_type):
        ref = _numeric(reference, column)
        ref = ref[~np.isnan(ref)]
        cur = _numeric(current, column)
        if len(ref) == 0:
            return []
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0], edges[0] + 1e-9])
        n_inner = len(edges) - 1
        cur_bin = np.clip(np.searchsorted(edges, cur, side="right") - 1, 0, n_inner - 1)
        ref_bin = np.clip(np.searchsorted(edges, ref, side="right") - 1, 0, n_inner - 1)
        # Values beyond anything the reference saw are their own regions (reference share 0):
        # usually the clearest examples of what drifted.
        cur_bin = np.where(cur > edges[-1], n_inner, np.where(cur < edges[0], n_inner + 1, cur_bin))
        n_bins = n_inner + 2
        valid = ~np.isnan(cur)
        cur_share = np.bincount(cur_bin[valid], minlength=n_bins) / max(1, int(valid.sum()))
        ref_share = np.bincount(ref_bin, minlength=n_bins) / len(ref)
        labels = [f"{column} in [{edges[b]:.4g}, {edges[b + 1]:.4g})" for b in range(n_inner)]
        labels += [
            f"{column} > {edges[-1]:.4g} (above the reference range)",
            f"{column} < {edges[0]:.4g} (below the reference range)",
        ]
        row_bin = np.where(valid, cur_bin, -1)
    else:
        cur_vals = np.asarray(current.column(column).to_pylist(), dtype=object)
        ref_vals = reference.column(column).to_pylist()
        cats = sorted({v for v in cur_vals if v is not None} | {v for v in ref_vals if v is not None}, key=str)
        index = {c: i for i, c in enumerate(cats)}
        row_bin = np.array([index.get(v, -1) if v is not None else -1 for v in cur_vals])
        n_bins = len(cats)
        cur_share = np.bincount(row_bin[row_bin >= 0], minlength=n_bins) / max(1, int((row_bin >= 0).sum()))
        ref_counts = np.bincount([index[v] for v in ref_vals if v is not None], minlength=n_bins)
        ref_share = ref_counts / max(1, ref_counts.sum())
        labels = [f"{column} = {c}" for c in cats]
    growth = cur_share - ref_share
    out: list[Selected] = []
    for b in np.argsort(-growth, kind="stable"):
        if growth[b] <= 0:
            break
        rows = np.flatnonzero(row_bin == b)
        reason = f"{labels[b]}: {cur_share[b] * 100:.1f}% of the window vs {ref_share[b] * 100:.1f}% in the reference"
        out += [Selected(ids[r], float(growth[b]), reason) for r in rows]
    return out


def long_tail(table: pa.Table, segments: list[str], rare_share: float = 0.05, quota: int = 20) -> list[Selected]:
    out: list[Selected] = []
    n = table.num_rows
    for seg in segments:
        if seg not in table.column_names or n == 0:
            continue
        values = np.asarray(table.column(seg).to_pylist(), dtype=object)
        uniq, counts = np.unique(values[values != None], return_counts=True)  # noqa: E711 - numpy elementwise
        for value, count in sorted(zip(uniq, counts, strict=True), key=lambda vc: vc[1]):
            if count / n > rare_share:
                continue
            rows = np.flatnonzero(values == value)[:quota]
            out += [
                Selected(
                    _ids(table)[r], 1.0 - count / n, f"rare {seg} {value}: {count} of {n} predictions in the window"
                )
                for r in rows
            ]
    return out


def random_order(table: pa.Table, seed: int) -> list[Selected]:
    ids = _ids(table)
    order = np.random.default_rng(seed).permutation(len(ids))
    return [Selected(ids[i], 0.0, "random sample (keeps error estimates unbiased)") for i in order]


def collapse_near_duplicates(table: pa.Table, candidates: list[Selected], feature_columns: list[str]) -> list[Selected]:
    """Keep one candidate per identical feature vector (numbers rounded to 3 significant digits)."""
    if not feature_columns or not candidates:
        return candidates
    rows = {pid: i for i, pid in enumerate(_ids(table))}
    columns = {c: table.column(c).to_pylist() for c in feature_columns if c in table.column_names}
    seen: set[tuple[object, ...]] = set()
    out = []
    for item in candidates:
        i = rows.get(item.prediction_id)
        if i is None:
            continue
        key = tuple(float(f"{v:.3g}") if isinstance(v, float) else v for v in (columns[c][i] for c in columns))
        if key in seen:
            continue
        seen.add(key)
        out.append(item)
    return out


def pick(
    ranked: list[Selected], randoms: list[Selected], budget: int, random_share: float, exclude: set[str]
) -> list[Selected]:
    """Take ``budget`` items: the best ranked, plus ``random_share`` of them uniformly at random."""
    n_random = round(budget * random_share) if ranked else budget
    chosen: list[Selected] = []
    taken: set[str] = set(exclude)
    for item in ranked:
        if len(chosen) >= budget - n_random:
            break
        if item.prediction_id not in taken:
            chosen.append(item)
            taken.add(item.prediction_id)
    for item in randoms:
        if len(chosen) >= budget:
            break
        if item.prediction_id not in taken:
            chosen.append(item)
            taken.add(item.prediction_id)
    return chosen
