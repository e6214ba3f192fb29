// personasim view: the only script. A filter form submits itself when a select changes, and leaves its empty
// fields out of the URL (the URL is the page's state). Every page works without it.
"use strict";
document.addEventListener("change", (event) => {
  const form = event.target.closest("form.autosubmit");
  if (form && event.target.tagName === "SELECT") form.requestSubmit();
});
document.addEventListener("submit", (event) => {
  for (const field of event.target.elements) {
    if (field.name && field.value === "") field.disabled = true;
  }
});
window.addEventListener("pageshow", () => {
  for (const field of document.querySelectorAll("form [disabled]")) field.disabled = false;
});
