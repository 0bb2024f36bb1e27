// Edit an env: change, add or remove keys, or the raw text; save as a revision.
//
// Key edits go through dotenv.js setValues/unsetKeys, so every other line of
// the file (comments, order, quoting, line endings) is kept byte for byte. A
// save names the revision it started from; if the env moved on meanwhile the
// server refuses it (409), exactly as `dmage push` does.

import { parse, setValues, toDict, unsetKeys } from "../dotenv.js";
import { button, h, notice } from "../dom.js";
import * as vault from "../vault.js";
import { envHref } from "./apps.js";
import { envHeader, sealedNotice } from "./env.js";

export async function showEdit(main, { app, env }, page) {
  const { key, info } = await vault.openEnv(app, env);
  if (page.stale()) return;
  main.append(...envHeader(app, env, "edit"));
  if (!key) return main.append(sealedNotice());

  const revision = info.latest_revision
    ? await vault.openRevision(app, env, key, "latest")
    : { number: 0, text: "" };
  if (page.stale()) return;
  main.append(
    editor({ app, env, key, page, base: revision.number, text: revision.text }),
  );
}

/** Values of the text by key, or null when the text is not valid .env. */
function valuesOf(text) {
  try {
    return toDict(parse(text));
  } catch {
    return null;
  }
}

function editor(state) {
  const status = h("div", { class: "status", "aria-live": "polite" });
  const holder = h("div");
  const keysButton = button("Keys", () => switchTo("keys"), { "aria-pressed": "true" });
  const rawButton = button("Raw text", () => switchTo("raw"), {
    "aria-pressed": "false",
  });
  let mode = valuesOf(state.text) === null ? "raw" : "keys";
  let form = null;

  function switchTo(next) {
    if (next === mode && form) return;
    let draft;
    try {
      draft = form ? form.text() : state.text;
    } catch (error) {
      return status.replaceChildren(notice("error", error.message));
    }
    if (next === "keys" && valuesOf(draft) === null) {
      return status.replaceChildren(notice("error", rawProblem(draft)));
    }
    mode = next;
    keysButton.setAttribute("aria-pressed", String(mode === "keys"));
    rawButton.setAttribute("aria-pressed", String(mode === "raw"));
    form = mode === "keys" ? keysForm(draft) : rawForm(draft, state.text);
    holder.replaceChildren(form.element);
    status.replaceChildren();
  }

  const save = h(
    "button",
    { type: "submit", class: "primary" },
    "Save as a new revision",
  );
  const element = h(
    "form",
    {
      class: "editor",
      onsubmit: (event) => {
        event.preventDefault();
        saveDraft(state, form, save, status);
      },
    },
    h(
      "p",
      { class: "meta" },
      state.base
        ? `Editing revision ${state.base}. Saving makes revision ${state.base + 1}.`
        : "This env has no revision yet: saving makes revision 1.",
    ),
    h(
      "div",
      { class: "toolbar", role: "group", "aria-label": "Edit mode" },
      keysButton,
      rawButton,
    ),
    holder,
    h("div", { class: "toolbar" }, save),
    status,
  );
  switchTo(mode);
  return element;
}

function rawProblem(text) {
  try {
    parse(text);
    return "";
  } catch (error) {
    return `The text is not valid .env (${error.message}); fix it in the raw editor.`;
  }
}

async function saveDraft(state, form, save, status) {
  let text;
  try {
    text = form.text();
  } catch (error) {
    status.replaceChildren(notice("error", error.message));
    return;
  }
  if (valuesOf(text) === null)
    return status.replaceChildren(notice("error", rawProblem(text)));
  if (text === state.text)
    return status.replaceChildren(notice("info", "Nothing changed."));

  save.disabled = true;
  status.replaceChildren("Sealing and saving…");
  try {
    const pushed = await vault.push(state.app, state.env, state.key, state.base, text);
    state.page.flash(`Saved revision ${pushed.number}.`);
    location.hash = envHref(state.app, state.env);
  } catch (error) {
    save.disabled = false;
    status.replaceChildren(
      vault.isConflict(error) ? conflict(state, error) : notice("error", error.message),
    );
  }
}

function conflict(state, error) {
  const latest = error.detail.latest_revision;
  return notice(
    "error conflict",
    h("strong", {}, "Not saved: this env moved on. "),
    `Revision ${latest ?? "?"} was saved after you opened revision ${state.base}, so ` +
      "your save was refused rather than overwrite it. Copy your changes if you need " +
      "them, reload, and make them again on top of the latest revision. ",
    button("Reload the latest revision", () => state.page.rerender(), {
      class: "primary",
    }),
  );
}

// -- the raw text -----------------------------------------------------------------

function rawForm(draft, original) {
  const area = h("textarea", {
    id: "raw-text",
    rows: String(Math.min(30, Math.max(8, draft.split("\n").length + 2))),
    spellcheck: "false",
    autocomplete: "off",
    "aria-label": "Raw .env text",
  });
  area.value = draft;
  // A textarea turns every line ending into LF; a file that used CRLF gets
  // its CRLF back, so a small edit does not rewrite every line.
  const crlf = /\r\n/.test(original) && !/(^|[^\r])\n/.test(original);
  return {
    element: h(
      "div",
      {},
      h("p", { class: "hint" }, "Values are shown in clear text here."),
      area,
    ),
    text: () => (crlf ? area.value.replace(/\r?\n/g, "\r\n") : area.value),
  };
}

// -- keys and values --------------------------------------------------------------

function keysForm(draft) {
  const values = valuesOf(draft);
  const rows = [...values].map(([key, value]) => keyRow(key, value, false));
  const body = h(
    "tbody",
    {},
    rows.map((r) => r.element),
  );
  const show = h("input", {
    type: "checkbox",
    id: "show-values",
    onchange: () => rows.forEach((r) => r.show(show.checked)),
  });
  const add = button("Add a key", () => {
    const fresh = keyRow("", "", true);
    rows.push(fresh);
    fresh.show(show.checked);
    body.append(fresh.element);
    fresh.focus();
  });
  const element = h(
    "div",
    {},
    h("div", { class: "toolbar" }, h("label", {}, show, " Show values"), add),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "edit" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Key", "Value", ""].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        body,
      ),
    ),
  );
  return { element, text: () => editedText(draft, values, rows) };
}

function keyRow(key, value, isNew) {
  const multiline = value.includes("\n");
  const name = isNew
    ? h("input", {
        type: "text",
        class: "key",
        "aria-label": "New key",
        spellcheck: "false",
        autocomplete: "off",
      })
    : h("code", {}, key);
  const label = isNew ? "Value of the new key" : `Value of ${key}`;
  const input = multiline
    ? h("textarea", { rows: "3", "aria-label": label, spellcheck: "false" })
    : h("input", {
        type: "password",
        "aria-label": label,
        spellcheck: "false",
        autocomplete: "off",
      });
  input.value = value;
  let removed = false;
  const remove = button(
    "Remove",
    () => {
      removed = !removed;
      element.classList.toggle("removed", removed);
      remove.textContent = removed ? "Keep" : "Remove";
      input.disabled = removed;
    },
    { class: "small", "aria-label": isNew ? "Remove the new key" : `Remove ${key}` },
  );
  // A multi-line value cannot be masked in a textarea: it stays hidden until
  // "Show values" is ticked.
  const hiddenNote = multiline
    ? h("span", { class: "hint" }, "multi-line value, hidden")
    : null;
  const element = h(
    "tr",
    {},
    h("th", { scope: "row" }, name),
    h("td", {}, input, hiddenNote),
    h("td", {}, remove),
  );
  const show = (on) => {
    if (!multiline) input.type = on ? "text" : "password";
    else [input.hidden, hiddenNote.hidden] = [!on, on];
  };
  show(false);
  return {
    element,
    show,
    focus: () => name.focus(),
    read: () => ({
      key: isNew ? name.value.trim() : key,
      value: input.value,
      isNew,
      removed,
    }),
  };
}

/** The draft with the table's changes applied, other lines untouched. */
function editedText(draft, values, rows) {
  const updates = new Map();
  const doomed = [];
  for (const { key, value, isNew, removed } of rows.map((r) => r.read())) {
    if (isNew && (removed || (key === "" && value === ""))) continue;
    if (!isNew && removed) doomed.push(key);
    else if (isNew && key === "") throw new Error("A new key needs a name.");
    else if (
      isNew &&
      (updates.has(key) || (values.has(key) && !doomed.includes(key)))
    ) {
      throw new Error(`${key} is already in this env: change its value above instead.`);
    } else if (isNew || values.get(key) !== value) updates.set(key, value);
  }
  return setValues(unsetKeys(draft, doomed), updates);
}
