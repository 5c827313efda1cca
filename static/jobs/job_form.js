// The job's edit form without raw JSON: the run-time parameter table (JSON as "Advanced"), the e-mail
// report's recipients shown only when a report is sent, the schedule fields of the chosen kind only,
// line numbers given and renumbered by drag-and-drop (or the up/down buttons), and the filter fields
// of a line only when it is a filter. The server checks everything again.
(function () {
  "use strict";

  // --- Run-time parameters: a table, or JSON (Advanced) ---------------------------------------------------
  const PARAM_KEYS = ["name", "type", "default", "required", "choices", "help", "pattern", "label"];

  function reindex(element, prefix, index) {
    const pattern = new RegExp("(" + prefix + "-(\\d+|__prefix__))(?=-|$)");
    const replacement = prefix + "-" + index;
    for (const node of [element, ...element.querySelectorAll("*")]) {
      for (const attribute of ["id", "name", "for"]) {
        const value = node.getAttribute(attribute);
        if (value && pattern.test(value)) node.setAttribute(attribute, value.replace(pattern, replacement));
      }
    }
  }

  function paramRows(editor) {
    return Array.from(editor.querySelectorAll(".param-table > tbody > tr.param-row"));
  }

  function renumberParamRows(editor) {
    const prefix = editor.dataset.prefix;
    const rows = paramRows(editor);
    rows.forEach((row, index) => reindex(row, prefix, index));
    editor.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]').value = String(rows.length);
  }

  function addParamRow(editor) {
    const template = editor.querySelector("template.param-row-template");
    const row = template.content.querySelector("tr").cloneNode(true);
    editor.querySelector(".param-table > tbody").appendChild(row);
    wireParamRow(editor, row);
    renumberParamRows(editor);
    return row;
  }

  function wireParamRow(editor, row) {
    row.querySelector(".param-remove").addEventListener("click", () => {
      row.remove();
      renumberParamRows(editor);
    });
  }

  function cell(row, name) {
    return row.querySelector('[name$="-' + name + '"]');
  }

  function typedDefault(type, text) {
    if (text === "") return undefined;
    if (type === "int" && /^-?\d+$/.test(text.trim())) return parseInt(text, 10);
    if (type === "float" && text.trim() !== "" && !isNaN(Number(text))) return Number(text);
    if (type === "bool" && /^(true|false)$/i.test(text.trim())) return text.trim().toLowerCase() === "true";
    if (type === "json" && /^\s*[[{]/.test(text)) {
      try { return JSON.parse(text); } catch (error) { return text; }
    }
    return text;  // the server states the rule a default breaks
  }

  function specOfRow(row) {
    const spec = { name: cell(row, "name").value.trim(), type: cell(row, "type").value,
      required: cell(row, "required").checked };
    const defaultValue = typedDefault(spec.type, cell(row, "default").value);
    if (defaultValue !== undefined) spec.default = defaultValue;
    const choices = cell(row, "choices").value.split(",").map((c) => c.trim()).filter((c) => c);
    if (choices.length) spec.choices = choices;
    for (const key of ["help", "pattern", "label"]) {
      if (cell(row, key).value) spec[key] = cell(row, key).value;
    }
    return spec;
  }

  function defaultText(value) {
    if (value === undefined || value === null) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  // Why a declaration cannot be shown in the table as it is (null: it can).
  function misfit(specs) {
    if (!Array.isArray(specs)) return "the declaration is not a list";
    for (const spec of specs) {
      if (spec === null || typeof spec !== "object" || Array.isArray(spec)) return "an entry is not an object";
      const unknown = Object.keys(spec).filter((key) => !PARAM_KEYS.includes(key));
      if (unknown.length) return "unknown keys: " + unknown.join(", ");
      if (spec.choices !== undefined && !(Array.isArray(spec.choices) &&
          spec.choices.every((c) => typeof c === "string" && c && !c.includes(",") && c === c.trim()))) {
        return "the choices of " + spec.name + " are not plain text without commas";
      }
      const type = spec.type || "str";
      const value = spec.default;
      if (value !== undefined && value !== null) {
        const same = JSON.stringify(typedDefault(type, defaultText(value))) === JSON.stringify(value);
        if (!same) return "the default of " + spec.name + " is not a " + type;
      }
    }
    return null;
  }

  function fillRow(row, spec) {
    cell(row, "name").value = spec.name || "";
    cell(row, "type").value = spec.type || "str";
    cell(row, "default").value = defaultText(spec.default);
    cell(row, "required").checked = spec.required === true;
    cell(row, "choices").value = (spec.choices || []).join(", ");
    for (const key of ["help", "pattern", "label"]) cell(row, key).value = spec[key] || "";
  }

  function switchParamMode(editor, link) {
    const mode = editor.querySelector(".param-mode");
    const textarea = editor.querySelector("textarea.param-json");
    const problem = editor.querySelector(".param-switch-problem");
    problem.hidden = true;
    if (mode.value === "table") {
      const specs = paramRows(editor).map(specOfRow).filter((spec) => spec.name || spec.default !== undefined);
      textarea.value = JSON.stringify(specs, null, 2);
      mode.value = "json";
    } else {
      let specs;
      try { specs = textarea.value.trim() ? JSON.parse(textarea.value) : []; } catch (error) {
        specs = undefined;
      }
      const why = specs === undefined ? "the text is not valid JSON" : misfit(specs);
      if (why) {
        problem.textContent = "It stays JSON: " + why + ".";
        problem.hidden = false;
        return;
      }
      paramRows(editor).forEach((row) => row.remove());
      for (const spec of specs) fillRow(addParamRow(editor), spec);
      mode.value = "table";
    }
    editor.querySelector(".param-table-part").hidden = mode.value !== "table";
    editor.querySelector(".param-json-part").hidden = mode.value !== "json";
    link.textContent = mode.value === "json" ? "Edit as a table" : "Advanced: edit as JSON";
  }

  function wireParamEditor(editor) {
    paramRows(editor).forEach((row) => wireParamRow(editor, row));
    editor.querySelector(".param-add").addEventListener("click", () => {
      cell(addParamRow(editor), "name").focus();
    });
    const link = editor.querySelector(".param-advanced");
    link.addEventListener("click", (event) => {
      event.preventDefault();
      switchParamMode(editor, link);
    });
  }

  // --- E-mail report: recipients only when a report is sent ----------------------------------------------
  function wireReport(editor) {
    const when = editor.querySelector("select.report-when");
    const recipients = editor.querySelector(".report-recipients-row");
    const show = () => { recipients.hidden = when.value === "never"; };
    when.addEventListener("change", show);
    show();
  }

  // --- Schedules: only the fields of the chosen kind (any number of schedule forms) ----------------------
  const BOUNDS = ["timezone", "starts_at", "ends_at", "catch_up"];
  const KIND_FIELDS = {
    disabled: [],
    automatic: BOUNDS,
    interval: ["every", "every_unit", ...BOUNDS],
    calendar: ["weekdays", "times", "cron", ...BOUNDS],
  };
  const KIND_DEPENDENT = new Set(["every", "every_unit", "weekdays", "times", "cron", ...BOUNDS]);

  function fieldNames(row) {
    return Array.from(row.classList).filter((c) => c.startsWith("field-")).map((c) => c.slice(6));
  }

  function showScheduleKind(form, select) {
    const shown = new Set(KIND_FIELDS[select.value] || Array.from(KIND_DEPENDENT));
    for (const row of form.querySelectorAll(".form-row")) {
      const names = fieldNames(row).filter((name) => KIND_DEPENDENT.has(name));
      if (names.length) row.hidden = !names.some((name) => shown.has(name));
    }
    for (const fieldset of form.querySelectorAll("fieldset")) {
      const rows = Array.from(fieldset.querySelectorAll(".form-row"));
      fieldset.hidden = rows.length > 0 && rows.every((row) => row.hidden);
    }
  }

  function wireSchedule(form) {
    if (!form || form.classList.contains("empty-form") || form.id.endsWith("-empty")) return;
    const select = form.querySelector('select[name$="-kind"]');
    if (!select || !form.querySelector('[name$="-every_unit"]') || select.dataset.kindWired) return;
    select.dataset.kindWired = "1";
    select.addEventListener("change", () => showScheduleKind(form, select));
    showScheduleKind(form, select);
  }

  // --- Lines: numbers, drag-and-drop, filter fields -------------------------------------------------------
  const LINE_STEP = 10;
  let dragged = null;

  function lineRows(group) {
    return Array.from(group.querySelectorAll("tbody tr.form-row")).filter(
      (row) => !row.classList.contains("empty-form"));
  }

  function lineNoInput(row) {
    return row.querySelector('input[name$="-line_no"]');
  }

  // Saved lines keep the form numbers 0..n-1 (the server finds them by their id), added ones follow, each
  // group in page order: Django renames rows by page order when an added row is removed.
  function renameLineForms(group) {
    const prefix = group.dataset.linePrefix;
    const rows = lineRows(group);
    const saved = rows.filter(isSaved);
    const added = rows.filter((row) => !saved.includes(row));
    saved.concat(added).forEach((row, index) => {
      reindex(row, prefix, index);
      const errors = row.previousElementSibling;
      if (errors && errors.classList.contains("row-form-errors")) reindex(errors, prefix, index);
    });
  }

  function isSaved(row) {
    const id = row.querySelector('input[name$="-id"]');
    return Boolean(id && id.value);
  }

  // A new row nobody filled in yet: the server skips it while it keeps the number it was offered.
  function isBlankNewRow(row) {
    const action = row.querySelector('select[name$="-action"]');
    const filter = row.querySelector('input[name$="-is_filter"]');
    return !isSaved(row) && !(action && action.value) && !(filter && filter.checked);
  }

  function renumberLines(group) {
    lineRows(group).filter((row) => !isBlankNewRow(row)).forEach((row, index) => {
      const input = lineNoInput(row);
      if (input) input.value = String((index + 1) * LINE_STEP);
    });
    renameLineForms(group);
  }

  // A new row being filled in takes a number of its own if a reordering gave its number to another line.
  function keepNumberFree(group, row) {
    const input = lineNoInput(row);
    if (!input || isSaved(row)) return;
    const taken = lineRows(group).filter((other) => other !== row && !isBlankNewRow(other)).map(
      (other) => (lineNoInput(other) || {}).value);
    if (taken.includes(input.value)) input.value = String(nextLineNo(group, row));
  }

  function moveRow(row, target, before) {
    const errors = row.previousElementSibling;
    const anchor = before ? target : target.nextElementSibling;
    const parent = target.parentNode;
    const targetErrors = target.previousElementSibling;
    const insertAt = before && targetErrors && targetErrors.classList.contains("row-form-errors") ? targetErrors
      : anchor;
    parent.insertBefore(row, insertAt);
    if (errors && errors.classList.contains("row-form-errors")) parent.insertBefore(errors, row);
  }

  function nextLineNo(group, except) {
    const numbers = lineRows(group).filter((row) => row !== except).map(
      (row) => parseInt((lineNoInput(row) || {}).value, 10)).filter((n) => !isNaN(n));
    return (Math.floor(Math.max(0, ...numbers) / LINE_STEP) + 1) * LINE_STEP;
  }

  function showFilterFields(group) {
    if (!group.querySelector('input[name$="-is_filter"]')) return;  // a read-only page shows what is stored
    let anyFilter = false;
    for (const row of lineRows(group)) {
      const box = row.querySelector('input[name$="-is_filter"]');
      const filter = Boolean(box && box.checked);
      anyFilter = anyFilter || filter;
      row.classList.toggle("line-not-filter", !filter);
    }
    group.classList.toggle("no-filter-lines", !anyFilter);
  }

  function wireLine(group, row) {
    if (!row || row.classList.contains("empty-form") || row.dataset.lineWired) return;
    row.dataset.lineWired = "1";
    const box = row.querySelector('input[name$="-is_filter"]');
    if (box) box.addEventListener("change", () => { showFilterFields(group); keepNumberFree(group, row); });
    const action = row.querySelector('select[name$="-action"]');
    if (action) action.addEventListener("change", () => keepNumberFree(group, row));
    const input = lineNoInput(row);
    if (!input) return;  // read-only page
    const tools = document.createElement("span");
    tools.className = "line-tools";
    const handle = document.createElement("span");
    handle.className = "line-drag";
    handle.draggable = true;
    handle.title = "Drag to move this line";
    handle.textContent = "⠿";
    handle.addEventListener("dragstart", (event) => {
      dragged = row;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", input.value);
      row.classList.add("line-dragging");
    });
    handle.addEventListener("dragend", () => { row.classList.remove("line-dragging"); dragged = null; });
    tools.appendChild(handle);
    for (const [label, step] of [["▲", -1], ["▼", 1]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "line-move";
      button.textContent = label;
      button.setAttribute("aria-label", step < 0 ? "Move this line up" : "Move this line down");
      button.addEventListener("click", () => {
        const rows = lineRows(group);
        const target = rows[rows.indexOf(row) + step];
        if (!target) return;
        moveRow(row, target, step < 0);
        renumberLines(group);
        button.focus();
      });
      tools.appendChild(button);
    }
    input.parentNode.insertBefore(tools, input.nextSibling);
    row.addEventListener("dragover", (event) => {
      if (dragged && dragged !== row) { event.preventDefault(); event.dataTransfer.dropEffect = "move"; }
    });
    row.addEventListener("drop", (event) => {
      if (!dragged || dragged === row) return;
      event.preventDefault();
      const box = row.getBoundingClientRect();
      moveRow(dragged, row, event.clientY < box.top + box.height / 2);
      renumberLines(group);
    });
  }

  function wireLines(group) {
    const total = group.querySelector('input[name$="-TOTAL_FORMS"]');
    if (!total) return;
    group.dataset.linePrefix = total.name.replace(/-TOTAL_FORMS$/, "");
    lineRows(group).forEach((row) => wireLine(group, row));
    showFilterFields(group);
  }

  // --- Wiring ---------------------------------------------------------------------------------------------
  function linesGroup(element) {
    const group = element && element.closest && element.closest(".inline-group");
    return group && group.querySelector('input[name$="-line_no"], tr.form-row td.field-line_no') ? group : null;
  }

  document.addEventListener("formset:added", (event) => {
    const row = event.target;
    const group = linesGroup(row);
    if (group && row.matches("tr")) {
      const input = lineNoInput(row);
      if (input && !input.value) input.value = String(nextLineNo(group, row));
      wireLine(group, row);
      showFilterFields(group);
    }
    wireSchedule(row.closest ? row.closest(".inline-related") || row : row);
  });
  document.addEventListener("formset:removed", () => {
    // Django renames the remaining rows by page order right after this event: put saved lines first again.
    setTimeout(() => document.querySelectorAll(".inline-group[data-line-prefix]").forEach(renameLineForms), 0);
  });

  function wireAll() {
    document.querySelectorAll(".param-editor").forEach(wireParamEditor);
    document.querySelectorAll(".report-editor").forEach(wireReport);
    document.querySelectorAll(".inline-related").forEach(wireSchedule);
    document.querySelectorAll(".inline-group").forEach((group) => {
      if (group.querySelector("td.field-line_no")) wireLines(group);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireAll);
  else wireAll();
})();
