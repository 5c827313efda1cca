// The operations page draws itself from its JSON state (embedded at first, then asked for every 3 s),
// so it stays live without a reload. Text goes in with textContent only: a job's name or a run's
// message is data, never markup. Acknowledge posts with the page's CSRF token and redraws at once.
(function () {
  "use strict";
  const POLL_MS = 3000;
  const ICONS = { success: "✔", warning: "⚠", info: "ℹ", error: "✖", killed: "✖", running: "●", pending: "○" };
  const STRIP_TEXT = { failed: "failed", warning: "warning", ok: "ok", none: "no runs" };

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  // One date format: the absolute local time, and how far from now ("in 3 min", "5 min ago").
  function relative(iso, now) {
    const seconds = Math.round((new Date(iso) - now) / 1000);
    const size = Math.abs(seconds);
    if (size < 5) return "just now";
    const amount = size < 60 ? size + " s" : size < 3600 ? Math.round(size / 60) + " min"
      : size < 172800 ? Math.round(size / 3600) + " h" : Math.round(size / 86400) + " days";
    return seconds >= 0 ? "in " + amount : amount + " ago";
  }

  function when(iso, now) {
    if (!iso) return el("span", { text: "—" });
    const at = new Date(iso);
    const text = at.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit",
      minute: "2-digit", second: "2-digit" });
    return el("time", { datetime: iso, title: iso, text: text + " (" + relative(iso, now) + ")" });
  }

  function duration(fromIso, now) {
    if (!fromIso) return "—";
    const seconds = Math.max(0, Math.round((now - new Date(fromIso)) / 1000));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function badge(status) {
    return el("span", { className: "job-status job-status-" + status, title: status,
      text: (ICONS[status] || "?") + " " + status });
  }

  function runCell(row) {
    return el("td", { className: "ops-run" },
      el("a", { href: row.url, text: "#" + row.id }), " ",
      el("a", { href: row.job_url, className: "ops-job", text: row.job_name }),
      el("span", { className: "ops-identifier", text: row.job }));
  }

  function table(headers, rows) {
    const head = el("thead", {}, el("tr", {}, ...headers.map((header) => el("th", { scope: "col", text: header }))));
    return el("table", { className: "ops-table" }, head, el("tbody", {}, ...rows));
  }

  function empty(text) {
    return el("p", { className: "ops-empty", text: text });
  }

  function killButton(row) {
    if (row.kill_requested) return el("span", { className: "ops-killing", text: "kill requested" });
    if (!row.kill_url) return null;
    return el("a", { className: "button kill-button", href: row.kill_url, text: "Kill" });
  }

  function runningRows(rows, now, overdue) {
    return rows.map((row) => el("tr", { "data-result": row.id },
      runCell(row),
      el("td", {}, badge(row.status)),
      el("td", { className: "ops-duration" }, row.started_at ? duration(row.started_at, now) : "waiting",
        overdue ? el("span", { className: "ops-expected", text: " expected " + row.expected_text }) : null),
      el("td", { className: "ops-actions" }, killButton(row))));
  }

  function acknowledgeForm(row) {
    if (!row.acknowledge_url) return null;
    const form = el("form", { method: "post", action: row.acknowledge_url, className: "ops-acknowledge" },
      el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrfToken() }),
      el("button", { type: "submit", className: "button", text: "Acknowledge" }));
    form.addEventListener("submit", acknowledge);
    return form;
  }

  function drawSection(id, count, content) {
    const section = document.getElementById(id);
    if (count !== null) section.querySelector(".ops-count").textContent = count;
    section.querySelector(".ops-body").replaceChildren(content);
  }

  function draw(state) {
    const now = new Date(state.now);
    drawSection("ops-running", "(" + state.running.length + (state.running_more ? "+" : "") + ")",
      state.running.length ? table(["Run", "Status", "For", ""], runningRows(state.running, now, false))
        : empty("Nothing is running."));
    drawSection("ops-overdue", "(" + state.overdue.length + ")",
      state.overdue.length ? table(["Run", "Status", "For", ""], runningRows(state.overdue, now, true))
        : empty("No run is over its expected duration."));
    const count = state.attention_capped ? "more than 1,000" : String(state.attention_count);
    drawSection("ops-attention", "(" + count + ")", state.attention.length
      ? table(["Run", "Status", "Ended", "Message", ""], state.attention.map((row) => el("tr", { "data-result": row.id },
        runCell(row), el("td", {}, badge(row.status)), el("td", {}, when(row.finished_at, now)),
        el("td", { className: "ops-message", text: row.message }),
        el("td", { className: "ops-actions" }, acknowledgeForm(row)))))
      : empty("Nothing to acknowledge."));
    drawSection("ops-upcoming", null, state.upcoming.length
      ? table(["Job", "When", "Plan"], state.upcoming.map((row) => el("tr", {},
        el("td", {}, el("a", { href: row.job_url, className: "ops-job", text: row.job_name }),
          el("span", { className: "ops-identifier", text: row.job })),
        el("td", {}, when(row.at, now)), el("td", { text: row.plan }))))
      : empty("No scheduled run is coming."));
    drawSection("ops-acknowledged", null, state.acknowledged.length
      ? table(["Run", "Status", "Acknowledged"], state.acknowledged.map((row) => el("tr", { "data-result": row.id },
        runCell(row), el("td", {}, badge(row.status)),
        el("td", {}, (row.acknowledged_by || "someone") + ", ", when(row.acknowledged_at, now)))))
      : empty("Nothing acknowledged in the last 24 hours."));
    drawStrips(state);
  }

  function drawStrips(state) {
    const days = state.days.map((day) => new Date(day + "T12:00:00"));
    const header = el("div", { className: "ops-strip ops-strip-head" }, el("span", { className: "ops-strip-job" }),
      ...days.map((day) => el("span", { className: "ops-day", text: day.toLocaleDateString(undefined,
        { weekday: "short" }) })));
    const rows = state.strips.map((strip) => el("div", { className: "ops-strip", "data-job": strip.identifier },
      el("a", { href: strip.url, className: "ops-strip-job", text: strip.name, title: strip.identifier }),
      ...strip.days.map((outcome, index) => el("span", { className: "ops-day ops-day-" + outcome,
        title: state.days[index] + ": " + STRIP_TEXT[outcome], "aria-label": state.days[index] + ": " + STRIP_TEXT[outcome] }))));
    const legend = el("p", { className: "ops-legend" }, ...["failed", "warning", "ok", "none"].map((outcome) =>
      el("span", {}, el("span", { className: "ops-day ops-day-" + outcome }), " " + STRIP_TEXT[outcome] + " ")),
    state.strips_more ? el("span", { text: "— the first 30 jobs that ran; filter the job list for the rest." }) : null);
    drawSection("ops-strips", null, state.strips.length
      ? el("div", {}, header, ...rows, legend) : empty("No job ran in the last 7 days."));
  }

  function csrfToken() {
    const input = document.querySelector("#ops-csrf input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(text, level) {
    let list = document.querySelector("ul.messagelist");
    if (!list) {
      list = el("ul", { className: "messagelist" });
      document.getElementById("content-main").before(list);
    }
    list.replaceChildren(el("li", { className: level, text: text }));
  }

  async function acknowledge(event) {
    event.preventDefault();
    const form = event.currentTarget;
    form.querySelector("button").disabled = true;
    try {
      const response = await fetch(form.action, { method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() } });
      const answer = await response.json();
      say(answer.message, response.ok ? "success" : "warning");
    } catch (error) {
      say("Not acknowledged: " + error, "error");
    }
    refresh();
  }

  let timer = null;
  async function refresh() {
    window.clearTimeout(timer);
    const root = document.getElementById("content-main");
    try {
      const response = await fetch(root.dataset.stateUrl, { credentials: "same-origin",
        headers: { Accept: "application/json" } });
      if (response.ok) {
        draw(await response.json());
        document.getElementById("ops-updated").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      }
    } catch (error) {
      console.warn(error);
    }
    timer = window.setTimeout(refresh, POLL_MS);
  }

  function start() {
    draw(JSON.parse(document.getElementById("ops-state").textContent));
    timer = window.setTimeout(refresh, POLL_MS);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
