"""Safe identifiers. Names end up in file paths and (quoted) SQL column names, so they are
checked against a strict pattern before anything else sees them; values are always bound
as SQL parameters, never formatted into SQL."""

from __future__ import annotations

import re

MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
DATASET_NAME = MODEL_NAME

# Columns loopwatch itself defines in a prediction row; features and segments may not reuse them.
RESERVED_COLUMNS = frozenset(
    {
        "prediction_id",
        "timestamp",
        "model_version",
        "prediction",
        "score",
        "probabilities",
        "latency_ms",
        "label",
        "label_timestamp",
        "embedding",
        "features",
        "segments",
        "ingested_at",
        "model",
        "date",
    }
)


def model_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid model name, or ``None`` if it is."""
    if not isinstance(name, str):
        return "must be a string"
    if not MODEL_NAME.match(name):
        return "must be 1-64 characters: lowercase letters, digits, '-' or '_', starting with a letter or digit"
    return None


def column_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid feature/segment name, or ``None`` if it is."""
    if not isinstance(name, str):
        return "must be a string"
    if not COLUMN_NAME.match(name):
        return "must be 1-64 characters: letters, digits or '_', not starting with a digit"
    if name.lower() in RESERVED_COLUMNS:
        return f"'{name}' is reserved by loopwatch"
    return None


def quote_ident(name: str) -> str:
    """Quote an identifier that has already passed :func:`column_name_problem`."""
    if not COLUMN_NAME.match(name):
        raise ValueError(f"unsafe identifier {name!r}")
    return f'"{name}"'
