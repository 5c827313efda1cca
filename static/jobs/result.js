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

  function appendEntries(entries) {
    if (!entries.length) return;
    const stick = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      const row = document.createElement("div");
      row.className = "lvl-" + entry.level;
      row.dataset.seq = entry.seq;
      const line = entry.line_no === null ? "" : " [line " + entry.line_no + "]";
      row.textContent = new Date(entry.at).toLocaleTimeString() + " " + entry.level + line + " " + entry.message;
      fragment.appendChild(row);
      lastSeq = Math.max(lastSeq, entry.seq);
    }
    logBox.appendChild(fragment);
    if (stick) logBox.scrollTop = logBox.scrollHeight;
  }

  function renderLines(lines) {
    const body = document.querySelector("#result-lines tbody");
    if (!body || !lines.length) return;
    body.replaceChildren(...lines.map((line) => {
      const row = document.createElement("tr");
      row.dataset.line = line.line_no;
      const cells = [line.line_no, line.action, badge(line.status), line.message, when(line.started_at),
        duration(line.started_at, line.finished_at)];
      for (const value of cells) {
        const cell = document.createElement("td");
        if (value instanceof Node) cell.appendChild(value); else cell.textContent = value;
        row.appendChild(cell);
      }
      return row;
    }));
  }

  function renderResult(result) {
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
      if (kill) kill.closest("li").style.display = "none";
      const retry = document.getElementById("retry-item");
      if (retry) retry.style.display = "";
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
