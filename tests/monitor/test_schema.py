"""Model schema validation and its evolution rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.errors import Conflict
from monitor.schema import ModelSchema, schema_changes
from monitor.service import Loopwatch
from tests.conftest import BRAKING


def test_binary_defaults_positive_class_to_second_class() -> None:
    """A binary model without positive_class treats its second class as positive."""
    spec = ModelSchema(name="m", task="binary", classes=["no", "yes"])
    assert spec.positive_class == "yes"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Bad Name"}, "lowercase"),
        ({"name": "../etc"}, "lowercase"),
        ({"features": {"1speed": "numeric"}}, "not starting with a digit"),
        ({"features": {"speed; DROP TABLE x": "numeric"}}, "letters, digits"),
        ({"features": {"timestamp": "numeric"}}, "reserved"),
        ({"features": {"Speed": "numeric", "speed": "numeric"}}, "case-insensitive"),
        ({"features": {"x": "vector"}}, "Input should be"),
        ({"classes": ["a"]}, "exactly two classes"),
        ({"positive_class": "maybe"}, "not one of the classes"),
        ({"segments": ["speed_kmh"]}, "clashes"),
    ],
)
def test_invalid_registrations_are_refused_with_a_reason(change: dict, message: str) -> None:
    """Unsafe names, reserved names, clashes and inconsistent classes are refused, saying why."""
    with pytest.raises(ValidationError, match=message):
        ModelSchema.model_validate({**BRAKING, **change})


def test_regression_model_has_no_classes() -> None:
    """A regression model with classes is refused."""
    with pytest.raises(ValidationError, match="no classes"):
        ModelSchema(name="r", task="regression", classes=["a", "b"])


def test_adding_a_feature_is_compatible_but_changing_kind_is_not() -> None:
    """Adding features/segments is a compatible change; a kind change or removal is refused."""
    old = ModelSchema.model_validate(BRAKING)
    added = ModelSchema.model_validate({**BRAKING, "features": {**BRAKING["features"], "rain": "boolean"}})
    ok, refused = schema_changes(old, added)
    assert ok == ["feature 'rain' added (boolean)"] and refused == []
    changed = ModelSchema.model_validate({**BRAKING, "features": {**BRAKING["features"], "speed_kmh": "categorical"}})
    _, refused = schema_changes(old, changed)
    assert any("cannot change kind" in r for r in refused)
    removed = ModelSchema.model_validate({**BRAKING, "features": {"speed_kmh": "numeric"}})
    _, refused = schema_changes(old, removed)
    assert any("cannot be removed" in r for r in refused)


def test_registry_versions_the_schema_and_adds_columns(service: Loopwatch) -> None:
    """Re-registering unchanged is a no-op; adding a feature bumps the schema version and the column appears."""
    spec = ModelSchema.model_validate(BRAKING)
    assert service.registry.register(spec).outcome == "created"
    assert service.registry.register(spec).outcome == "unchanged"
    evolved = ModelSchema.model_validate({**BRAKING, "features": {**BRAKING["features"], "rain": "boolean"}})
    result = service.registry.register(evolved)
    assert result.outcome == "updated" and result.model.schema_version == 2
    assert "rain" in service.store.scan("harsh-braking").column_names
    history = service.registry.schema_history("harsh-braking")
    assert [h["version"] for h in history] == [1, 2]


def test_registry_refuses_kind_change_and_keeps_old_schema(service: Loopwatch) -> None:
    """A refused change leaves the registered schema untouched."""
    service.registry.register(ModelSchema.model_validate(BRAKING))
    bad = ModelSchema.model_validate({**BRAKING, "features": {**BRAKING["features"], "night": "numeric"}})
    with pytest.raises(Conflict) as err:
        service.registry.register(bad)
    assert "night" in str(err.value)
    assert service.registry.get("harsh-braking").schema.features["night"] == "boolean"
