"""The streaming sources page: each source's state and counts, its dead letters (escaped), CSV."""

from __future__ import annotations

from tests.api.test_sources_api import FLEET, PLANT
from tests.conftest import Api


def test_sources_page_shows_states_and_dead_letters(api: Api) -> None:
    """The page lists every source with its state, throughput and lag columns, and the dead letters
    with their reason and an escaped excerpt; both tables download as CSV; the nav links it."""
    api.client.post("/v1/sources", json=[PLANT, FLEET], headers=api.admin).raise_for_status()
    service = api.client.app.state.service  # type: ignore[attr-defined]
    service.sources.dead_letter("plant-a", "plant/a/predictions", "body is not valid UTF-8 JSON", b"<script>x</script>")
    page = api.client.get("/sources", headers={**api.read, "Accept": "text/html"})
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert "plant-a" in html and "fleet" in html and "not running" in html
    assert "Rows/s (1 min)" in html and "Lag" in html
    assert "body is not valid UTF-8 JSON" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert 'href="/sources"' in html
    csv = api.client.get("/sources?format=csv&table=dead_letters", headers=api.read)
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("source,received_at,topic,reason")
    listed = api.client.get("/sources?format=csv&table=sources", headers=api.read).text.splitlines()
    assert listed[0].startswith("name,kind,at,topic,model,state") and len(listed) == 3
