// Small DOM helpers: elements, tables, notices, masked values, confirmations.
//
// Everything is built with createElement and text nodes, never innerHTML, so a
// key or value from a revision can never become markup.

const MASK = "••••••••";

/** h("button", {class: "x", onclick: fn}, "text", child...) */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== false));
  return element;
}

export function link(href, ...children) {
  return h("a", { href }, ...children);
}

export function button(label, onclick, props = {}) {
  return h("button", { type: "button", onclick, ...props }, label);
}

/** A table inside a box that scrolls sideways on a narrow screen. */
export function table(headers, rows, props = {}) {
  const head = h(
    "thead",
    {},
    h(
      "tr",
      {},
      headers.map((t) => h("th", { scope: "col" }, t)),
    ),
  );
  const body = h("tbody", {}, rows);
  return h("div", { class: "scroll" }, h("table", props, head, body));
}

export function row(...cells) {
  return h(
    "tr",
    {},
    cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))),
  );
}

/** A message box; errors are announced at once to screen readers. */
export function notice(kind, ...children) {
  const role = kind.split(" ").includes("error") ? "alert" : "status";
  return h("div", { class: `notice ${kind}`, role }, ...children);
}

/** Unix seconds -> "2025-05-01 14:03" in local time. */
export function when(seconds) {
  if (!seconds) return "—";
  const date = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const day = [date.getFullYear(), pad(date.getMonth() + 1), pad(date.getDate())];
  return `${day.join("-")} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A secret value: masked until revealed, with Reveal and Copy buttons.
 * Returns {cell, reveal(bool)} so a "Reveal all" button can drive every one.
 */
export function secretValue(key, value) {
  const shown = h("code", { class: "value masked" }, MASK);
  const toggle = button("Reveal", () => reveal(shown.classList.contains("masked")), {
    class: "small",
    "aria-label": `Reveal ${key}`,
  });
  const copy = button(
    "Copy",
    async () => {
      const done = await copyText(value);
      copy.textContent = done ? "Copied" : "Copy failed";
    },
    { class: "small", "aria-label": `Copy ${key}` },
  );

  function reveal(on) {
    shown.classList.toggle("masked", !on);
    shown.textContent = on ? (value === "" ? "(empty)" : value) : MASK;
    toggle.textContent = on ? "Hide" : "Reveal";
    toggle.setAttribute("aria-label", `${on ? "Hide" : "Reveal"} ${key}`);
  }
  const cell = h(
    "td",
    {},
    h("div", { class: "secret" }, shown, h("span", { class: "actions" }, toggle, copy)),
  );
  return { cell, reveal };
}

/**
 * Ask before a destructive action, inline in holder (no modal dialog). With
 * typed, the user must type that word first, as for deleting an env.
 */
export function confirmInline(
  holder,
  { message, action, typed = null, onConfirm, back },
) {
  const input = typed
    ? h("input", {
        type: "text",
        autocomplete: "off",
        "aria-label": `Type ${typed} to confirm`,
      })
    : null;
  const go = button(
    action,
    async () => {
      if (typed && input.value !== typed) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      holder.replaceChildren();
      await onConfirm();
    },
    { class: "danger" },
  );
  const cancel = button("Cancel", () => {
    holder.replaceChildren();
    back?.focus();
  });
  const form = h(
    "form",
    {
      class: "confirm",
      onsubmit: (e) => {
        e.preventDefault();
        go.click();
      },
    },
    h("p", {}, message),
    input,
    go,
    cancel,
  );
  holder.replaceChildren(form);
  (input ?? go).focus();
}
