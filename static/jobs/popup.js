// Opens a result's log in a small window from the job and result lists (seed 001's log popup).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-popup]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  window.open(link.href, "job-log-" + link.dataset.popup, "width=1000,height=720,scrollbars=yes");
  link.classList.remove("log-unread");
  link.classList.add("log-read");
});
