"""Static assets of the dashboard pages, kept in Python so they ship with the package.

plotly.js itself is served from the installed ``plotly`` package (no CDN: loopwatch runs
behind firewalls); see :func:`plotly_js_path`.
"""

from __future__ import annotations

from pathlib import Path


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="7" fill="#1e293b"/>'
    '<path d="M6 20 L12 12 L17 18 L21 9 L26 15" stroke="#f59e0b" stroke-width="3" fill="none" '
    'stroke-linecap="round" stroke-linejoin="round"/></svg>'
)

APP_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{display:flex;gap:1.2rem;align-items:center;padding:.6rem 1.5rem;background:#1e293b;color:#fff}
header.top a{color:#e2e8f0;text-decoration:none}
header.top a.brand{font-weight:700;color:#fbbf24;margin-right:.5rem}
header.top form.logout{margin-left:auto}
header.top button{background:none;border:1px solid #475569;color:#e2e8f0;border-radius:6px;padding:.25rem .7rem;cursor:pointer}
main{max-width:1280px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.5rem;margin:.6rem 0 .2rem}
h2{font-size:1.1rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.25rem}
a{color:var(--accent)}
.muted{color:var(--muted)} .small{font-size:.9rem;font-weight:400}
.crumbs{font-size:.9rem;color:var(--muted)} .crumbs a{color:var(--muted)}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);border-radius:8px}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);background:#f1f5f9}
a.model{font-weight:600}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600;background:#e2e8f0;color:#334155}
.badge.ok{background:#dcfce7;color:#166534} .badge.warning{background:#fef3c7;color:#92400e}
.badge.critical{background:#fee2e2;color:#991b1b} .badge.insufficient_data{background:#f1f5f9;color:#64748b}
.chart{background:#fff;border:1px solid var(--line);border-radius:8px;margin:.6rem 0;min-height:120px}
.empty{background:#fff;border:1px dashed #cbd5e1;border-radius:8px;padding:1.4rem;color:var(--muted);text-align:center;margin:.6rem 0}
.ranges{margin:.4rem 0;font-size:.9rem} .ranges a{margin-right:.4rem;padding:.1rem .45rem;border-radius:6px;text-decoration:none}
.ranges a.active,.chip.active{background:var(--accent);color:#fff}
.chip{display:inline-block;margin:.15rem .2rem;padding:.1rem .55rem;border:1px solid var(--line);border-radius:999px;background:#fff;text-decoration:none;font-size:.9rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;background:#fff;border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem}
dl.facts dt{color:var(--muted)} dl.facts dd{margin:0}
.actions{display:flex;flex-wrap:wrap;gap:.8rem;align-items:center;margin:.8rem 0}
.actions button,.report-form button{padding:.4rem 1rem;border-radius:6px;border:1px solid #1d4ed8;background:var(--accent);color:#fff;cursor:pointer;font:inherit}
.actions button[disabled]{background:#cbd5e1;border-color:#cbd5e1;cursor:default}
form.inline{display:inline-flex;flex-wrap:wrap;gap:.5rem;align-items:center}
input,select{font:inherit;padding:.25rem .4rem}
.tiles{display:flex;gap:1rem;flex-wrap:wrap;margin:.8rem 0}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.7rem 1rem;min-width:11rem}
.tile .k{color:var(--muted);font-size:.85rem} .tile .v{font-size:1.4rem;font-weight:600}
.grid3{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:.8rem}
iframe.report{width:100%;height:78vh;border:1px solid var(--line);border-radius:8px;background:#fff}
code{font-size:.85rem}
"""

APP_JS = r"""
(function () {
  "use strict";
  function local(v) {
    if (v === null || v === undefined) return "";
    var s = String(v);
    if (!/^\d{4}-\d\d-\d\d/.test(s)) return "";
    if (s.length === 10) s += " 00:00:00";
    var d = new Date(s.replace(" ", "T") + (/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? "" : "Z"));
    return isNaN(d.getTime()) ? "" : d.toLocaleString();
  }
  window.loopwatchLocalTime = local;
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    t.title = "local: " + local(t.getAttribute("datetime"));
  });
  var scripts = document.querySelectorAll('script[type="application/json"][data-figure]');
  scripts.forEach(function (s) {
    var el = document.getElementById(s.getAttribute("data-figure"));
    if (!el || !window.Plotly) return;
    var fig = JSON.parse(s.textContent);
    (fig.data || []).forEach(function (t) {
      if (t.meta !== "localtime" || !t.x) return;
      if (t.type === "heatmap") {
        var row = t.x.map(local);
        t.text = (t.z || []).map(function () { return row; });
      } else {
        t.text = t.x.map(local);
      }
    });
    var layout = fig.layout || {};
    layout.autosize = true;
    Plotly.newPlot(el, fig.data, layout, {responsive: true, displaylogo: false});
    el.on("plotly_click", function (ev) {
      var p = ev && ev.points && ev.points[0];
      var target = p && (Array.isArray(p.customdata) ? p.customdata[0] : p.customdata);
      if (typeof target === "string" && target.charAt(0) === "/" && target.charAt(1) !== "/") {
        window.location.href = target;
      }
    });
  });
  var result = document.getElementById("action-result");
  function say(text) { if (result) result.textContent = text; }
  function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error((j.error && j.error.message) || ("HTTP " + r.status));
        return j;
      });
    });
  }
  var ack = document.getElementById("ack");
  if (ack) {
    ack.addEventListener("click", function () {
      ack.disabled = true;
      say("acknowledging…");
      post(ack.getAttribute("data-post")).then(function (alert) {
        var st = document.getElementById("ack-state");
        if (st) st.textContent = "acknowledged by " + alert.acked_by;
        say("Acknowledged.");
        document.body.setAttribute("data-acked", "1");
      }).catch(function (err) { ack.disabled = false; say("Could not acknowledge: " + err.message); });
    });
  }
  var silence = document.getElementById("silence-form");
  if (silence) {
    silence.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = new FormData(silence);
      var body = {matchers: JSON.parse(f.get("matchers")), duration: f.get("duration")};
      if (f.get("comment")) body.comment = f.get("comment");
      say("silencing…");
      post("/v1/silences", body).then(function (s) {
        var st = document.getElementById("silence-state");
        if (st) st.textContent = "silenced until " + s.ends_at + " (" + s.id + ")";
        say("Silenced.");
      }).catch(function (err) { say("Could not silence: " + err.message); });
    });
  }
  // Label conflicts: a reviewer settles one with a `review` label (it replaces annotator labels;
  // a ground_truth label stays, and the review is recorded against it).
  Array.prototype.forEach.call(document.querySelectorAll("button.review"), function (btn) {
    btn.addEventListener("click", function () {
      var cell = btn.parentNode;
      var label = JSON.parse(btn.getAttribute("data-label"));
      var path = "/v1/models/" + encodeURIComponent(btn.getAttribute("data-model")) + "/labels?authority=review";
      Array.prototype.forEach.call(cell.querySelectorAll("button"), function (b) { b.disabled = true; });
      say("recording review…");
      post(path, [{prediction_id: btn.getAttribute("data-id"), label: label}]).then(function (r) {
        cell.setAttribute("data-reviewed", String(label));
        cell.textContent = r.conflicts ? "review kept as a conflict (a ground_truth label stays)" : "reviewed: " + label;
        say("Review recorded.");
      }).catch(function (err) {
        Array.prototype.forEach.call(cell.querySelectorAll("button"), function (b) { b.disabled = false; });
        say("Could not record the review: " + err.message);
      });
    });
  });
})();
"""
