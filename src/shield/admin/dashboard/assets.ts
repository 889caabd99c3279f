/**
 * The dashboard: one page, one stylesheet, one script, all served by the admin listener itself
 * (no CDN, no web font), so it works through an SSH tunnel and under a CSP of 'self' only. The
 * token is asked once and kept in sessionStorage; every call sends it as a bearer header, the
 * live view included (fetch streaming, because EventSource cannot send headers).
 * One file past the usual length, on purpose: it is the page itself, three texts served as
 * they are.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Shield</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>Shield</h1>
  <span id="summary" aria-live="polite"></span>
  <button id="logout" type="button" hidden>Forget token</button>
</header>
<main>
  <section id="login" class="card">
    <h2>Operator token</h2>
    <p>Paste your operator token (the one <code>shield operators add</code> printed, or the content of admin.token_file). It stays in this tab, for this session only.</p>
    <form id="login-form">
      <input id="token" type="password" autocomplete="off" spellcheck="false" aria-label="operator token" required>
      <button id="connect" type="submit">Connect</button>
    </form>
    <p id="login-error" class="error" role="alert"></p>
  </section>
  <div id="app" hidden>
    <div id="error-box" class="error-box" role="alert" hidden>
      <span id="error" class="error"></span>
      <button id="error-dismiss" type="button">Dismiss</button>
    </div>
    <section class="card">
      <h2>Global mode <span id="global-mode" class="mode"></span></h2>
      <div class="buttons" id="global-buttons"></div>
      <p id="reload" class="muted"></p>
      <p id="store" class="muted" role="status"></p>
    </section>
    <section class="card">
      <h2>Agents</h2>
      <div class="scroll"><table id="agents">
        <thead><tr><th>Agent</th><th>Fleet</th><th>Tier</th><th>Mode</th><th>Last seen</th><th>Req</th><th>Up</th><th>Down</th><th>Tunnels</th><th>Budget</th><th>WireGuard</th><th>Last hour</th><th>Switch</th></tr></thead>
        <tbody></tbody>
      </table></div>
    </section>
    <section class="card">
      <h2>Refused most, last hour</h2>
      <ol id="refused" class="plain"></ol>
      <svg id="chart-template" class="chart" hidden></svg>
      <p id="refused-none" class="muted">Nothing refused in the last hour.</p>
    </section>
    <section class="card" id="fleets-card">
      <h2>Fleets</h2>
      <ul id="fleets" class="plain"></ul>
    </section>
    <section class="card">
      <h2>Live decisions</h2>
      <ol id="live" class="plain live"></ol>
    </section>
    <section class="card">
      <h2>Rules</h2>
      <form id="rule-form" class="rule-form">
        <select id="rule-level" aria-label="level">
          <option value="global">global</option><option value="tier">tier</option>
          <option value="fleet">fleet</option><option value="agent">agent</option>
        </select>
        <input id="rule-name" placeholder="name (tier, fleet, agent)" aria-label="name">
        <select id="rule-verdict" aria-label="verdict"><option value="allow">allow</option><option value="deny">deny</option></select>
        <input id="rule-text" placeholder="*.example.com:443" aria-label="rule" required>
        <button id="rule-add" type="submit">Add</button>
      </form>
      <div id="rules"></div>
    </section>
    <section class="card">
      <h2>Check</h2>
      <p class="muted">What the shield would decide now, without sending anything.</p>
      <form id="check-form" class="rule-form">
        <select id="check-agent" aria-label="agent" required></select>
        <input id="check-text" placeholder="api.example.com  example.org:8443" aria-label="destinations" required>
        <label class="muted"><input id="check-resolve" type="checkbox" checked> look names up</label>
        <button id="check-run" type="submit">Check</button>
      </form>
      <ol id="check-results" class="plain"></ol>
    </section>
    <section class="card">
      <h2>Policy tests</h2>
      <p class="muted">A tests file, as <code>shield check --tests</code> reads it, run against the policy in force.</p>
      <form id="tests-form" class="rule-form">
        <textarea id="tests-text" rows="6" spellcheck="false" aria-label="policy tests (YAML)" required
          placeholder="- agent: scout&#10;  allowed: [api.openai.com]&#10;  denied: [pastebin.com]"></textarea>
        <label class="muted"><input id="tests-resolve" type="checkbox" checked> look names up</label>
        <button id="tests-run" type="submit">Run</button>
      </form>
      <p id="tests-summary"></p>
      <ol id="tests-results" class="plain"></ol>
    </section>
  </div>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1b1f24; --card: #fff; --line: #d8dde3;
  --muted: #667; --allow: #1a7f37; --deny: #cf222e; --audit: #9a6700; --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --card: #161b22; --line: #30363d;
  --muted: #8b949e; --allow: #3fb950; --deny: #f85149; --audit: #d29922; --accent: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.2rem; margin: 0; }
#summary { color: var(--muted); flex: 1; }
main { padding: 1rem; display: grid; gap: 1rem; max-width: 1200px; margin: 0 auto; }
#app { display: grid; gap: 1rem; grid-template-columns: 1fr; }
#app[hidden] { display: none; }
@media (min-width: 900px) { #app { grid-template-columns: 1fr 1fr; } #app > .card:nth-of-type(2) { grid-column: 1 / -1; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; min-width: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
button, input, select { font: inherit; padding: .4rem .6rem; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); min-height: 2.2rem; }
button { cursor: pointer; }
button:hover { border-color: var(--accent); }
button.on { background: var(--accent); color: #fff; border-color: var(--accent); }
.buttons { display: flex; flex-wrap: wrap; gap: .35rem; }
.mode { font-weight: 600; }
.mode-lockdown { color: var(--deny); } .mode-audit { color: var(--audit); } .mode-enforce { color: var(--allow); } td.spent { color: var(--deny); }
.plain { list-style: none; margin: 0; padding: 0; }
.plain li { padding: .3rem 0; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: .35rem .75rem; align-items: center; }
.live { max-height: 24rem; overflow-y: auto; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.d-allowed { color: var(--allow); } .d-denied { color: var(--deny); } .d-audited { color: var(--audit); }
.error { color: var(--deny); min-height: 1em; margin: 0; }
.error-box { grid-column: 1 / -1; display: flex; gap: .75rem; align-items: center; justify-content: space-between; border: 1px solid var(--deny); border-radius: 8px; padding: .5rem 1rem; background: var(--card); }
.error-box[hidden] { display: none; }
[aria-invalid=true] { border-color: var(--deny); }
svg.chart { display: block; }
svg.chart rect { fill: var(--accent); }
svg.chart rect.denied { fill: var(--deny); }
.muted { color: var(--muted); font-size: .85rem; }
.rule-form { display: flex; flex-wrap: wrap; gap: .35rem; margin-bottom: .5rem; }
.rule-form input { flex: 1 1 10rem; min-width: 0; }
.rule-form label { display: flex; align-items: center; gap: .3rem; }
.rule-form input[type=checkbox] { flex: none; min-height: 0; }
.rule-form textarea { flex: 1 1 100%; min-width: 0; font: .85rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; padding: .4rem .6rem; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
#login-form { display: flex; gap: .5rem; flex-wrap: wrap; }
#login-form input { flex: 1 1 16rem; min-width: 0; }
#login[hidden] { display: none; }
@media (max-width: 700px) {
  #agents thead { display: none; }
  #agents tr { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: .25rem .5rem; padding: .5rem 0; border-bottom: 1px solid var(--line); }
  #agents td { border: 0; padding: 0; white-space: normal; overflow-wrap: anywhere; }
  #agents td::before { content: attr(data-label); display: block; color: var(--muted); font-size: .75rem; }
  #agents td:first-child { font-weight: 600; }
  #agents td:last-child { grid-column: 1 / -1; }
}
`;

export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  var KEY = "clawguard.shield.token";
  var MODES = ["enforce", "audit", "lockdown"];
  var $ = function (id) { return document.getElementById(id); };
  var token = sessionStorage.getItem(KEY);
  var streamAbort = null;
  var timer = null;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(1) + " GiB";
  }
  function ago(ms) {
    if (ms === null) return "never";
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }
  // An error stays until the operator dismisses it: a refresh two seconds later must not hide it.
  function showError(msg) {
    if (!msg) return;
    $("error").textContent = msg;
    $("error-box").hidden = false;
  }
  function dismissError() {
    $("error").textContent = "";
    $("error-box").hidden = true;
    Array.prototype.forEach.call(document.querySelectorAll("[aria-invalid]"), function (x) { x.removeAttribute("aria-invalid"); });
  }
  // What the operator was doing, then the shield's own words; the field it refused is marked.
  var FIELD_INPUTS = { rule: "rule-text", name: "rule-name", destinations: "check-text", tests: "tests-text" };
  function failed(doing) {
    return function (e) {
      if (e.message === "unauthorized") return;
      var input = e.field && FIELD_INPUTS[e.field] ? $(FIELD_INPUTS[e.field]) : null;
      if (input) input.setAttribute("aria-invalid", "true");
      showError(doing + " failed: " + e.message);
    };
  }

  function api(method, path, body) {
    var opts = { method: method, headers: { authorization: "Bearer " + token } };
    if (body !== undefined) { opts.headers["content-type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(path, opts).catch(function (e) {
      throw new Error("the shield did not answer (" + e.message + ")");
    }).then(function (r) {
      if (r.status === 401) { logout("The token was refused."); throw new Error("unauthorized"); }
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var err = new Error(j.error || ("the shield answered HTTP " + r.status));
          err.field = j.field || null;
          throw err;
        }
        return j;
      });
    });
  }

  function modeButtons(scope, id, current) {
    var box = el("span", { class: "buttons" });
    MODES.forEach(function (m) {
      var b = el("button", { type: "button", "data-scope": scope, "data-mode": m, class: m === current ? "on" : "" }, m);
      if (id !== null) b.setAttribute("data-id", id);
      box.appendChild(b);
    });
    return box;
  }

  // Sharing a store: which node this is, and whether PostgreSQL answers (if not, the node
  // enforces the last policy it had, and its records wait in its own log).
  function renderStore(st) {
    var p = $("store");
    if (!st || st.kind !== "postgres") { p.textContent = ""; return; }
    var backlog = st.log ? st.log.backlog : 0;
    p.className = st.reachable ? "muted" : "error";
    p.textContent = "node " + st.node + " · " + (st.reachable
      ? "store: PostgreSQL, policy revision " + st.revision + (backlog ? " · " + backlog + " record(s) on their way" : "")
      : "STORE UNREACHABLE" + (st.unreachableSince ? " since " + new Date(st.unreachableSince).toLocaleTimeString() : "") +
        ": enforcing the last policy this node had (revision " + st.revision + "); " + backlog + " record(s) wait in its own log");
  }

  function renderStatus(s) {
    var d = s.decisions;
    $("summary").textContent = "v" + s.version + " · up " + s.uptimeSeconds + " s · " + d.allowed + " allowed · " +
      d.denied + " denied · " + d.audited + " audited · " + s.openTunnels + " tunnels";
    var g = $("global-mode");
    g.textContent = s.modes.global;
    g.className = "mode mode-" + s.modes.global;
    var gb = $("global-buttons");
    gb.replaceChildren(modeButtons("global", null, s.modes.overrides.global));
    var r = s.lastReload;
    $("reload").textContent = r ? ("last reload (" + r.trigger + "): " + (r.ok ? "applied" : "FAILED: " + r.error)) : "";
    renderStore(s.store);
    var fleets = $("fleets");
    fleets.replaceChildren();
    Object.keys(s.modes.fleets).forEach(function (f) {
      var li = el("li");
      li.appendChild(el("strong", null, f));
      li.appendChild(el("span", { class: "mode mode-" + (s.modes.fleets[f] || "enforce") }, s.modes.fleets[f] || "inherits"));
      li.appendChild(modeButtons("fleet", f, s.modes.overrides.fleets[f] || null));
      fleets.appendChild(li);
    });
    $("fleets-card").hidden = Object.keys(s.modes.fleets).length === 0;
  }

  function renderAgents(list) {
    var body = $("agents").tBodies[0];
    body.replaceChildren();
    list.forEach(function (a) {
      var tr = el("tr", { "data-agent": a.id });
      var cell = function (label, v, attrs) {
        var td = el("td", attrs || {}, v);
        td.setAttribute("data-label", label);
        tr.appendChild(td);
      };
      cell("Agent", a.id);
      cell("Fleet", a.fleet || "-");
      cell("Tier", a.tier || "-");
      cell("Mode", a.mode, { class: "mode mode-" + a.mode, "data-field": "mode" });
      cell("Last seen", ago(a.lastSeen));
      cell("Requests", a.requests);
      cell("Up", bytes(a.bytesUp));
      cell("Down", bytes(a.bytesDown));
      cell("Tunnels", a.openTunnels);
      var u = a.budgetUse;
      cell(
        "Budget",
        u ? u.kind + " " + (u.fraction >= 1 ? "spent" : Math.floor(u.fraction * 100) + "%") + " " + u.scope : "-",
        { "data-field": "budget", class: u && u.fraction >= 1 ? "spent" : "" }
      );
      var w = a.wireguard;
      cell(
        "WireGuard",
        !w ? "-" : !w.onInterface ? "not on the interface" :
          "handshake " + ago(w.latestHandshake) + (w.endpoint ? " from " + w.endpoint : "") +
          ", " + bytes(w.rxBytes) + " in, " + bytes(w.txBytes) + " out",
        { "data-field": "wireguard" }
      );
      var chart = el("td", { "data-label": "Last hour", "data-field": "chart" });
      chart.appendChild(sparkline(traffic[a.id]));
      tr.appendChild(chart);
      var td = el("td");
      td.appendChild(modeButtons("agent", a.id, a.modeOverride));
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }

  // Charts are copies of an <svg> of the page: the parser gave it the SVG namespace.
  function svgNode(tag) { return document.createElementNS($("chart-template").namespaceURI, tag); }
  var traffic = {};
  // Requests per minute over the last hour, one bar a minute, scaled to the busiest minute.
  function sparkline(series) {
    var w = 120, h = 24;
    var svg = $("chart-template").cloneNode(false);
    svg.removeAttribute("id");
    svg.removeAttribute("hidden");
    svg.setAttribute("width", String(w));
    svg.setAttribute("height", String(h));
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("data-chart", "requests");
    var req = series ? series.requests : [];
    var total = req.reduce(function (a, b) { return a + b; }, 0);
    var up = series ? series.bytesUp.reduce(function (a, b) { return a + b; }, 0) : 0;
    var down = series ? series.bytesDown.reduce(function (a, b) { return a + b; }, 0) : 0;
    svg.setAttribute("role", "img");
    svg.setAttribute("data-requests", String(total));
    var label = total + " request(s), " + bytes(up) + " up, " + bytes(down) + " down in the last hour";
    svg.setAttribute("aria-label", label);
    var title = svgNode("title");
    title.textContent = label;
    svg.appendChild(title);
    var max = Math.max.apply(null, [1].concat(req));
    var bw = w / Math.max(req.length, 1);
    req.forEach(function (n, i) {
      if (n === 0) return;
      var bh = Math.max(1, Math.round((n / max) * h));
      var r = svgNode("rect");
      r.setAttribute("x", String(i * bw));
      r.setAttribute("y", String(h - bh));
      r.setAttribute("width", String(Math.max(bw - 0.5, 0.5)));
      r.setAttribute("height", String(bh));
      svg.appendChild(r);
    });
    return svg;
  }

  function renderTraffic(t) {
    traffic = {};
    t.agents.forEach(function (a) { traffic[a.id] = a; });
    var list = $("refused");
    list.replaceChildren();
    t.refused.forEach(function (d) {
      var li = el("li", { class: "d-denied", "data-destination": d.destination, "data-count": String(d.count) });
      li.appendChild(el("strong", null, d.count + "×"));
      li.appendChild(el("code", null, d.destination));
      li.appendChild(el("span", { class: "muted" }, d.agents.join(", ")));
      list.appendChild(li);
    });
    $("refused-none").hidden = t.refused.length > 0;
  }

  function renderCheckAgents(list) {
    var sel = $("check-agent");
    var ids = ["*"].concat(list.map(function (a) { return a.id; }));
    var have = Array.prototype.map.call(sel.options, function (o) { return o.value; });
    if (ids.join("\n") === have.join("\n")) return;
    var keep = sel.value || (ids.length > 1 ? ids[1] : "*");
    sel.replaceChildren();
    ids.forEach(function (id) { sel.appendChild(el("option", { value: id }, id === "*" ? "every agent" : id)); });
    if (ids.indexOf(keep) >= 0) sel.value = keep;
  }

  function renderCheck(r) {
    var list = $("check-results");
    list.replaceChildren();
    var answers = r.all ? r.agents : [{ agent: r.agent, results: r.results }];
    answers.forEach(function (a) { a.results.forEach(function (x) { list.appendChild(checkLine(a.agent.id, x)); }); });
  }

  function checkLine(agent, x) {
    var li = el("li", { class: "d-" + x.decision, "data-agent": agent, "data-decision": x.decision, "data-destination": x.destination });
    li.appendChild(el("strong", null, x.decision));
    li.appendChild(el("span", null, agent));
    li.appendChild(el("code", null, x.host === null ? x.destination : (x.kind === "http" ? "GET " : "CONNECT ") +
      (x.host.indexOf(":") >= 0 ? "[" + x.host + "]" : x.host) + ":" + x.port + (x.path || "")));
    if (x.dial) li.appendChild(el("span", { class: "muted" }, "via " + x.dial));
    li.appendChild(el("span", { class: "muted" }, (x.rule ? "[" + x.rule + "] " : "[default] ") + x.reason +
      (x.unresolved ? " (" + x.unresolved + ")" : "")));
    return li;
  }

  function renderTests(r) {
    var failed = r.outcomes.filter(function (o) { return !o.holds; });
    var summary = $("tests-summary");
    summary.textContent = r.outcomes.length + " expectation(s) in " + r.cases + " case(s), " +
      (failed.length === 0 ? "all hold" : failed.length + " do not hold");
    summary.className = failed.length === 0 ? "d-allowed" : "d-denied";
    var list = $("tests-results");
    list.replaceChildren();
    failed.forEach(function (o) {
      var li = el("li", { class: "d-denied", "data-line": String(o.line), "data-agent": o.agent, "data-destination": o.destination });
      li.appendChild(el("strong", null, "line " + o.line));
      li.appendChild(el("span", null, o.agent));
      li.appendChild(el("code", null, o.destination));
      li.appendChild(el("span", null, o.decision + " (expected " + o.expected + ")"));
      li.appendChild(el("span", { class: "muted" }, (o.rule ? "[" + o.rule + "] " : "[default] ") + o.reason));
      list.appendChild(li);
    });
  }

  function renderRules(levels) {
    var box = $("rules");
    box.replaceChildren();
    levels.forEach(function (l) {
      if (l.allow.length === 0 && l.deny.length === 0) return;
      box.appendChild(el("h3", null, l.level + (l.name ? " " + l.name : "")));
      var ul = el("ul", { class: "plain" });
      ["deny", "allow"].forEach(function (verdict) {
        l[verdict].forEach(function (rule) {
          var li = el("li");
          li.appendChild(el("span", { class: verdict === "allow" ? "d-allowed" : "d-denied" }, verdict));
          li.appendChild(el("code", null, rule));
          var b = el("button", { type: "button", "data-remove": "1", "data-level": l.level, "data-verdict": verdict, "data-rule": rule }, "remove");
          if (l.name) b.setAttribute("data-name", l.name);
          li.appendChild(b);
          ul.appendChild(li);
        });
      });
      box.appendChild(ul);
    });
  }

  function addLive(d) {
    var li = el("li", { class: "d-" + d.decision, "data-agent": d.agent || "", "data-decision": d.decision });
    var t = new Date(d.ts).toLocaleTimeString();
    li.textContent = t + " " + d.decision + " " + (d.agent || "?") + " " + d.method + " " + d.host + ":" + d.port +
      (d.rule ? " [" + d.rule + "]" : "") + " " + d.reason;
    var list = $("live");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }

  function refresh() {
    return Promise.all([api("GET", "/api/status"), api("GET", "/api/agents"), api("GET", "/api/traffic")]).then(function (r) {
      renderStatus(r[0]);
      renderTraffic(r[2]);
      renderAgents(r[1].agents);
      renderCheckAgents(r[1].agents);
    }).catch(failed("Refreshing"));
  }
  function refreshRules() {
    return api("GET", "/api/rules").then(function (r) { renderRules(r.levels); }).catch(failed("Reading the rules"));
  }

  function stream() {
    if (streamAbort) streamAbort.abort();
    var ctl = new AbortController();
    streamAbort = ctl;
    fetch("/api/events", { headers: { authorization: "Bearer " + token }, signal: ctl.signal }).then(function (r) {
      if (r.status === 401) { logout("The token was refused."); return; }
      if (!r.ok || !r.body) throw new Error("live view: HTTP " + r.status);
      var reader = r.body.getReader();
      var dec = new TextDecoder();
      var buf = "";
      function pump() {
        return reader.read().then(function (x) {
          if (x.done) throw new Error("live view closed");
          buf += dec.decode(x.value, { stream: true });
          var cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            var data = block.split("\n").filter(function (l) { return l.indexOf("data: ") === 0; })
              .map(function (l) { return l.slice(6); }).join("\n");
            if (data) addLive(JSON.parse(data));
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (e) {
      if (ctl.signal.aborted || !token) return;
      showError("The live view stopped (" + e.message + "); reconnecting");
      setTimeout(function () { if (streamAbort === ctl) stream(); }, 2000);
    });
  }

  function start() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    refresh().then(refreshRules);
    stream();
    timer = setInterval(refresh, 2000);
  }
  function logout(msg) {
    token = null;
    sessionStorage.removeItem(KEY);
    if (streamAbort) streamAbort.abort();
    if (timer) clearInterval(timer);
    $("app").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = msg || "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("login-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      token = $("token").value.trim();
      $("token").value = "";
      fetch("/api/status", { headers: { authorization: "Bearer " + token } }).then(function (r) {
        if (r.status === 401) { logout("That token was refused."); return; }
        sessionStorage.setItem(KEY, token);
        start();
      }).catch(function (e) { $("login-error").textContent = e.message; });
    });
    $("logout").addEventListener("click", function () { logout(""); });
    $("error-dismiss").addEventListener("click", dismissError);
    document.body.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) return;
      if (b.hasAttribute("data-mode")) {
        var scope = b.getAttribute("data-scope");
        var body = { scope: scope, mode: b.classList.contains("on") ? null : b.getAttribute("data-mode") };
        if (scope !== "global") body.id = b.getAttribute("data-id");
        api("PUT", "/api/mode", body).then(refresh).catch(failed("Switching the mode"));
      } else if (b.hasAttribute("data-remove")) {
        var rule = { level: b.getAttribute("data-level"), verdict: b.getAttribute("data-verdict"), rule: b.getAttribute("data-rule") };
        if (b.hasAttribute("data-name")) rule.name = b.getAttribute("data-name");
        api("DELETE", "/api/rules", rule).then(function (r) { renderRules(r.levels); }).catch(failed("Removing the rule"));
      }
    });
    $("rule-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var rule = { level: $("rule-level").value, verdict: $("rule-verdict").value, rule: $("rule-text").value.trim() };
      var name = $("rule-name").value.trim();
      if (rule.level !== "global") rule.name = name;
      api("POST", "/api/rules", rule).then(function (r) { $("rule-text").value = ""; renderRules(r.levels); })
        .catch(failed("Adding the rule"));
    });
    $("check-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var destinations = $("check-text").value.trim().split(/\s+/).filter(Boolean);
      var who = $("check-agent").value;
      var body = { destinations: destinations, resolve: $("check-resolve").checked };
      if (who === "*") body.all = true; else body.agent = who;
      api("POST", "/api/check", body).then(function (r) { renderCheck(r); })
        .catch(failed("Checking"));
    });
    $("tests-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = { tests: $("tests-text").value, resolve: $("tests-resolve").checked };
      api("POST", "/api/check-tests", body).then(function (r) { renderTests(r); })
        .catch(function (e) {
          $("tests-summary").textContent = "";
          $("tests-results").replaceChildren();
          failed("Running the tests")(e);
        });
    });
    if (token) start();
  });
})();
`;
