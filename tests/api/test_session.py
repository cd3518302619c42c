"""Browsers sign in with an API key and get a session cookie; the API docs need it too."""

from __future__ import annotations

from tests.conftest import Api


def _key(api: Api) -> str:
    return api.read["Authorization"].removeprefix("Bearer ")


def test_docs_need_a_key_and_a_browser_is_sent_to_sign_in(api: Api) -> None:
    """/docs and /openapi.json need a key; a browser without a session is redirected to /login."""
    assert api.client.get("/openapi.json").status_code == 401
    page = api.client.get("/docs", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fdocs"
    assert api.client.get("/openapi.json", headers=api.read).json()["info"]["title"] == "loopwatch"


def test_sign_in_sets_a_session_that_opens_docs_and_assets(api: Api) -> None:
    """A valid key at /login sets an HttpOnly SameSite=Strict cookie; the docs and their local
    (non-CDN) assets then load."""
    response = api.client.post("/login", data={"key": _key(api), "next": "/docs"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/docs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "/assets/swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert api.client.get("/assets/swagger/swagger-ui-bundle.js").status_code == 200
    assert api.client.get("/assets/swagger/../../etc/passwd").status_code == 404


def test_wrong_key_and_open_redirects_are_refused(api: Api) -> None:
    """A bad key re-shows the form with 401; `next` may only be a local path (otherwise, as
    without one, sign-in lands on the dashboards)."""
    assert api.client.post("/login", data={"key": "lw_nope"}).status_code == 401
    response = api.client.post(
        "/login", data={"key": _key(api), "next": "https://evil.example/"}, follow_redirects=False
    )
    assert response.headers["location"] == "/models"
    plain = api.client.post("/login", data={"key": _key(api)}, follow_redirects=False)
    assert plain.headers["location"] == "/models"


def test_cookie_writes_need_same_origin(api: Api) -> None:
    """With only a session cookie, a write from another origin is refused (CSRF); same origin works."""
    admin_key = api.admin["Authorization"].removeprefix("Bearer ")
    api.client.post("/login", data={"key": admin_key}, follow_redirects=False)
    body = {"scope": "read", "name": "from-browser"}
    assert api.client.post("/v1/keys", json=body, headers={"Origin": "https://evil.example"}).status_code == 403
    assert api.client.post("/v1/keys", json=body, headers={"Origin": "http://testserver"}).status_code == 201


def test_revoking_the_key_ends_its_sessions(api: Api) -> None:
    """A session dies with the key it was opened with."""
    created = api.client.post("/v1/keys", json={"scope": "read"}, headers=api.admin).json()
    api.client.post("/login", data={"key": created["key"]}, follow_redirects=False)
    assert api.client.get("/v1/models").status_code == 200
    api.client.delete(f"/v1/keys/{created['id']}", headers=api.admin)
    assert api.client.get("/v1/models").status_code == 401


def test_cross_origin_login_is_refused(api: Api) -> None:
    """A /login POST whose Origin (or Referer) names another site — or is ``null`` — is refused
    with 403 and sets no cookie; from this origin it signs in as before."""
    form = {"key": _key(api), "next": "/docs"}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Referer": "https://evil.example/page"},
    ):
        refused = api.client.post("/login", data=form, headers=headers, follow_redirects=False)
        assert refused.status_code == 403, headers
        assert "set-cookie" not in refused.headers
    same = api.client.post("/login", data=form, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert same.status_code == 303 and "set-cookie" in same.headers
    referer = api.client.post(
        "/login", data=form, headers={"Referer": "http://testserver/login?next=/docs"}, follow_redirects=False
    )
    assert referer.status_code == 303
