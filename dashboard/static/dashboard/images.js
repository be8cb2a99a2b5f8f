// Stratus dashboard: the image upload's progress bar. The form makes the
// image record, then the file goes up in one PUT whose upload progress
// events drive the bar; the dashboard streams it on to Glance. On an
// image's page, an import that is running is followed: the page's facts
// are fetched again every second until the import ends.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  if (!document.querySelector("#image-import[data-following]")) return;
  const follow = async () => {
    try {
      const response = await fetch(location.href, {credentials: "same-origin"});
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const facts = page.getElementById("image-facts");
      if (!facts) return;
      document.getElementById("image-facts").replaceWith(facts);
      if (!facts.querySelector("#image-import[data-following]")) return;
    } catch (ignored) { /* the dashboard is unreachable for a moment: try again */ }
    setTimeout(follow, 1000);
  };
  setTimeout(follow, 1000);
});

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("image-upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const error = document.getElementById("image-error");
  const button = document.getElementById("image-upload-submit");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
  }

  function show(value) {
    bar.value = value;
    bar.textContent = percent.textContent = value + "%";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) return;
    error.hidden = true;
    button.disabled = true;
    const fields = new FormData(form);
    fields.delete("file");
    let record;
    try {
      const response = await fetch(form.action, {method: "POST", body: fields, credentials: "same-origin",
                                                 headers: {"Accept": "application/json"}});
      record = await response.json();
      if (!response.ok) return fail(record.error || "The image could not be made.");
    } catch (problem) {
      return fail("The dashboard could not be reached: " + problem);
    }
    document.getElementById("upload-status").hidden = false;
    show(0);
    const request = new XMLHttpRequest();
    request.open("PUT", record.file_url);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) show(Math.floor(100 * progress.loaded / progress.total));
    });
    request.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (ignored) { /* not JSON: said below */ }
      if (request.status >= 400) return fail(body.error || "The upload failed (" + request.status + ").");
      show(100);
      const done = document.getElementById("upload-done");
      done.querySelector("a").href = record.image_url;
      done.querySelector("span").textContent = " is " + body.status + ", checksum " + body.checksum + ".";
      done.hidden = false;
      button.disabled = false;
    });
    request.addEventListener("error", () => fail("The upload was interrupted."));
    request.send(file);
  });
});
