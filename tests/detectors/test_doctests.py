"""Every detector module's docstring example runs as a doctest (the examples are the documentation)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import detectors

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(detectors.__path__, prefix="detectors.") if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", ["detectors", *MODULES])
def test_docstring_examples(name: str) -> None:
    """The examples in the module's docstrings produce exactly the output shown."""
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest failure(s) in {name}"
