"""Gate runs kept by the server: one self-contained record directory per run.

``POST /v1/gates`` receives the spec and the prediction rows in its body, so the server writes
them into the run's directory (``gates/RUN_ID/``: ``spec.yaml``, ``candidate.parquet``,
``champion.parquet``) before judging, and the report records those files' hashes: the directory
alone is the verification record (``loopwatch gate verify DATA_DIR/gates/RUN_ID``). A run is
built in a temporary directory and renamed into place, so a listed run is always complete.
The list reads the runs' ``report.json`` files; there is no separate index to drift from them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gates.report import GateInputs, run_gate, write_report
from gates.signing import SigningKeys
from monitor.errors import NotFound
from monitor.files import fsync_path

RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")


def summary(run_id: str, report: dict[str, Any]) -> dict[str, Any]:
    """What a deployment system reads: the verdict, why, and what would decide it."""
    result = report["result"]
    return {
        "id": run_id,
        "gate": report["gate"],
        "model": report["model"],
        "dataset": report["inputs"]["dataset"]["ref"],
        "verdict": report["verdict"],
        "exit_code": report["exit_code"],
        "generated_at": report["generated_at"],
        "summary": result["summary"],
        "failing": result["failing"],
        "sample_requests": result["sample_requests"],
        # Where to ask the labeling queue for those rows (POST), when there are any.
        "route": f"/v1/gates/{run_id}/route" if result["sample_requests"] else None,
    }


class GateRunStore:
    def __init__(self, root: Path, datasets_root: Path, keys: SigningKeys) -> None:
        self.root = root
        self._datasets_root = datasets_root
        self._keys = keys

    def create(
        self, spec_text: str, dataset_ref: str, candidate: pa.Table, champion: pa.Table | None, now: datetime
    ) -> dict[str, Any]:
        """Judge and record one run; returns its summary. Input mistakes raise ``InvalidInput``
        and leave nothing behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        run_id = f"{now.strftime('%Y%m%dt%H%M%S%f')}-{uuid.uuid4().hex[:8]}"  # sorts by time
        tmp = self.root / f".building-{run_id}"
        tmp.mkdir()
        final = self.root / run_id
        try:
            (tmp / "spec.yaml").write_text(spec_text)
            candidate_path = tmp / "candidate.parquet"
            pq.write_table(candidate, candidate_path)
            champion_path = tmp / "champion.parquet" if champion is not None else None
            if champion is not None and champion_path is not None:
                pq.write_table(champion, champion_path)
            inputs = GateInputs(tmp / "spec.yaml", dataset_ref, candidate_path, champion_path, self._datasets_root)
            run = run_gate(inputs, now)
            # Judged in the temporary directory; the record names the files where they will live.
            for entry, name in (
                ("spec", "spec.yaml"),
                ("candidate", "candidate.parquet"),
                ("champion", "champion.parquet"),
            ):
                if run.report["inputs"].get(entry):
                    run.report["inputs"][entry]["path"] = str((final / name).resolve())
            write_report(run, tmp, self._keys)
            for path in tmp.iterdir():
                fsync_path(path)
            os.rename(tmp, final)
            fsync_path(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return summary(run_id, run.report)

    def remove_incomplete(self) -> int:
        """At server start: runs a crash left half-built (``.building-*``) are removed; none of
        them was ever answered or listed. Returns how many."""
        if not self.root.is_dir():
            return 0
        stale = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(".building-")]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)

    def list(self, model: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Runs, newest first."""
        if not self.root.is_dir():
            return []
        out = []
        for folder in sorted((p for p in self.root.iterdir() if RUN_ID.match(p.name)), reverse=True):
            report = self._read(folder)
            if report and (model is None or report["model"] == model):
                out.append(summary(folder.name, report))
            if len(out) >= limit:
                break
        return out

    def report(self, run_id: str) -> dict[str, Any]:
        report = self._read(self._folder(run_id))
        if report is None:
            raise NotFound(f"no gate run {run_id!r}")
        return report

    def html_path(self, run_id: str) -> Path:
        path = self._folder(run_id) / "report.html"
        if not path.is_file():
            raise NotFound(f"no gate run {run_id!r}")
        return path

    def _folder(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise NotFound(f"no gate run {run_id!r}")
        return self.root / run_id

    @staticmethod
    def _read(folder: Path) -> dict[str, Any] | None:
        try:
            report: dict[str, Any] = json.loads((folder / "report.json").read_text())
            return report
        except (OSError, json.JSONDecodeError):
            return None
