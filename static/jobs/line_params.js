// Typed parameter fields for job lines: choosing an action shows its parameters as
// typed inputs (from the action's declaration) instead of raw JSON. The JSON
// textarea stays the value that is saved; these inputs write into it.
(function () {
  "use strict";
  let specs = null;
  const VARIABLE = /\$\{[^}]+\}/;

  function parseJson(text) {
    try { return text.trim() ? JSON.parse(text) : {}; } catch (error) { return null; }
  }

  function inputFor(param, value) {
    let input;
    if (param.type === "bool") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = value === undefined ? Boolean(param.default) : value === true || value === "true";
    } else if (param.type === "choice") {
      input = document.createElement("select");
      for (const choice of [""].concat(param.choices || [])) {
        const option = document.createElement("option");
        option.value = choice;
        option.textContent = choice === "" ? (param.default !== undefined ? "default: " + param.default : "—") : choice;
        input.appendChild(option);
      }
      input.value = value === undefined ? "" : String(value);
    } else if (param.type === "json") {
      input = document.createElement("textarea");
      input.rows = 2;
      input.value = value === undefined ? "" : JSON.stringify(value);
    } else {
      input = document.createElement("input");
      // Text inputs everywhere, so that ${variables} stay possible; the browser helps where it can.
      input.type = param.type === "email" ? "email" : "text";
      if (param.type === "int" || param.type === "float") input.inputMode = "decimal";
      if (param.type === "date") input.placeholder = "YYYY-MM-DD or ${today}";
      if (param.type === "datetime") input.placeholder = "YYYY-MM-DDTHH:MM or ${now}";
      // A secret is referenced, never typed: the line stores the reference only.
      if (param.type === "secret") input.placeholder = "${secret.NAME} (a stored secret)";
      input.value = value === undefined ? "" : String(value);
      if (value === undefined && param.default !== undefined && param.default !== null) {
        input.placeholder = "default: " + param.default;
      }
    }
    input.dataset.param = param.name;
    input.dataset.type = param.type;
    input.className = "typed-param";
    if (param.required) input.required = true;
    return input;
  }

  function typedValue(input) {
    const type = input.dataset.type;
    if (type === "bool") return input.checked;
    const raw = input.value;
    if (raw === "") return undefined;
    if (VARIABLE.test(raw)) return raw;  // resolved when the run starts
    if (type === "int" && /^-?\d+$/.test(raw.trim())) return parseInt(raw, 10);
    if (type === "float" && raw.trim() !== "" && !isNaN(Number(raw))) return Number(raw);
    if (type === "json") { try { return JSON.parse(raw); } catch (error) { return raw; } }
    return raw;
  }

  function render(row) {
    const select = row.querySelector('select[name$="-action"]');
    const textarea = row.querySelector('textarea[name$="-parameters"]');
    if (!select || !textarea || textarea.name.includes("__prefix__")) return;
    let box = row.querySelector(".typed-params");
    if (!box) {
      box = document.createElement("div");
      box.className = "typed-params";
      textarea.parentNode.insertBefore(box, textarea);
    }
    const spec = specs[select.value];
    const current = parseJson(textarea.value);
    box.replaceChildren();
    if (!spec || current === null) {  // no action yet, or JSON the fields cannot show: edit it as it is
      textarea.style.display = "";
      return;
    }
    textarea.style.display = "none";
    const write = () => {
      const values = {};
      for (const input of box.querySelectorAll(".typed-param")) {
        const value = typedValue(input);
        const param = spec.parameters.find((p) => p.name === input.dataset.param);
        if (value === undefined || (input.dataset.type === "bool" && value === Boolean(param.default) &&
            !(param.name in current))) continue;
        values[input.dataset.param] = value;
      }
      textarea.value = JSON.stringify(values);
    };
    for (const param of spec.parameters) {
      const label = document.createElement("label");
      label.className = "typed-param-label" + (param.required ? " required" : "");
      label.textContent = param.name + (param.required ? " *" : "");
      if (param.help) label.title = param.help;
      const input = inputFor(param, current[param.name]);
      input.addEventListener("input", write);
      input.addEventListener("change", write);
      const field = document.createElement("div");
      field.className = "typed-param-field";
      field.append(label, input);
      if (param.help) {
        const help = document.createElement("div");
        help.className = "help";
        help.textContent = param.help;
        field.appendChild(help);
      }
      box.appendChild(field);
    }
    const hint = document.createElement("div");
    hint.className = "help";
    hint.textContent = spec.hint || "Values may use " + spec.variables.join(", ") + ".";
    const raw = document.createElement("a");
    raw.href = "#";
    raw.textContent = " Edit as JSON";
    raw.addEventListener("click", (event) => {
      event.preventDefault();
      box.replaceChildren();
      textarea.style.display = "";
    });
    hint.appendChild(raw);
    box.appendChild(hint);
  }

  function wire(row) {
    if (!row || row.classList.contains("empty-form")) return;  // the template Django clones for new rows
    const select = row.querySelector('select[name$="-action"]');
    if (!select || select.dataset.typedWired) return;
    select.dataset.typedWired = "1";
    select.addEventListener("change", () => {
      const textarea = row.querySelector('textarea[name$="-parameters"]');
      const spec = specs[select.value];
      const current = parseJson(textarea.value) || {};
      // Keep only the values the new action also takes.
      const kept = {};
      for (const param of (spec ? spec.parameters : [])) {
        if (param.name in current) kept[param.name] = current[param.name];
      }
      textarea.value = JSON.stringify(kept);
      render(row);
    });
    render(row);
  }

  function wireAll() {
    const specsNode = document.getElementById("action-specs");
    if (!specsNode) return;
    specs = JSON.parse(specsNode.textContent);
    document.querySelectorAll("#lines-group tr.form-row").forEach(wire);
  }
  document.addEventListener("formset:added", (event) => {
    if (specs && event.target && event.target.closest) wire(event.target.closest("tr") || event.target);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireAll);
  else wireAll();
})();
