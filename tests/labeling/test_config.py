"""The labeling config generated from a schema, and the task data it displays (no server)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from labeling.label_studio import TaskIn, labeling_config, project_title, task_data
from labeling.label_studio.config import CONTROL_NAME, OBJECT_NAME, TITLE_MAX, field_key
from labeling.label_studio.results import confidence, label_from_result, label_result
from monitor.schema import ModelSchema

BINARY = ModelSchema.model_validate(
    {
        "name": "harsh-braking",
        "task": "binary",
        "classes": ["none", "brake"],
        "positive_class": "brake",
        "features": {"speed_kmh": "numeric", "road_type": "categorical", "night": "boolean", "note": "text"},
        "segments": ["region"],
    }
)
AWKWARD = ModelSchema.model_validate(
    {
        "name": "awkward",
        "task": "multiclass",
        "classes": ['say "hi"', "a & b", "<tag>", "it's", "$dollar", "ünï çødé, comma"],
        "features": {"x": "numeric"},
    }
)
REGRESSION = ModelSchema.model_validate({"name": "eta", "task": "regression", "features": {"distance": "numeric"}})
TEXT_ONLY = ModelSchema.model_validate(
    {"name": "captions", "task": "binary", "classes": ["ok", "bad"], "features": {"caption": "text", "photo": "text"}}
)


def variables(config: str) -> set[str]:
    """The task-data keys the config's object tags (the ones showing data) refer to."""
    root = ET.fromstring(config)
    return {el.get("value", "")[1:] for el in root if el.tag in ("Table", "Text", "Image")}


@pytest.mark.parametrize("schema", [BINARY, AWKWARD, REGRESSION, TEXT_ONLY], ids=lambda s: s.name)
def test_config_is_well_formed_xml_with_one_label_control(schema: ModelSchema) -> None:
    """Every generated config parses as XML and has exactly one control named ``label`` on ``context``."""
    root = ET.fromstring(labeling_config(schema))
    assert root.tag == "View"
    controls = [el for el in root if el.get("name") == CONTROL_NAME]
    assert len(controls) == 1
    assert controls[0].get("toName") == OBJECT_NAME
    assert root.find(f"Table[@name='{OBJECT_NAME}']") is not None


def test_classes_survive_escaping_in_order() -> None:
    """Class names with quotes, ampersands, angle brackets and unicode come back exactly, in schema order."""
    root = ET.fromstring(labeling_config(AWKWARD))
    choices = root.find("Choices")
    assert choices is not None
    assert choices.get("choice") == "single-radio"
    assert [c.get("value") for c in choices.findall("Choice")] == AWKWARD.classes


def test_regression_gets_a_number_and_text_features_get_text_tags() -> None:
    """Regression labels are a ``<Number>``; each text feature is shown with its own ``<Text>``."""
    assert ET.fromstring(labeling_config(REGRESSION)).find("Number") is not None
    root = ET.fromstring(labeling_config(BINARY))
    assert [t.get("name") for t in root.findall("Text")] == [field_key("note")]


def test_image_features_render_as_images_and_must_be_text_features() -> None:
    """A text feature holding image URLs can be shown as ``<Image>``; naming anything else is refused."""
    root = ET.fromstring(labeling_config(TEXT_ONLY, image_features=["photo"]))
    assert [i.get("name") for i in root.findall("Image")] == [field_key("photo")]
    assert [t.get("name") for t in root.findall("Text")] == [field_key("caption")]
    with pytest.raises(ValueError, match="image_features"):
        labeling_config(BINARY, image_features=["speed_kmh"])


def test_config_is_deterministic() -> None:
    """The same schema always gives the same XML (so a stored config tells whether the schema changed)."""
    assert labeling_config(BINARY) == labeling_config(ModelSchema.model_validate(BINARY.model_dump()))


@pytest.mark.parametrize("schema", [BINARY, AWKWARD, REGRESSION, TEXT_ONLY], ids=lambda s: s.name)
def test_task_data_has_every_variable_the_config_uses(schema: ModelSchema) -> None:
    """Label Studio refuses tasks missing a ``$variable``: the data has them all, even for an empty sample."""
    data = task_data(schema, TaskIn("p-1", {}, None))
    assert variables(labeling_config(schema)) <= set(data)
    assert data["prediction_id"] == "p-1"


def test_task_data_is_readable() -> None:
    """Feature values are shown as short strings; missing ones say so."""
    task = TaskIn("p-1", {"speed_kmh": 72.123456789, "night": False}, "brake", 0.91, "3.1.0", "uncertainty", {})
    data = task_data(BINARY, task)
    assert data["features"] == {"speed_kmh": "72.1235", "road_type": "(missing)", "night": "false"}
    assert data["segments"] == {"region": "(missing)"}
    assert data["context"]["why routed"] == "uncertainty"
    assert data[field_key("note")] == ""


def test_project_titles_fit_label_studio_and_stay_distinct() -> None:
    """Titles are at most 50 characters; long model names keep a hash so they stay unique and stable."""
    long_a, long_b = "a" * 60, "a" * 59 + "b"
    assert project_title("harsh-braking") == "loopwatch · harsh-braking"
    assert len(project_title(long_a)) <= TITLE_MAX
    assert project_title(long_a) != project_title(long_b)
    assert project_title(long_a) == project_title(long_a)


def test_label_results_round_trip() -> None:
    """The pre-annotation result for a label reads back as that label; unknown classes are dropped."""
    for label in AWKWARD.classes:
        assert label_from_result(label_result(AWKWARD, label)) == label
    assert label_from_result(label_result(REGRESSION, 3.25)) == 3.25
    assert label_result(AWKWARD, "not-a-class") is None
    assert label_result(REGRESSION, float("nan")) is None
    assert label_from_result([]) is None
    with pytest.raises(ValueError):
        label_from_result({"choices": ["x"]})


def test_confidence_is_in_the_predicted_label() -> None:
    """Uncertainty ordering needs confidence in the shown label: binary scores are P(positive)."""
    assert confidence(BINARY, "brake", 0.9) == pytest.approx(0.9)
    assert confidence(BINARY, "none", 0.1) == pytest.approx(0.9)
    assert confidence(AWKWARD, "a & b", 0.4) == pytest.approx(0.4)
    assert confidence(BINARY, "brake", None) is None
