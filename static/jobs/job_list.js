// The job list stays live: every 2 s it asks the list's live view (JobAdmin.live_view) for the last run
// of the jobs on this page and redraws their last-run cell (status icon, log icon, when) and their
// Run/Kill buttons without a reload. The relative part of every date ("5 min ago") follows the clock.
(function () {
  "use strict";
  const STEPS = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];

  // The same rule as jobs/when.py's relative().
  function relative(instant, now) {
    const seconds = Math.trunc((instant - now) / 1000);
    if (seconds === 0) return "now";
    for (const [size, unit] of STEPS) {
      if (Math.abs(seconds) >= size) {
        const count = Math.floor(Math.abs(seconds) / size);
        return seconds > 0 ? "in " + count + " " + unit : count + " " + unit + " ago";
      }
    }
    return "now";
  }

  function refreshRelativeTimes() {
    const now = Date.now();
    for (const time of document.querySelectorAll("time.when[datetime]")) {
      const label = time.querySelector(".when-relative");
      const instant = Date.parse(time.getAttribute("datetime"));
      if (label && !Number.isNaN(instant)) label.textContent = "(" + relative(instant, now) + ")";
    }
  }

  function liveUrl() {
    const live = document.getElementById("job-list-live");
    return live && live.dataset.url;
  }

  function cells() {
    return Array.from(document.querySelectorAll("#result_list .last-run[data-id]"));
  }

  function redraw(cell, html) {
    const holder = cell.parentElement;
    if (holder && holder.innerHTML !== html) holder.innerHTML = html; // server-escaped HTML of our own origin
  }

  async function refresh() {
    const rows = cells();
    const url = liveUrl();
    if (!rows.length || !url) return;
    try {
      const ids = rows.map((cell) => cell.dataset.id).join(",");
      const response = await fetch(url + "?ids=" + encodeURIComponent(ids),
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const answer = await response.json();
        for (const cell of rows) {
          const live = answer.jobs[cell.dataset.id];
          if (!live) continue;
          const buttons = document.querySelector('#result_list .row-buttons[data-id="' + cell.dataset.id + '"]');
          redraw(cell, live.last_run);
          if (buttons) redraw(buttons, live.buttons);
        }
        refreshRelativeTimes();
      }
    } catch (error) {
      console.warn(error);
    }
    window.setTimeout(refresh, 2000);
  }

  function start() {
    refreshRelativeTimes();
    window.setInterval(refreshRelativeTimes, 15000);
    if (cells().length && liveUrl()) window.setTimeout(refresh, 2000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
