// One env: a revision as a table of masked values, and the revision history.

import { api, paths } from "../api.js";
import { parse, toDict } from "../dotenv.js";
import {
  button,
  confirmInline,
  copyText,
  h,
  link,
  notice,
  row,
  secretValue,
  table,
  when,
} from "../dom.js";
import * as vault from "../vault.js";
import { appHref, envHref } from "./apps.js";

const HISTORY_PAGE = 50;

/** Breadcrumbs, title and the env's tabs, shared by every env screen. */
export function envHeader(app, env, current) {
  const tabs = [
    ["", "Secrets"],
    ["history", "History"],
    ["diff", "Diff"],
    ["edit", "Edit"],
  ].map(([path, label]) => {
    const href = path ? envHref(app, env, path) : envHref(app, env);
    const here = path === current ? "page" : null;
    return h("li", {}, h("a", { href, "aria-current": here }, label));
  });
  return [
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      link("#/apps", "Apps"),
      " / ",
      link(appHref(app), app),
      " / ",
    ),
    h("h1", { tabindex: "-1" }, `${app} · ${env}`),
    h("nav", { class: "tabs", "aria-label": "Env" }, h("ul", {}, tabs)),
  ];
}

export function describe(revision) {
  const source = revision.source_revision ? ` of r${revision.source_revision}` : "";
  return `${revision.kind}${source}`;
}

export const sealedNotice = () =>
  notice("warning", "Values stay sealed here: decrypting needs HTTPS or localhost.");

/** The latest revision, or #/env/APP/ENV/rev/N, as a table of masked values. */
export async function showRevision(main, { app, env, rev }, page) {
  const { key, info } = await vault.openEnv(app, env);
  if (page.stale()) return;
  main.append(...envHeader(app, env, ""));
  if (info.latest_revision === 0) {
    main.append(
      notice(
        "info",
        "No revision yet. ",
        link(envHref(app, env, "edit"), "Write the first one"),
        ".",
      ),
    );
    return;
  }
  if (!key) {
    main.append(
      sealedNotice(),
      h(
        "p",
        {},
        `Latest revision: r${info.latest_revision}. `,
        link(envHref(app, env, "history"), "See the history"),
        ".",
      ),
    );
    return;
  }
  const revision = await vault.openRevision(app, env, key, rev ?? "latest");
  if (page.stale()) return;
  main.append(revisionLine(app, env, revision, page), revisionBody(revision));
}

function revisionLine(app, env, revision, page) {
  const older = revision.number !== revision.latest_revision;
  const line = h(
    "p",
    { class: "meta" },
    `Revision ${revision.number} of ${revision.latest_revision} · `,
    `${when(revision.created_at)} · ${revision.device} · ${describe(revision)}`,
  );
  if (!older) return line;
  const holder = h("div", { class: "confirm-holder" });
  const back = rollbackButton(app, env, revision.number, holder, page);
  return h(
    "div",
    {},
    line,
    notice(
      "info",
      `This is an older revision; the latest is r${revision.latest_revision}. `,
      link(envHref(app, env), "Show the latest"),
      " ",
      back,
    ),
    holder,
  );
}

function revisionBody(revision) {
  let values;
  try {
    values = toDict(parse(revision.text));
  } catch (error) {
    return h(
      "div",
      {},
      notice("error", `This revision is not valid .env text: ${error.message}`),
      rawView(revision.text, true),
    );
  }
  const cells = [...values].map(([key, value]) => ({
    key,
    ...secretValue(key, value),
  }));
  const rows = cells.map(({ key, cell }) =>
    h("tr", {}, h("th", { scope: "row" }, h("code", {}, key)), cell),
  );
  let revealed = false;
  const all = button("Reveal all", () => {
    revealed = !revealed;
    cells.forEach((c) => c.reveal(revealed));
    all.textContent = revealed ? "Hide all" : "Reveal all";
  });
  const copyAll = button("Copy .env", async () => {
    copyAll.textContent = (await copyText(revision.text)) ? "Copied" : "Copy failed";
  });
  return h(
    "div",
    {},
    h("div", { class: "toolbar" }, h("span", {}, `${values.size} keys`), all, copyAll),
    values.size ? table(["Key", "Value"], rows, { class: "secrets" }) : null,
    rawView(revision.text, false),
  );
}

/** The raw text, put in the page only while open: nothing to find in the DOM. */
function rawView(text, open) {
  const code = h("code");
  const details = h(
    "details",
    {
      class: "raw",
      ontoggle: () => {
        code.textContent = details.open ? text : "";
      },
    },
    h("summary", {}, "Raw .env text"),
    h("pre", {}, code),
  );
  details.open = open;
  return details;
}

function rollbackButton(app, env, number, holder, page) {
  const trigger = button(
    `Roll back to r${number}`,
    () =>
      confirmInline(holder, {
        message:
          `Make a new revision with the content of r${number}? Nothing is deleted: ` +
          "the history keeps every revision.",
        action: `Roll back to r${number}`,
        back: trigger,
        onConfirm: async () => {
          const done = await api("POST", paths.rollback(app, env), {
            revision: number,
          });
          page.flash(`Rolled back: revision ${done.number} copies r${number}.`);
          location.hash = envHref(app, env);
        },
      }),
    { class: "small" },
  );
  return trigger;
}

/** Revisions newest first, with view, diff and rollback. */
export async function showHistory(main, { app, env }, page) {
  const first = await history(app, env);
  if (page.stale()) return;
  main.append(...envHeader(app, env, "history"));
  if (first.revisions.length === 0) {
    main.append(notice("info", "No revision yet."));
    return;
  }
  const holder = h("div", { class: "confirm-holder" });
  const listing = table(["Revision", "Time", "Device", "Kind", ""], [], {
    class: "history",
  });
  const body = listing.querySelector("tbody");
  const more = h("div");
  main.append(holder, listing, more);
  addPage(app, env, first, body, more, holder, page);
}

function history(app, env, before) {
  return api("GET", paths.revisions(app, env), undefined, {
    limit: HISTORY_PAGE,
    before,
  });
}

function addPage(app, env, listing, body, more, holder, page) {
  for (const revision of listing.revisions) {
    body.append(historyRow(app, env, revision, listing.latest_revision, holder, page));
  }
  more.replaceChildren();
  if (listing.next_before === null) return;
  const older = button("Older revisions", async () => {
    const next = await history(app, env, listing.next_before);
    addPage(app, env, next, body, more, holder, page);
  });
  more.append(older);
}

function historyRow(app, env, revision, latest, holder, page) {
  const n = revision.number;
  const actions = [link(envHref(app, env, "rev", n), "View")];
  if (vault.canDecrypt() && n > 1) {
    actions.push(link(envHref(app, env, "diff", n - 1, n), "Diff"));
  }
  if (n !== latest) actions.push(rollbackButton(app, env, n, holder, page));
  return row(
    `r${n}`,
    when(revision.created_at),
    revision.device,
    describe(revision),
    h("span", { class: "actions" }, actions),
  );
}
