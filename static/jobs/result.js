// Live result page: polls the JSON API for the result (status, times, lines) and
// for new log entries only (after the last sequence number seen).
(function () {
  "use strict";
  const panel = document.getElementById("result-live");
  const logBox = document.getElementById("job-log");
  if (!panel || !logBox) return;
  const resultUrl = panel.dataset.resultUrl;
  const logUrl = panel.dataset.logUrl;
  const ACTIVE = ["pending", "running"];
  let lastSeq = 0;
  let firstSeq = null;

  function text(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "—";
  }

  function duration(start, end) {
    if (!start) return "—";
    const seconds = ((end ? new Date(end) : new Date()) - new Date(start)) / 1000;
    return seconds.toFixed(1) + " s";
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = "job-status job-status-" + status;
    span.textContent = status;
    return span;
  }

  function entryRows(entries) {
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      const row = document.createElement("div");
      row.className = "lvl-" + entry.level;
      row.dataset.seq = entry.seq;
      const line = entry.line_no === null ? "" : " [line " + entry.line_no + "]";
      row.textContent = new Date(entry.at).toLocaleTimeString() + " " + entry.level + line + " " + entry.message;
      fragment.appendChild(row);
      lastSeq = Math.max(lastSeq, entry.seq);
      firstSeq = firstSeq === null ? entry.seq : Math.min(firstSeq, entry.seq);
    }
    return fragment;
  }

  function appendEntries(entries) {
    if (!entries.length) return;
    const stick = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
    logBox.appendChild(entryRows(entries));
    if (stick) logBox.scrollTop = logBox.scrollHeight;
    updateEarlierButton();
  }

  function updateEarlierButton() {
    const button = document.getElementById("log-earlier");
    if (button) button.disabled = firstSeq === null || firstSeq <= 1;
  }

  async function loadEarlier() {
    if (firstSeq === null || firstSeq <= 1) return;
    const page = await getJson(logUrl + "?before=" + firstSeq + "&limit=1000");
    const height = logBox.scrollHeight;
    logBox.insertBefore(entryRows(page.entries), logBox.firstChild);
    logBox.scrollTop += logBox.scrollHeight - height;  // keep what the reader was looking at in place
    updateEarlierButton();
  }

  const earlier = document.getElementById("log-earlier");
  if (earlier) earlier.addEventListener("click", () => loadEarlier().catch((e) => console.warn(e)));
  const level = document.getElementById("log-level");
  if (level) level.addEventListener("change", () => {
    logBox.className = "job-log" + (level.value ? " level-" + level.value : "");
  });

  function renderLines(lines) {
    const body = document.querySelector("#result-lines tbody");
    if (!body || !lines.length) return;
    body.replaceChildren(...lines.map((line) => {
      const row = document.createElement("tr");
      row.dataset.line = line.line_no;
      const records = line.records_total !== null || line.records_processed || line.records_failed
        ? line.records_processed + (line.records_total !== null ? " / " + line.records_total : "") +
          (line.records_failed ? " (" + line.records_failed + " failed)" : "")
        : "";
      const cells = [line.line_no, line.action, badge(line.status), line.message, records, when(line.started_at),
        duration(line.started_at, line.finished_at)];
      for (const value of cells) {
        const cell = document.createElement("td");
        if (value instanceof Node) cell.appendChild(value); else cell.textContent = value;
        row.appendChild(cell);
      }
      return row;
    }));
  }

  function yesNo(value, unknown) {
    if (value === null || value === undefined) return unknown || "not reported";
    return value ? "yes" : "no";
  }

  function renderAnswers(result) {
    const a = result.answers;
    text("answer-started", a.started ? "yes, at " + when(result.started_at) : "not yet");
    text("answer-finished", a.finished ? "yes, " + result.status + " at " + when(result.finished_at) : "not yet");
    text("answer-processed", String(a.records_processed));
    text("answer-failed", String(a.records_failed));
    text("answer-changed", yesNo(a.data_changed));
    text("answer-external", yesNo(a.external_called));
    text("answer-retry", !a.finished ? "not while it runs" : !a.retry_possible ? "no: the job is inactive"
      : a.retry_safe ? "yes (the job is idempotent)" : "yes, but the job is not idempotent: check what it already did");
    const table = document.getElementById("result-failures");
    if (a.failures.length) {
      table.hidden = false;
      table.querySelector("tbody").replaceChildren(...a.failures.map((f) => {
        const row = document.createElement("tr");
        for (const value of [f.line_no, f.id, f.error]) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.appendChild(cell);
        }
        return row;
      }));
    }
  }

  function renderProgress(result) {
    const bar = document.getElementById("progress-lines");
    if (!bar) return;
    const done = result.lines.filter((l) => ACTIVE.indexOf(l.status) === -1).length;
    const total = Math.max(result.lines_total, 1);
    bar.max = total;
    bar.value = ACTIVE.indexOf(result.status) === -1 ? total : done;
    let words = done + " of " + result.lines_total + " line(s) done";
    const current = result.lines.find((l) => l.status === "running");
    if (current && current.records_total) {
      words += "; line " + current.line_no + ": " + current.records_processed + " of " + current.records_total +
        " records";
    }
    if (result.status === "running" && result.typical_duration && result.started_at) {
      const left = result.typical_duration - (new Date() - new Date(result.started_at)) / 1000;
      words += left > 0 ? "; about " + Math.ceil(left) + " s left (usual run " + result.typical_duration.toFixed(1) +
        " s)" : "; longer than usual (" + result.typical_duration.toFixed(1) + " s)";
    }
    text("progress-text", words);
  }

  function renderResult(result) {
    renderAnswers(result);
    renderProgress(result);
    const status = document.getElementById("result-status");
    status.textContent = result.status;
    status.className = "job-status job-status-" + result.status;
    text("result-message", result.message);
    text("result-started", when(result.started_at));
    text("result-finished", when(result.finished_at));
    text("result-duration", duration(result.started_at, result.finished_at));
    text("result-worker", result.worker || "—");
    if (result.kill_requested_at) {
      text("result-kill", "Kill requested by " + (result.kill_requested_by || "the system") + " at " +
        when(result.kill_requested_at));
    }
    renderLines(result.lines);
    if (ACTIVE.indexOf(result.status) === -1) {
      const kill = document.getElementById("kill-result");
      if (kill) kill.closest("li").hidden = true;
      const retry = document.getElementById("retry-item");
      if (retry) retry.hidden = false;
    }
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return response.json();
  }

  async function tick(first) {
    let finished = false;
    try {
      const page = await getJson(first ? logUrl + "?tail=500" : logUrl + "?after=" + lastSeq + "&limit=2000");
      appendEntries(page.entries);
      const result = await getJson(resultUrl);
      renderResult(result);
      finished = page.finished && ACTIVE.indexOf(result.status) === -1;
    } catch (error) {
      console.warn(error);
    }
    if (finished) document.body.dataset.resultFinished = "true";
    else window.setTimeout(() => tick(false), 500);
  }
  tick(true);
})();
