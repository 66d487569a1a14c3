// Shows only the form rows that apply to the selector's value (connectors/admin/depends.py).
// Rows are hidden, never removed: their values are kept and posted as they are.
(function () {
  "use strict";
  function apply(spec) {
    const selector = document.getElementById("id_" + spec.selector);
    if (!selector) return;
    const value = selector.value;
    for (const [name, values] of Object.entries(spec.fields)) {
      for (const row of document.querySelectorAll(".form-row.field-" + name + ", .fieldBox.field-" + name)) {
        row.hidden = !values.includes(value);
      }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    const data = document.getElementById("hub-field-depends");
    if (!data) return;
    const spec = JSON.parse(data.textContent);
    const selector = document.getElementById("id_" + spec.selector);
    apply(spec);
    if (selector) selector.addEventListener("change", function () { apply(spec); });
  });
})();
