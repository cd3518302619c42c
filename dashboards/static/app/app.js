/* loopwatch dashboards: figures, local times, on-call actions, report sizing. */
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
  // The Evidently report is served from this origin: grow its frame to the report's own
  // height (no inner scroll bar), and again whenever the report lays itself out anew.
  var report = document.getElementById("report");
  if (report) {
    var fit = function () {
      var doc;
      try { doc = report.contentDocument; } catch (err) { return; }
      if (!doc || !doc.body || doc.location.href === "about:blank") return;
      var h = Math.min(Math.max(doc.documentElement.scrollHeight, doc.body.scrollHeight), 60000);
      var now = parseInt(report.getAttribute("data-fitted") || "0", 10);
      if (h > 0 && Math.abs(h - now) > 4) {
        report.style.height = (h + 2) + "px";
        report.setAttribute("data-fitted", String(h));
      }
    };
    var watch = function () {
      fit();
      try {
        if (window.ResizeObserver) new ResizeObserver(fit).observe(report.contentDocument.body);
      } catch (err) { /* not same-origin: the frame keeps its fixed height */ }
    };
    report.addEventListener("load", watch);
    try {
      if (report.contentDocument && report.contentDocument.readyState === "complete") watch();
    } catch (err) { /* ignore */ }
  }
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
/* The on-call console: acknowledge selected alerts, create and expire silences. Same-origin JSON
   calls to the API with the session cookie, like the alert page's buttons; the page reloads to
   show the new state and the outcome is kept across the reload (sessionStorage). */
(function () {
  "use strict";
  var KEPT = "loopwatch-console-result";
  var result = document.getElementById("action-result");
  function say(text) { if (result) result.textContent = text; }
  try {
    var kept = window.sessionStorage.getItem(KEPT);
    if (kept) {
      window.sessionStorage.removeItem(KEPT);
      say(kept);
    }
  } catch (err) { /* storage disabled: the outcome is not shown after the reload */ }
  function reloadSaying(text) {
    try { window.sessionStorage.setItem(KEPT, text); } catch (err) { /* ignore */ }
    window.location.reload();
  }
  function call(method, path, body) {
    return fetch(path, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var e = new Error((j.error && j.error.message) || ("HTTP " + r.status));
          e.errors = (j.error && j.error.errors) || [];
          throw e;
        }
        return j;
      });
    });
  }

  // Alerts: checkboxes and "Acknowledge selected" (POST /v1/alerts/ack).
  var ackSelected = document.getElementById("ack-selected");
  if (ackSelected) {
    var picks = Array.prototype.slice.call(document.querySelectorAll("input.pick"));
    var open = picks.filter(function (p) { return !p.disabled; });
    var chosen = function () {
      return open.filter(function (p) { return p.checked; }).map(function (p) { return p.value; });
    };
    var refresh = function () {
      var n = chosen().length;
      ackSelected.disabled = n === 0;
      ackSelected.textContent = n ? "Acknowledge selected (" + n + ")" : "Acknowledge selected";
    };
    picks.forEach(function (p) { p.checked = false; p.addEventListener("change", refresh); });
    var all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("click", function () {
        var every = open.length > 0 && open.every(function (p) { return p.checked; });
        open.forEach(function (p) { p.checked = !every; });
        refresh();
      });
    }
    ackSelected.addEventListener("click", function () {
      var ids = chosen();
      if (!ids.length) return;
      ackSelected.disabled = true;
      say("acknowledging " + ids.length + "…");
      call("POST", "/v1/alerts/ack", {alert_ids: ids}).then(function (r) {
        var parts = [r.acknowledged.length + " acknowledged"];
        if (r.already.length) parts.push(r.already.length + " already acknowledged (" + r.already.join(", ") + ")");
        var refused = Object.keys(r.refused || {});
        if (refused.length) {
          parts.push(refused.length + " refused (" + refused.map(function (k) { return k + ": " + r.refused[k]; }).join("; ") + ")");
        }
        reloadSaying(parts.join(", ") + ".");
      }).catch(function (err) { refresh(); say("Could not acknowledge: " + err.message); });
    });
    refresh();
  }

  // Silences: the create form (POST /v1/silences) and Expire buttons (DELETE /v1/silences/ID).
  var create = document.getElementById("silence-create");
  if (create) {
    var errorList = document.getElementById("silence-errors");
    var showErrors = function (message, errors) {
      errorList.textContent = "";
      var head = document.createElement("li");
      head.className = "head";
      head.textContent = message;
      errorList.appendChild(head);
      (errors || []).forEach(function (e) {
        var li = document.createElement("li");
        var code = document.createElement("code");
        code.textContent = e.field;
        li.appendChild(code);
        li.appendChild(document.createTextNode(": " + e.reason));
        errorList.appendChild(li);
      });
      errorList.hidden = false;
    };
    create.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = new FormData(create);
      var text = function (name) { return String(f.get(name) || "").trim(); };
      var matchers = {};
      var problems = [];
      ["model", "monitor", "severity"].forEach(function (k) { if (text(k)) matchers[k] = text(k); });
      if (text("segment_name")) {
        if (text("segment_value")) matchers["segment." + text("segment_name")] = text("segment_value");
        else problems.push({field: "segment", reason: "give the value of " + text("segment_name")});
      }
      text("matchers").split(/\r?\n/).forEach(function (line, i) {
        var entry = line.trim();
        if (!entry) return;
        var at = entry.indexOf("=");
        if (at <= 0) {
          problems.push({field: "matchers line " + (i + 1), reason: "“" + entry + "” must look like label=value"});
          return;
        }
        var key = entry.slice(0, at).trim();
        var value = entry.slice(at + 1).trim();
        if (Object.prototype.hasOwnProperty.call(matchers, key) && matchers[key] !== value) {
          problems.push({field: "matchers line " + (i + 1), reason: key + " is already set to “" + matchers[key] + "”"});
        }
        matchers[key] = value;
      });
      var body = {matchers: matchers};
      if (text("until")) {
        var end = new Date(text("until"));
        if (isNaN(end.getTime())) problems.push({field: "until", reason: "not a time"});
        else body.ends_at = end.toISOString();
      } else if (text("duration")) {
        body.duration = text("duration");
      }
      if (text("comment")) body.comment = text("comment");
      if (problems.length) { showErrors("The silence was not created:", problems); return; }
      errorList.hidden = true;
      say("creating the silence…");
      call("POST", "/v1/silences", body).then(function (s) {
        reloadSaying("Silence " + s.id + " created (" + Object.keys(s.matchers).length + " matchers), until " + s.ends_at + ".");
      }).catch(function (err) {
        say("");
        showErrors("The silence was not created: " + err.message, err.errors);
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.expire"), function (btn) {
    btn.addEventListener("click", function () {
      var id = btn.getAttribute("data-id");
      btn.disabled = true;
      say("expiring " + id + "…");
      call("DELETE", btn.getAttribute("data-delete")).then(function () {
        reloadSaying("Silence " + id + " expired.");
      }).catch(function (err) { btn.disabled = false; say("Could not expire " + id + ": " + err.message); });
    });
  });
})();
