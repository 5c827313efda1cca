// Live result page: polls the JSON API for the status and for new log entries only.
(function () {
  "use strict";
  const panel = document.getElementById("result-live");
  const logBox = document.getElementById("job-log");
  if (!panel || !logBox) return;
  const resultUrl = panel.dataset.resultUrl;
  const logUrl = panel.dataset.logUrl;
  let lastSeq = 0;
  let finished = false;

  function appendEntries(entries) {
    if (!entries.length) return;
    const stick = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      const row = document.createElement("div");
      row.className = "lvl-" + entry.level;
      row.dataset.seq = entry.seq;
      const time = new Date(entry.at).toLocaleTimeString();
      const line = entry.line_no === null ? "" : " [line " + entry.line_no + "]";
      row.textContent = time + " " + entry.level + line + " " + entry.message;
      fragment.appendChild(row);
      lastSeq = Math.max(lastSeq, entry.seq);
    }
    logBox.appendChild(fragment);
    if (stick) logBox.scrollTop = logBox.scrollHeight;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return response.json();
  }

  async function refreshStatus() {
    const result = await getJson(resultUrl);
    const status = document.getElementById("result-status");
    status.textContent = result.status;
    status.className = "job-status job-status-" + result.status;
    document.getElementById("result-message").textContent = result.message;
    if (result.kill_requested_at) {
      document.getElementById("result-kill").textContent =
        "Kill requested by " + (result.kill_requested_by || "the system") + " at " +
        new Date(result.kill_requested_at).toLocaleString();
    }
    return result;
  }

  async function tick(first) {
    try {
      const url = first ? logUrl + "?tail=500" : logUrl + "?after=" + lastSeq + "&limit=2000";
      const page = await getJson(url);
      appendEntries(page.entries);
      const result = await refreshStatus();
      finished = page.finished && ["pending", "running"].indexOf(result.status) === -1;
    } catch (error) {
      console.warn(error);
    }
    if (!finished) window.setTimeout(() => tick(false), 500);
    else document.body.dataset.resultFinished = "true";
  }
  tick(true);
})();
