// What the signed-in tab holds and opens: the account key, env keys, revisions.
//
// The account key lives only in this module's memory, as a non-extractable
// CryptoKey: a reload or a closed tab forgets it, and the next visit needs a
// new login code. The server only ever sees sealed values.

import { api, ApiError, logout, paths } from "./api.js";
import * as seal from "./seal.js";

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
let accountKey = null;

/** Redeem a login code: send the proof, open the account key with the secret. */
export async function login(code) {
  const { tokenId, secret } = seal.parseLoginCode(code);
  const { sealKey, proof } = await seal.loginKeys(secret);
  // kind "login": a device enrollment token pasted here is refused unspent.
  const reply = await api("POST", "/auth/enroll", {
    token_id: tokenId,
    proof,
    kind: "login",
  });
  if (!seal.hasWebCrypto()) return;

  const sealingKey = await seal.importKey(sealKey);
  let opened;
  try {
    const sealed = reply.sealed_account_key;
    opened = await seal.unseal(sealingKey, sealed, seal.aad.enroll(tokenId));
  } catch {
    await logout();
    throw new Error("the account key sent for this code does not open with it");
  }
  accountKey = await seal.importKey(opened);
  opened.fill(0);
}

export function canDecrypt() {
  return accountKey !== null;
}

/** Forget the account key and end the server session. */
export async function signOut(options) {
  accountKey = null;
  await logout(options);
}

export function forget() {
  accountKey = null;
}

async function envKey(app, env) {
  const info = await api("GET", paths.env(app, env));
  try {
    const raw = await seal.unseal(
      accountKey,
      info.sealed_key,
      seal.aad.envKey(app, env),
    );
    return { key: await seal.importKey(raw), info };
  } catch {
    throw new Error(
      `the env key the server sent for ${app} env ${env} fails authentication ` +
        "(tampered, or another env's key): refusing it",
    );
  }
}

/** The env's metadata and, when this tab can decrypt, its key. */
export async function openEnv(app, env) {
  if (!canDecrypt()) return { key: null, info: await api("GET", paths.env(app, env)) };
  return envKey(app, env);
}

/** One revision ("latest" or a number), decrypted: its text exactly as pushed. */
export async function openRevision(app, env, key, which = "latest") {
  const reply = await api("GET", `${paths.revisions(app, env)}/${which}`);
  if (which !== "latest" && reply.number !== Number(which)) {
    throw new Error(`asked for revision ${which}, the server sent ${reply.number}`);
  }
  let document;
  try {
    const plain = await seal.unseal(key, reply.blob, seal.aad.revision(app, env));
    document = JSON.parse(decoder.decode(plain));
  } catch {
    throw new Error(
      `revision ${reply.number} of ${app} env ${env} fails authentication ` +
        "(tampered, or it belongs to another app or env): refusing it",
    );
  }
  if (document.format !== "dotenv" || typeof document.text !== "string") {
    throw new Error(`revision ${reply.number} is in a format this page cannot show`);
  }
  const { blob, ...metadata } = reply;
  return { ...metadata, text: document.text };
}

/** Seal text under the env key and push it on top of base; 409 if stale. */
export async function push(app, env, key, base, text, extra = {}) {
  const document = JSON.stringify({ format: "dotenv", text });
  const blob = await seal.seal(
    key,
    encoder.encode(document),
    seal.aad.revision(app, env),
  );
  return api("POST", paths.revisions(app, env), {
    base_revision: base,
    blob,
    ...extra,
  });
}

/**
 * A new env under a fresh env key. With source, the source's latest text is
 * opened here and sealed again under the new key, as a "copy" revision 1.
 */
export async function createEnv(app, name, source = null) {
  const copied = source ? await latestRevision(app, source) : null;
  const raw = seal.newKeyBytes();
  const sealedKey = await seal.seal(accountKey, raw, seal.aad.envKey(app, name));
  const key = await seal.importKey(raw);
  raw.fill(0);

  await api("POST", paths.envs(app), { name, sealed_key: sealedKey });
  if (copied === null) return;
  const extra = { kind: "copy", source_revision: copied.number };
  await push(app, name, key, 0, copied.text, extra);
}

async function latestRevision(app, env) {
  const { key, info } = await envKey(app, env);
  if (info.latest_revision === 0) return null;
  return openRevision(app, env, key);
}

export function isConflict(error) {
  return error instanceof ApiError && error.status === 409;
}
