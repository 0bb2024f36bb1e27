// Devices and tokens (listed and revocable), and the audit log by app.

import { api } from "../api.js";
import { button, confirmInline, h, notice, row, table, when } from "../dom.js";

const AUDIT_LIMIT = 200;

function revokeButton(label, what, holder, path, page) {
  const trigger = button(
    "Revoke",
    () =>
      confirmInline(holder, {
        message: `Revoke ${what}? It stops working on its next request, for good.`,
        action: `Revoke ${label}`,
        back: trigger,
        onConfirm: async () => {
          await api("DELETE", path);
          page.flash(`Revoked ${what}.`);
          await page.rerender();
        },
      }),
    { class: "small danger", "aria-label": `Revoke ${label}` },
  );
  return trigger;
}

export async function showDevices(main, _params, page) {
  const { devices } = await api("GET", "/devices");
  if (page.stale()) return;
  const holder = h("div", { class: "confirm-holder" });
  const rows = devices.map((device) => {
    const state = device.revoked_at ? `revoked ${when(device.revoked_at)}` : "active";
    const what = `device ${device.name} (${device.id})`;
    const action = device.revoked_at
      ? ""
      : revokeButton(device.name, what, holder, `/devices/${device.id}`, page);
    return row(
      device.name,
      h("code", {}, device.id),
      when(device.created_at),
      when(device.last_seen_at),
      state,
      action,
    );
  });
  main.append(
    h("h1", { tabindex: "-1" }, "Devices"),
    h(
      "p",
      { class: "hint" },
      "Revoking a device ends its tokens at once. It keeps " +
        "whatever it already pulled; rotate those secrets if the device is lost.",
    ),
    holder,
    table(["Name", "ID", "Added", "Last seen", "State", ""], rows, {
      class: "devices",
    }),
  );
}

export async function showTokens(main, _params, page) {
  const { tokens } = await api("GET", "/tokens");
  if (page.stale()) return;
  const holder = h("div", { class: "confirm-holder" });
  const rows = tokens.map((token) => {
    const scope = token.kind === "ci" ? `${token.app} / ${token.env}` : "account";
    const what = `${token.kind} token ${token.id}`;
    const action =
      token.state === "active"
        ? revokeButton(token.id, what, holder, `/tokens/${token.id}`, page)
        : "";
    const line = row(
      h("code", {}, token.id),
      token.kind,
      token.name ?? "",
      scope,
      when(token.created_at),
      when(token.expires_at),
      when(token.last_used_at),
      token.state,
      action,
    );
    line.classList.toggle("inactive", token.state !== "active");
    return line;
  });
  // Every login code stays listed once used: hide the spent ones by default.
  const everything = h("input", {
    type: "checkbox",
    id: "all-tokens",
    onchange: () =>
      main.querySelector("table.tokens")?.classList.toggle("all", everything.checked),
  });
  main.append(
    h("h1", { tabindex: "-1" }, "Tokens"),
    h(
      "p",
      { class: "hint" },
      "Enrollment tokens (dmage gen-token), web login codes " +
        "(dmage token) and CI tokens (dmage gen-ci-token).",
    ),
    h(
      "label",
      { class: "toolbar" },
      everything,
      " Show used, expired and revoked tokens",
    ),
    holder,
    tokens.length
      ? table(
          [
            "ID",
            "Kind",
            "Name",
            "Scope",
            "Created",
            "Expires",
            "Last used",
            "State",
            "",
          ],
          rows,
          { class: "tokens" },
        )
      : notice("info", "No tokens yet."),
  );
}

export async function showAudit(main, { app }, page) {
  const [{ entries }, { apps }] = await Promise.all([
    api("GET", "/audit", undefined, { app, limit: AUDIT_LIMIT }),
    api("GET", "/apps"),
  ]);
  if (page.stale()) return;
  const filter = h(
    "select",
    { id: "audit-app" },
    h("option", { value: "" }, "every app"),
    apps.map((a) => h("option", { value: a.name, selected: a.name === app }, a.name)),
  );
  // Navigating on submit, not on change: arrow keys in a select fire change.
  const show = (event) => {
    event.preventDefault();
    location.hash = filter.value
      ? `#/audit/${encodeURIComponent(filter.value)}`
      : "#/audit";
  };
  const rows = entries.map((e) =>
    row(
      when(e.at),
      e.actor,
      e.action,
      e.app ?? "",
      e.env ?? "",
      h("span", { class: outcomeClass(e.outcome) }, e.outcome),
      e.address,
    ),
  );
  main.append(
    h("h1", { tabindex: "-1" }, app ? `Audit log of ${app}` : "Audit log"),
    h(
      "form",
      { class: "inline", onsubmit: show },
      h("label", { for: "audit-app" }, "App"),
      filter,
      h("button", { type: "submit" }, "Show"),
    ),
    entries.length
      ? table(["Time", "Actor", "Action", "App", "Env", "Outcome", "Address"], rows, {
          class: "audit",
        })
      : notice("info", "No entries."),
    h("p", { class: "hint" }, `The newest ${AUDIT_LIMIT} entries.`),
  );
}

function outcomeClass(outcome) {
  return outcome === "ok" ? "badge ok" : "badge refused";
}
