// The login screen: paste the one-time code from `dmage token`.

import { h, notice } from "../dom.js";
import { hasWebCrypto } from "../seal.js";
import * as vault from "../vault.js";

export function showLogin(root, message, done) {
  const code = h("input", {
    id: "login-code",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "dmage_etok_…",
    "aria-describedby": "login-help",
  });
  const status = h("div", { class: "status", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: (event) => {
        event.preventDefault();
        redeem(code, submit, status, done);
      },
    },
    h("label", { for: "login-code" }, "Login code"),
    code,
    submit,
    status,
  );

  root.replaceChildren(
    h(
      "main",
      { class: "login-page" },
      h("h1", {}, "dotMage web admin"),
      message,
      hasWebCrypto() ? null : insecureNotice(),
      h(
        "p",
        { id: "login-help" },
        "Run ",
        h("code", {}, "dmage token"),
        " on a signed-in device and paste the " +
          "code here. It works once, for 5 minutes. The page derives a proof from it " +
          "locally and sends only that proof; the code itself never leaves this tab.",
      ),
      form,
      h(
        "p",
        { class: "hint" },
        "The account key is kept in this tab's memory only: reloading or closing the " +
          "page forgets it and ends the session, and the next visit needs a new code.",
      ),
    ),
  );
  code.focus();
}

function insecureNotice() {
  return notice(
    "warning insecure",
    "This page came over plain HTTP from an address that is not localhost, so the " +
      "browser offers no WebCrypto: decrypting needs HTTPS or localhost. You can " +
      "still log in to see apps, envs, history, devices, tokens and the audit log.",
  );
}

async function redeem(code, submit, status, done) {
  submit.disabled = true;
  status.replaceChildren("Checking the code…");
  try {
    await vault.login(code.value);
    done();
  } catch (error) {
    status.replaceChildren(notice("error", error.message));
    submit.disabled = false;
    code.select();
  }
}
