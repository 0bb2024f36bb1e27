// Apps grouped by folder, and one app's envs (create, copy, delete).

import { api, paths } from "../api.js";
import { button, confirmInline, h, link, notice, row, table, when } from "../dom.js";
import * as vault from "../vault.js";

export const appHref = (app) => `#/app/${encodeURIComponent(app)}`;
export const envHref = (app, env, ...rest) =>
  ["#/env", encodeURIComponent(app), env, ...rest].join("/");

/** Apps by folder: apps without a folder first, then each folder in order. */
export function byFolder(apps) {
  const folders = new Map();
  for (const app of apps) {
    const cut = app.name.lastIndexOf("/");
    const folder = cut === -1 ? "" : app.name.slice(0, cut);
    if (!folders.has(folder)) folders.set(folder, []);
    folders.get(folder).push({ ...app, short: app.name.slice(cut + 1) });
  }
  return [...folders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export async function showApps(main, _params, page) {
  const { apps } = await api("GET", "/apps");
  if (page.stale()) return;
  main.append(h("h1", { tabindex: "-1" }, "Apps"));
  if (apps.length === 0) {
    main.append(
      notice(
        "info",
        "No apps yet: create one with ",
        h("code", {}, "dmage init NAME"),
        ".",
      ),
    );
    return;
  }
  for (const [folder, members] of byFolder(apps)) {
    const rows = members.map((app) =>
      row(link(appHref(app.name), app.short), String(app.envs), when(app.updated_at)),
    );
    main.append(
      h(
        "section",
        { class: "folder" },
        h("h2", {}, folder ? `${folder}/` : "No folder"),
        table(["App", "Envs", "Last change"], rows, { class: "apps" }),
      ),
    );
  }
}

export async function showApp(main, { app }, page) {
  const { envs } = await api("GET", paths.envs(app));
  if (page.stale()) return;
  main.append(
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      link("#/apps", "Apps"),
      " / ",
    ),
    h("h1", { tabindex: "-1" }, app),
    envTable(app, envs, page),
    createForm(app, envs),
    h("p", {}, link(`#/audit/${encodeURIComponent(app)}`, `Audit log of ${app}`)),
  );
}

function envTable(app, envs, page) {
  if (envs.length === 0) return notice("info", "This app has no env yet.");
  const holder = h("div", { class: "confirm-holder" });
  const rows = envs.map((env) => {
    const remove = button(
      "Delete",
      () => askDelete(app, env.name, holder, remove, page),
      {
        class: "small danger",
        "aria-label": `Delete env ${env.name}`,
      },
    );
    return row(
      link(envHref(app, env.name), env.name),
      env.latest_revision ? `r${env.latest_revision}` : "none yet",
      when(env.updated_at),
      h(
        "span",
        { class: "actions" },
        link(envHref(app, env.name, "history"), "History"),
        remove,
      ),
    );
  });
  return h(
    "section",
    {},
    h("h2", {}, "Envs"),
    table(["Env", "Latest", "Last change", ""], rows, { class: "envs" }),
    holder,
  );
}

function askDelete(app, env, holder, back, page) {
  confirmInline(holder, {
    message:
      `Delete env ${env} of ${app} with every revision? This cannot be ` +
      `undone. Type ${env} to confirm.`,
    action: `Delete ${env}`,
    typed: env,
    back,
    onConfirm: async () => {
      await api("DELETE", paths.env(app, env));
      await page.rerender();
    },
  });
}

function createForm(app, envs) {
  const name = h("input", {
    id: "new-env",
    required: true,
    pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,31}",
  });
  const source = h(
    "select",
    { id: "copy-from" },
    h("option", { value: "" }, "nothing (empty env)"),
    envs
      .filter((e) => e.latest_revision > 0)
      .map((e) => h("option", { value: e.name }, e.name)),
  );
  const status = h("div", { "aria-live": "polite" });
  const submit = h(
    "button",
    { type: "submit", disabled: !vault.canDecrypt() },
    "Create env",
  );

  async function create(event) {
    event.preventDefault();
    submit.disabled = true;
    status.replaceChildren("Creating…");
    try {
      await vault.createEnv(app, name.value, source.value || null);
      location.hash = envHref(app, name.value);
    } catch (error) {
      status.replaceChildren(notice("error", error.message));
      submit.disabled = false;
    }
  }
  return h(
    "section",
    {},
    h("h2", {}, "New env"),
    vault.canDecrypt()
      ? null
      : notice(
          "warning",
          "Creating an env needs the account key: decrypting needs HTTPS or localhost.",
        ),
    h(
      "form",
      { class: "inline", onsubmit: create },
      h("label", { for: "new-env" }, "Name"),
      name,
      h("label", { for: "copy-from" }, "Copy from"),
      source,
      submit,
    ),
    status,
  );
}
