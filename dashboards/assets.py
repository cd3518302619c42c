"""Where the dashboards' templates and static files live; they ship as package data.

- ``static/app/``: the pages' own stylesheet, script and favicon, served by Starlette's
  ``StaticFiles`` at ``/assets/dashboards/`` without a key (they hold no data, and the sign-in
  and error pages need them before anyone has signed in).
- ``static/vendor/swagger-ui/``: Swagger UI 5 (see its VERSION file), served behind the key at
  ``/assets/swagger/NAME`` like ``/docs`` itself.
- plotly.js comes from the installed ``plotly`` package (:func:`plotly_js_path`), behind the key
  like the pages that use it. Nothing is loaded from a CDN: loopwatch runs behind firewalls.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
APP_STATIC_DIR = STATIC_DIR / "app"
SWAGGER_DIR = STATIC_DIR / "vendor" / "swagger-ui"

APP_STATIC_URL = "/assets/dashboards"
SWAGGER_URL = "/assets/swagger"
PLOTLY_URL = "/assets/plotly.min.js"


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
