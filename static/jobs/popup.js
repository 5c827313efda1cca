// Opens a result's log in a small window from the job and result lists and the job page (seed 001's log popup).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-popup]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  // getAttribute: an SVG link's (the history chart's bars) href is not a string.
  window.open(link.getAttribute("href"), "job-log-" + link.dataset.popup, "width=1000,height=720,scrollbars=yes");
  link.classList.remove("log-unread");
  link.classList.add("log-read");
});
