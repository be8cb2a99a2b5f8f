// The launch form as steps: one fieldset shown at a time, with Back and
// Next and a list of the steps to jump between. It stays one form and one
// POST, so without JavaScript every fieldset simply shows at once.
"use strict";

function wizard(form) {
  const steps = [...form.querySelectorAll(":scope > fieldset")];
  const submit = form.querySelector("[type=submit]");
  const list = document.createElement("ol");
  list.className = "wizard-steps";
  list.setAttribute("aria-label", "Steps");
  const nav = document.createElement("div");
  nav.className = "wizard-nav";
  const back = Object.assign(document.createElement("button"), {type: "button", textContent: "Back", className: "secondary", id: "wizard-back"});
  const next = Object.assign(document.createElement("button"), {type: "button", textContent: "Next", id: "wizard-next"});
  nav.append(back, next);
  let current = 0;

  function show(index) {
    current = index;
    steps.forEach((step, number) => { step.hidden = number !== index; });
    [...list.querySelectorAll("button")].forEach((button, number) => {
      if (number === index) button.setAttribute("aria-current", "step"); else button.removeAttribute("aria-current");
    });
    back.disabled = index === 0;
    next.hidden = index === steps.length - 1;
    submit.hidden = index !== steps.length - 1;
    const first = steps[index].querySelector("input, select, textarea");
    if (first && document.activeElement && form.contains(document.activeElement)) first.focus();
  }

  // Moving on checks the fields of the step being left.
  function valid(index) {
    return [...steps[index].querySelectorAll("input, select, textarea")].every((field) => field.reportValidity());
  }

  steps.forEach((step, index) => {
    const item = document.createElement("li");
    const button = Object.assign(document.createElement("button"), {type: "button", id: `wizard-step-${index + 1}`});
    button.textContent = step.querySelector("legend").textContent;
    button.addEventListener("click", () => { if (index <= current || valid(current)) show(index); });
    item.append(button);
    list.append(item);
  });
  back.addEventListener("click", () => show(Math.max(0, current - 1)));
  next.addEventListener("click", () => { if (valid(current)) show(current + 1); });
  // A field the browser refuses on submit is shown in its step.
  form.addEventListener("invalid", (event) => {
    const step = steps.findIndex((fieldset) => fieldset.contains(event.target));
    if (step >= 0 && step !== current) show(step);
  }, true);
  form.prepend(list);
  submit.before(nav);
  show(0);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.wizard").forEach(wizard);
});
