// Stratus dashboard: confirmations, the project switcher, and live status
// over Server-Sent Events. Plain JavaScript, no framework.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
});

// Subscribes to the project's server changes; `onServer(row)` gets each.
// EventSource reconnects by itself when the server ends a stream; it then
// sends the last event id, and the stream goes on from that time.
function live(element, onServer) {
  const url = new URL(element.dataset.live, window.location.href);
  url.searchParams.set("since", element.dataset.since);
  const source = new EventSource(url);
  source.addEventListener("server", (message) => onServer(JSON.parse(message.data)));
  source.addEventListener("logout", () => { source.close(); window.location.reload(); });
  return source;
}

function liveInstances(table) {
  const body = table.tBodies[0];
  live(table, (row) => {
    const current = document.getElementById("server-" + row.id);
    if (!row.html) { if (current) current.remove(); return; }
    const template = document.createElement("template");
    template.innerHTML = row.html.trim();
    if (current) current.replaceWith(template.content.firstChild);
    else if (table.hasAttribute("data-first-page")) {
      body.prepend(template.content.firstChild);
      const empty = document.getElementById("empty");
      if (empty) empty.remove();
    }
  });
}

function liveInstance(region) {
  let pending = null;
  live(region, (row) => {
    if (row.id !== region.dataset.server) return;
    if (!row.html) { window.location.href = region.closest("body").querySelector(".side a[href$='instances/']").href; return; }
    // Several events in a burst: one re-read of the live region.
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const url = new URL(window.location.href);
      url.searchParams.set("partial", "1");
      const response = await fetch(url, {credentials: "same-origin"});
      if (response.ok) region.innerHTML = await response.text();
    }, 200);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("instances");
  if (table && table.dataset.live) liveInstances(table);
  const region = document.getElementById("live-region");
  if (region && region.dataset.live) liveInstance(region);
});
