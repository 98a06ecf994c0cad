// The dashboard's own behaviour, kept small: the pages work as plain HTML forms and links, and htmx with its
// SSE extension keeps them current. No inline scripts (the Content-Security-Policy forbids them).
"use strict";

document.addEventListener("change", (event) => {
  // A filter applies as soon as it is chosen (the form's button does the same without scripts).
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});

document.addEventListener("submit", (event) => {
  // A form that changes a rollout asks first: its data-confirm says what will happen.
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
