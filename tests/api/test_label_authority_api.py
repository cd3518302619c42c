"""Label authority over HTTP: the labels endpoint takes an authority (default ground_truth), a
lower one that disagrees is answered as a conflict, and conflicts are listed and flagged on reads."""

from __future__ import annotations

from tests.conftest import Api

BASE = "/v1/models/harsh-braking/labels"


def test_conflicts_are_answered_listed_and_flagged(api: Api) -> None:
    """ground_truth by default; a review label against it is a conflict: counted in the answer,
    listed at /labels/conflicts with both values, `conflict: true` on the label read, and in history."""
    post = api.client.post
    t0, t1 = "2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"
    r = post(BASE, json=[{"prediction_id": "p-1", "label": "brake", "timestamp": t0}], headers=api.ingest)
    assert r.json() == {"received": 1, "applied": 1, "unchanged": 0, "conflicts": 0, "confirmed": 0}
    r = post(
        BASE,
        params={"authority": "review"},
        json=[{"prediction_id": "p-1", "label": "none", "timestamp": t1, "annotator": "rev@x"}],
        headers=api.ingest,
    )
    assert r.json() == {"received": 1, "applied": 0, "unchanged": 0, "conflicts": 1, "confirmed": 0}

    label = api.client.get(f"{BASE}/p-1", headers=api.read).json()
    assert (label["label"], label["authority"], label["conflict"]) == ("brake", "ground_truth", True)
    conflicts = api.client.get(f"{BASE}/conflicts", headers=api.read).json()["conflicts"]
    assert [(c["prediction_id"], c["label"], c["authority"]) for c in conflicts] == [("p-1", "brake", "ground_truth")]
    assert [(c["label"], c["authority"], c["annotator"]) for c in conflicts[0]["conflicting"]] == [
        ("none", "review", "rev@x")
    ]
    history = api.client.get(f"{BASE}/p-1/history", headers=api.read).json()
    assert [h["outcome"] for h in history] == ["applied", "conflict"]


def test_a_review_replaces_an_annotation_per_row_authority(api: Api) -> None:
    """A row's own `authority` field overrides the default; review replaces an annotator's label."""
    post = api.client.post
    rows = [{"prediction_id": "p-2", "label": "none", "authority": "annotator"}]
    assert post(BASE, json=rows, headers=api.ingest).json()["applied"] == 1
    rows = [{"prediction_id": "p-2", "label": "brake", "timestamp": "2020-01-01T00:00:00Z", "authority": "review"}]
    assert post(BASE, json=rows, headers=api.ingest).json()["applied"] == 1
    label = api.client.get(f"{BASE}/p-2", headers=api.read).json()
    assert (label["label"], label["authority"], label["conflict"]) == ("brake", "review", False)
    assert api.client.get(f"{BASE}/conflicts", headers=api.read).json() == {"conflicts": []}


def test_bad_authority_and_missing_label_are_4xx(api: Api) -> None:
    """An unknown authority is a 422 naming the field; a label never stored is a 404."""
    r = api.client.post(BASE, json=[{"prediction_id": "p", "label": "none", "authority": "boss"}], headers=api.ingest)
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["field"] == "authority"
    assert api.client.post(BASE, params={"authority": "boss"}, json=[], headers=api.ingest).status_code == 422
    assert api.client.get(f"{BASE}/nope", headers=api.read).status_code == 404


def test_the_labeling_page_lists_conflicts(api: Api) -> None:
    """The labeling page shows each conflict: the kept label with its authority and the
    disagreeing labels with theirs (escaped)."""
    post = api.client.post
    post(BASE, json=[{"prediction_id": "p-9", "label": "brake"}], headers=api.ingest).raise_for_status()
    hostile = "<b>ann</b>"
    rows = [{"prediction_id": "p-9", "label": "none", "authority": "annotator", "annotator": hostile}]
    assert post(BASE, json=rows, headers=api.ingest).json()["conflicts"] == 1
    page = api.client.get("/labeling", params={"model": "harsh-braking"}, headers=api.read)
    assert page.status_code == 200
    section = page.text.split('id="label-conflicts"')[1].split("</section>")[0]
    assert "p-9" in section and "ground_truth" in section and "none (annotator, &lt;b&gt;ann&lt;/b&gt;)" in section
    assert hostile not in page.text


def test_a_review_that_agrees_with_ground_truth_settles_the_conflict(api: Api) -> None:
    """An annotator disagreed with ground truth (conflict); a review agreeing with the kept label
    clears the flag (`confirmed`, outcome 'confirmed' in history); a review that disagrees with
    ground truth is recorded as a conflict and changes nothing."""
    post = api.client.post
    post(BASE, json=[{"prediction_id": "p-5", "label": "brake"}], headers=api.ingest).raise_for_status()
    rows = [{"prediction_id": "p-5", "label": "none", "authority": "annotator"}]
    assert post(BASE, json=rows, headers=api.ingest).json()["conflicts"] == 1
    disagree = post(BASE, params={"authority": "review"}, json=rows, headers=api.ingest).json()
    assert (disagree["conflicts"], disagree["confirmed"]) == (1, 0)
    assert api.client.get(f"{BASE}/p-5", headers=api.read).json()["conflict"] is True
    agree = [{"prediction_id": "p-5", "label": "brake"}]
    result = post(BASE, params={"authority": "review"}, json=agree, headers=api.ingest).json()
    assert (result["applied"], result["conflicts"], result["confirmed"]) == (0, 0, 1)
    label = api.client.get(f"{BASE}/p-5", headers=api.read).json()
    assert (label["label"], label["authority"], label["conflict"]) == ("brake", "ground_truth", False)
    history = api.client.get(f"{BASE}/p-5/history", headers=api.read).json()
    assert [h["outcome"] for h in history][-1] == "confirmed"
    assert api.client.get(f"{BASE}/conflicts", headers=api.read).json() == {"conflicts": []}


def test_the_labeling_page_offers_keep_and_use_review_buttons(api: Api) -> None:
    """Each conflict row has a Keep button for the stored label and a Use button per distinct
    disagreeing label, carrying the model, id and JSON label the page posts as a review."""
    post = api.client.post
    post(BASE, json=[{"prediction_id": "p-8", "label": "none", "authority": "annotator"}], headers=api.ingest)
    rows = [{"prediction_id": "p-8", "label": "brake", "authority": "annotator", "annotator": "b@x"}]
    post(BASE, json=rows, headers=api.ingest)  # same authority, newer → applied, no conflict
    post(BASE, json=[{"prediction_id": "p-8", "label": "none", "authority": "review"}], headers=api.ingest)
    post(BASE, json=[{"prediction_id": "p-8", "label": "brake", "authority": "annotator"}], headers=api.ingest)
    page = api.client.get("/labeling", params={"model": "harsh-braking"}, headers=api.read).text
    section = page.split('id="label-conflicts"')[1].split("</section>")[0]
    # the JSON label sits escaped in the attribute (&quot; or &#34;, the template's choice)
    section = section.replace("&#34;", "&quot;")
    assert 'class="review" data-model="harsh-braking" data-id="p-8" data-label="&quot;none&quot;">Keep none' in section
    assert 'data-label="&quot;brake&quot;">Use brake' in section
