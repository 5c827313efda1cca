// The job list stays live: every 2 s it asks the API for the last run of the jobs on
// this page and redraws their status icons (blinking while running) without a reload.
(function () {
  "use strict";
  const ICONS = { success: ["✔", "ok"], warning: ["⚠", "warn"], info: ["ℹ", "info"], error: ["✖", "bad"],
    killed: ["✖", "bad"], running: ["●", "running"], pending: ["○", "pending"] };

  function cells() {
    return Array.from(document.querySelectorAll("#result_list .last-run[data-job]"));
  }

  function draw(cell, last) {
    if (!last || String(last.id) === cell.dataset.result && cell.dataset.status === last.status) return;
    const [icon, css] = ICONS[last.status] || ["?", "never"];
    const link = document.createElement("a");
    link.href = cell.dataset.url || ("../../results/jobresult/" + last.id + "/change/");
    const badge = document.createElement("span");
    badge.className = "job-status job-status-" + css;
    badge.title = last.status;
    badge.textContent = icon + " " + last.status;
    link.appendChild(badge);
    cell.replaceChildren(link);
    cell.dataset.result = last.id;
    cell.dataset.status = last.status;
  }

  async function refresh() {
    const rows = cells();
    if (!rows.length) return;
    const names = rows.map((cell) => cell.dataset.job).join(",");
    try {
      const response = await fetch("/api/jobs/?identifier=" + encodeURIComponent(names),
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const jobs = await response.json();
        const byName = new Map(jobs.map((job) => [job.identifier, job.last_result]));
        for (const cell of rows) draw(cell, byName.get(cell.dataset.job));
      }
    } catch (error) {
      console.warn(error);
    }
    window.setTimeout(refresh, 2000);
  }

  function start() {
    for (const cell of cells()) {
      const badge = cell.querySelector(".job-status");
      if (badge) cell.dataset.status = badge.title;
    }
    if (cells().length) window.setTimeout(refresh, 2000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
