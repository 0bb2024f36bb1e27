// The difference between two revisions of an env, by key, values masked.

import { parse, toDict } from "../dotenv.js";
import { button, h, notice, secretValue, table } from "../dom.js";
import * as vault from "../vault.js";
import { envHref } from "./apps.js";
import { envHeader, sealedNotice } from "./env.js";

/** Keys added, removed and changed from before to after (two Maps). */
export function compare(before, after) {
  const changes = [];
  for (const [key, value] of after) {
    if (!before.has(key)) changes.push({ key, change: "added", after: value });
    else if (before.get(key) !== value) {
      changes.push({ key, change: "changed", before: before.get(key), after: value });
    }
  }
  for (const [key, value] of before) {
    if (!after.has(key)) changes.push({ key, change: "removed", before: value });
  }
  return changes;
}

export async function showDiff(main, { app, env, from, to }, page) {
  const { key, info } = await vault.openEnv(app, env);
  if (page.stale()) return;
  main.append(...envHeader(app, env, "diff"));
  const latest = info.latest_revision;
  if (!key) return main.append(sealedNotice());
  if (latest < 2) return main.append(notice("info", "A diff needs two revisions."));

  const older = Number(from ?? latest - 1);
  const newer = Number(to ?? latest);
  main.append(picker(app, env, latest, older, newer));
  const [a, b] = await Promise.all([
    vault.openRevision(app, env, key, older),
    vault.openRevision(app, env, key, newer),
  ]);
  if (page.stale()) return;
  main.append(changesView(a, b));
}

function picker(app, env, latest, older, newer) {
  const field = (id, label, value) => [
    h("label", { for: id }, label),
    h("input", {
      id,
      type: "number",
      min: "1",
      max: String(latest),
      value: String(value),
      required: true,
    }),
  ];
  return h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        const form = event.target;
        location.hash = envHref(
          app,
          env,
          "diff",
          form["diff-from"].value,
          form["diff-to"].value,
        );
      },
    },
    field("diff-from", "From revision", older),
    field("diff-to", "to", newer),
    h("button", { type: "submit" }, "Compare"),
  );
}

function changesView(a, b) {
  let changes;
  try {
    changes = compare(toDict(parse(a.text)), toDict(parse(b.text)));
  } catch (error) {
    return notice(
      "error",
      `One of these revisions is not valid .env text: ${error.message}`,
    );
  }
  const summary = h(
    "p",
    { class: "meta" },
    `r${a.number} → r${b.number}: ` + counts(changes),
  );
  if (changes.length === 0) return h("div", {}, summary);

  const reveals = [];
  const rows = changes.map((c) => {
    const side = (value) => {
      if (value === undefined) return h("td", {}, "—");
      const secret = secretValue(c.key, value);
      reveals.push(secret.reveal);
      return secret.cell;
    };
    return h(
      "tr",
      { class: c.change },
      h("th", { scope: "row" }, h("code", {}, c.key)),
      h("td", {}, h("span", { class: `badge ${c.change}` }, c.change)),
      side(c.before),
      side(c.after),
    );
  });
  let revealed = false;
  const all = button("Reveal all", () => {
    revealed = !revealed;
    reveals.forEach((reveal) => reveal(revealed));
    all.textContent = revealed ? "Hide all" : "Reveal all";
  });
  return h(
    "div",
    {},
    summary,
    h("div", { class: "toolbar" }, all),
    table(["Key", "Change", `r${a.number}`, `r${b.number}`], rows, { class: "diff" }),
  );
}

function counts(changes) {
  const tally = { added: 0, removed: 0, changed: 0 };
  for (const c of changes) tally[c.change] += 1;
  if (changes.length === 0) return "no key changed.";
  return `${tally.added} added, ${tally.removed} removed, ${tally.changed} changed.`;
}
