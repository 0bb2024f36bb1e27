// The web admin's entry point: login, the header, and a hash router.
//
// Routes live in the URL fragment (#/env/work%2Fapi/dev) so the server only
// ever serves index.html and the static files, and a link can be bookmarked.

import { onSignedOut } from "./api.js";
import { button, h, notice } from "./dom.js";
import { hasWebCrypto } from "./seal.js";
import * as vault from "./vault.js";
import { showAudit, showDevices, showTokens } from "./views/admin.js";
import { showApp, showApps } from "./views/apps.js";
import { showDiff } from "./views/diff.js";
import { showEdit } from "./views/edit.js";
import { showHistory, showRevision } from "./views/env.js";
import { showLogin } from "./views/login.js";

const ROUTES = [
  [["apps"], showApps],
  [["app", ":app"], showApp],
  [["env", ":app", ":env"], showRevision],
  [["env", ":app", ":env", "rev", ":rev"], showRevision],
  [["env", ":app", ":env", "history"], showHistory],
  [["env", ":app", ":env", "diff"], showDiff],
  [["env", ":app", ":env", "diff", ":from", ":to"], showDiff],
  [["env", ":app", ":env", "edit"], showEdit],
  [["devices"], showDevices],
  [["tokens"], showTokens],
  [["audit"], showAudit],
  [["audit", ":app"], showAudit],
];
const NAV = [
  ["#/apps", "Apps"],
  ["#/devices", "Devices"],
  ["#/tokens", "Tokens"],
  ["#/audit", "Audit log"],
];

const root = document.getElementById("root");
let signedIn = false;
let generation = 0;
let flash = null;

function match(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  for (const [pattern, view] of ROUTES) {
    if (pattern.length !== parts.length) continue;
    const params = {};
    const fits = pattern.every((part, i) => {
      if (part.startsWith(":")) params[part.slice(1)] = decodeURIComponent(parts[i]);
      return part.startsWith(":") || part === parts[i];
    });
    if (fits) return { view, params };
  }
  return { view: showApps, params: {} };
}

function header() {
  const here = location.hash || "#/apps";
  const items = NAV.map(([href, label]) => {
    const current = here === href || here.startsWith(`${href}/`) ? "page" : null;
    return h("li", {}, h("a", { href, "aria-current": current }, label));
  });
  const out = button("Log out", signOut, { class: "logout" });
  return h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/apps" }, "dotMage"),
    h("nav", { "aria-label": "Main" }, h("ul", {}, items)),
    out,
  );
}

function insecureBanner() {
  if (hasWebCrypto()) return null;
  return notice(
    "warning insecure",
    "This page came over plain HTTP from an address that is not localhost, so the " +
      "browser offers no WebCrypto: decrypting needs HTTPS or localhost. Apps, envs, " +
      "history, devices, tokens and the audit log still work; values stay sealed.",
  );
}

/** Draw the current route; a newer navigation makes older renders stop. */
export async function render() {
  if (!signedIn) return;
  const mine = ++generation;
  const main = h("main", { id: "main", tabindex: "-1" });
  root.replaceChildren(header(), insecureBanner() ?? "", main);
  if (flash) main.append(notice("info", flash));
  flash = null;
  const { view, params } = match(location.hash);
  const page = {
    stale: () => mine !== generation,
    rerender: render,
    flash: (message) => {
      flash = message;
    },
  };
  try {
    await view(main, params, page);
  } catch (error) {
    if (mine === generation) main.append(notice("error", error.message));
  }
  if (mine === generation)
    (main.querySelector("h1") ?? main).focus({ preventScroll: true });
}

async function signOut() {
  signedIn = false;
  await vault.signOut();
  login(
    notice("info", "Logged out: the account key is forgotten and the session ended."),
  );
}

function login(message = null) {
  signedIn = false;
  vault.forget();
  showLogin(root, message, () => {
    signedIn = true;
    if (!location.hash || location.hash === "#/") location.hash = "#/apps";
    render();
  });
}

onSignedOut((reason) => {
  if (!signedIn) return;
  login(
    notice("error", `The server ended this session (${reason}). Paste a new code.`),
  );
});

window.addEventListener("hashchange", render);

// Closing or reloading the tab forgets the key, so end the server session too;
// a page restored from the back-forward cache must ask for a new code.
window.addEventListener("pagehide", () => {
  if (signedIn) vault.signOut({ keepalive: true });
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) login();
});

login();
