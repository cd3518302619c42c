"""Copying the sealed Parquet files to a mirror (object storage or another directory) that Spark
reads instead of the data directory (``spark_sealed_uri``; docs/spark.md, "Object storage").

The mirror keeps the layout under ``sealed/`` (``model=…/date=…/part-….parquet``), so a file's
place in it follows from its catalog path alone. A destination is ``s3://bucket/prefix`` (pyarrow's
``S3FileSystem``; Spark names the same objects ``s3a://bucket/prefix``), a local directory or a
``file://`` URI. Only files that match their catalog record here (size and sha256) are copied: a
damaged file must not be mirrored. A file already in the mirror with the catalog's size is skipped.

Credentials come from the environment only (``AWS_ACCESS_KEY_ID`` … or an instance role, read by
the AWS SDK inside pyarrow) and are never part of a destination, a log line or a report.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import pyarrow.fs as pafs

from monitor.errors import InvalidInput
from monitor.files import fsync_path
from monitor.integrity import CHUNK, SealedRecord, check_file

ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class Destination:
    """Where sealed files are pushed: a pyarrow filesystem, the root inside it, and the
    destination as the user gave it (without credentials: those are refused in a URI)."""

    filesystem: Any  # pyarrow.fs.FileSystem
    root: str
    uri: str

    @property
    def atomic_move(self) -> bool:
        """Whether a rename inside this filesystem is atomic (a local filesystem: upload to a
        temporary name, then rename). S3 has no rename (a "move" is copy and delete); a PUT there
        is all-or-nothing anyway, so the object is written directly and its size checked after."""
        return bool(self.filesystem.type_name == "local")

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"


def form_problem(dest: str) -> str | None:
    """Why ``dest`` cannot be a push destination by its form alone (no I/O), or ``None``: the
    rules :func:`open_destination` and the ``sealed_mirror`` setting share. Never quotes a
    credential."""
    parts = urlsplit(dest.strip())
    scheme = parts.scheme.lower()
    if scheme in ("s3", "s3a"):
        if "@" in parts.netloc:
            return "credentials do not belong in the destination: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        if parts.query or parts.fragment:
            return "give the bare s3://bucket/prefix (no query or fragment); --endpoint-url sets the endpoint"
        if not parts.netloc:
            return "no bucket: s3://bucket/prefix"
    elif scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            return "a file URI needs an absolute path: file:///abs/path"
    elif scheme and len(scheme) > 1:  # one letter: a Windows drive, not a scheme
        return f"{scheme}:// is not supported: push to s3://bucket/prefix, a local directory or file:///path"
    return None


def open_destination(dest: str, endpoint_url: str | None = None) -> Destination:
    """The destination ``dest`` names, reachable: ``s3://bucket/prefix`` (``s3a://`` is taken
    as the same bucket and key), a ``file://`` URI or a local directory path (created if
    missing). ``endpoint_url`` (else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) points S3 at
    another server (MinIO, a test server). :class:`InvalidInput` naming ``destination`` when it
    is malformed, of an unsupported kind, or cannot be reached."""
    text = dest.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    s3 = scheme in ("s3", "s3a")
    if endpoint_url is not None and not s3:
        raise _bad(dest, "--endpoint-url applies to s3:// destinations only")
    problem = form_problem(text)
    if problem is not None:
        # An s3:// destination with a user part or a query may hold a credential: not echoed.
        hidden = s3 and ("@" in parts.netloc or bool(parts.query or parts.fragment))
        raise _bad("s3://…" if hidden else text if s3 else dest, problem)
    if s3:
        return _s3(parts.netloc, parts.path, endpoint_url)
    if scheme == "file":
        return _local(Path(parts.path), text)
    return _local(Path(text).expanduser().absolute(), text)


def _s3(bucket: str, key: str, endpoint_url: str | None) -> Destination:
    prefix = key.strip("/")
    endpoint = endpoint_url or next((os.environ[v] for v in ENDPOINT_ENV if os.environ.get(v)), None)
    uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if endpoint:
        # Given in the URI, the endpoint also stops pyarrow from asking AWS for the bucket's region.
        uri += "?endpoint_override=" + quote(endpoint, safe="")
    shown = uri.split("?", 1)[0]
    try:
        filesystem, root = pafs.FileSystem.from_uri(uri)
        found = filesystem.get_file_info(bucket)  # reachable, the credentials accepted
    except (OSError, ValueError) as exc:
        raise _bad(shown, f"cannot reach it: {_first_line(exc)}") from None
    if found.type != pafs.FileType.Directory:
        raise _bad(shown, f"no bucket named {bucket!r} at {endpoint or 'AWS'} (push does not create buckets)")
    return Destination(filesystem, root.rstrip("/"), shown)


def _local(path: Path, text: str) -> Destination:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _bad(text, f"cannot create the directory: {exc.strerror or exc}") from None
    return Destination(pafs.LocalFileSystem(), str(path).rstrip("/") or "/", str(path))


def _bad(dest: str, reason: str) -> InvalidInput:
    from monitor.errors import FieldError

    return InvalidInput(f"cannot push to {dest}", [FieldError(field="destination", reason=reason)])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass(frozen=True)
class PushFailure:
    path: str  # under sealed/
    reason: str


@dataclass
class PushReport:
    """What a push did: files copied, files already there (same size), bytes copied, and each
    file not mirrored with why (damaged here, or the copy did not check out)."""

    destination: str
    files: int = 0
    pushed: int = 0
    skipped: int = 0
    bytes: int = 0
    failures: list[PushFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "files": self.files,
            "pushed": self.pushed,
            "skipped": self.skipped,
            "bytes": self.bytes,
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
        }


LocalCheck = Callable[[SealedRecord], str | None]
Progress = Callable[[str, str], None]  # (path under sealed/, "pushed" | "skipped" | "failed")


def push_sealed(
    records: Iterable[SealedRecord],
    sealed_dir: Path,
    destination: Destination,
    *,
    check_local: LocalCheck | None = None,
    progress: Progress | None = None,
) -> PushReport:
    """Copy each catalog file to ``destination`` under its catalog path. A file already there with
    the catalog's size is skipped; a file that does not match its record here (``check_local``:
    size and sha256, default :func:`monitor.integrity.check_file`) is refused and named. The copy is
    hashed as it is read (a file changed between the check and the copy is removed from the
    mirror again) and the mirrored file's size is checked after writing — and, in a local
    directory, its sha256 too."""
    check = check_local or (lambda r: check_file(sealed_dir / r.path, r.bytes, r.sha256))
    report = PushReport(destination.uri)
    for record in records:
        report.files += 1
        outcome, reason = _push_one(record, sealed_dir, destination, check)
        if outcome == "skipped":
            report.skipped += 1
        elif outcome == "pushed":
            report.pushed += 1
            report.bytes += record.bytes
        else:
            report.failures.append(PushFailure(record.path, reason))
        if progress is not None:
            progress(record.path, outcome)
    return report


Outcome = tuple[Literal["pushed", "skipped", "failed"], str]


def _push_one(record: SealedRecord, sealed_dir: Path, destination: Destination, check: LocalCheck) -> Outcome:
    """What happened to one file, and (when it failed) why."""
    fs = destination.filesystem
    target = destination.path(record.path)
    try:
        info = fs.get_file_info(target)
    except OSError as exc:
        return "failed", f"cannot look it up in the mirror: {_first_line(exc)}"
    if info.type == pafs.FileType.File and info.size == record.bytes:
        return "skipped", ""
    damage = check(record)
    if damage is not None:
        return "failed", f"not pushed: damaged here ({damage}); see `loopwatch store verify`"
    written = f"{target}.tmp-{uuid.uuid4().hex}" if destination.atomic_move else target
    try:
        parent = target.rsplit("/", 1)[0]
        fs.create_dir(parent, recursive=True)
        digest = _copy(sealed_dir / record.path, fs, written)
        if digest != record.sha256:
            _remove(fs, written)
            return "failed", "changed while it was copied (sha256 differs from the catalog's); removed from the mirror"
        if written != target:  # a local directory: durable under its temporary name, then renamed
            fsync_path(Path(written))
            fs.move(written, target)
            fsync_path(Path(parent))
    except OSError as exc:
        _remove(fs, written)
        return "failed", f"upload failed: {_first_line(exc)}"
    reason = _verify(record, destination, target)
    return ("pushed", "") if reason is None else ("failed", reason)


def _copy(source: Path, fs: Any, target: str) -> str:
    """Stream ``source`` to ``target`` in 1 MiB chunks; the sha256 of what was sent."""
    digest = hashlib.sha256()
    with source.open("rb") as fh, fs.open_output_stream(target) as out:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _verify(record: SealedRecord, destination: Destination, target: str) -> str | None:
    """Read back what the mirror holds: its size (any filesystem) and, for a local directory, the
    sha256 — the same check the store applies to its own files. ``None``: it matches."""
    try:
        size = destination.filesystem.get_file_info(target).size
    except OSError as exc:
        return f"written, but cannot be checked: {_first_line(exc)}"
    if size != record.bytes:
        return f"written, but the mirror holds {size} bytes, the catalog {record.bytes}"
    if destination.atomic_move:
        reason = check_file(Path(target), record.bytes, record.sha256)
        if reason is not None:
            return f"written, but the copy does not match the catalog: {reason}"
    return None


def _remove(fs: Any, path: str) -> None:
    with contextlib.suppress(OSError):  # never written, or already gone
        fs.delete_file(path)
