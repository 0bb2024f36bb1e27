// The sealed-value formats of DESIGN.md section 2, on WebCrypto.
//
// A sealed value is base64url(0x01 | nonce (12) | ciphertext | tag (16)), and
// its associated data names what it is, so a server that hands back another
// env's key or blob fails authentication here. Keys live as non-extractable
// CryptoKeys: once opened, their bytes are out of reach of the page's code.

import { hkdfSha256 } from "./sha256.js";

const SEAL_VERSION = 1;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
const KEY_SIZE = 32;
const LOGIN_PREFIX = "dmage_etok_";
const encoder = new TextEncoder();

/** Any failure to open a sealed value: wrong key, wrong AAD or tampered. */
export class DecryptError extends Error {
  constructor(message = "authentication failed") {
    super(message);
    this.name = "DecryptError";
  }
}

/** Whether this page may decrypt: WebCrypto exists only on HTTPS or localhost. */
export function hasWebCrypto() {
  return Boolean(globalThis.isSecureContext && globalThis.crypto?.subtle);
}

export function b64encode(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function b64decode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new DecryptError("not base64url text");
  }
  const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
  let binary;
  try {
    binary = atob(padded.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw new DecryptError("not base64url text");
  }
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** Associated data: the fields joined by NUL, as crypto.py writes them. */
export const aad = {
  envKey: (app, env) => encoder.encode(`dotmage/env-key\0${app}\0${env}`),
  revision: (app, env) => encoder.encode(`dotmage/revision\0${app}\0${env}`),
  enroll: (tokenId) => encoder.encode(`dotmage/enroll\0${tokenId}`),
};

/** HKDF-SHA256 with an empty salt, like crypto.hkdf. */
export async function hkdf(secret, info, size = KEY_SIZE) {
  const infoBytes = encoder.encode(info);
  if (!hasWebCrypto()) return hkdfSha256(secret, infoBytes, size);
  const key = await crypto.subtle.importKey("raw", secret, "HKDF", false, [
    "deriveBits",
  ]);
  const parameters = {
    name: "HKDF",
    hash: "SHA-256",
    salt: new Uint8Array(0),
    info: infoBytes,
  };
  return new Uint8Array(await crypto.subtle.deriveBits(parameters, key, size * 8));
}

/** 32 raw bytes -> an AES-256-GCM key the page can use but never read back. */
export async function importKey(raw) {
  if (raw.length !== KEY_SIZE) throw new DecryptError("keys are 32 bytes");
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

export function newKeyBytes() {
  return crypto.getRandomValues(new Uint8Array(KEY_SIZE));
}

export async function seal(key, plaintext, associated) {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
  const parameters = { name: "AES-GCM", iv: nonce, additionalData: associated };
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ ...parameters, tagLength: 128 }, key, plaintext),
  );
  const out = new Uint8Array(1 + NONCE_SIZE + sealed.length);
  out[0] = SEAL_VERSION;
  out.set(nonce, 1);
  out.set(sealed, 1 + NONCE_SIZE);
  return b64encode(out);
}

/** Open a sealed value; every failure is one DecryptError. */
export async function unseal(key, sealed, associated) {
  const raw = b64decode(sealed);
  if (raw.length < 1 + NONCE_SIZE + TAG_SIZE || raw[0] !== SEAL_VERSION) {
    throw new DecryptError("not a sealed value");
  }
  const nonce = raw.subarray(1, 1 + NONCE_SIZE);
  const parameters = { name: "AES-GCM", iv: nonce, additionalData: associated };
  try {
    const body = raw.subarray(1 + NONCE_SIZE);
    const opened = await crypto.subtle.decrypt(
      { ...parameters, tagLength: 128 },
      key,
      body,
    );
    return new Uint8Array(opened);
  } catch {
    throw new DecryptError();
  }
}

/** Split a `dmage token` code into its token id and 32-byte secret. */
export function parseLoginCode(code) {
  const body = code.trim();
  if (!body.startsWith(LOGIN_PREFIX)) {
    throw new Error(`a login code starts with ${LOGIN_PREFIX}: run dmage token`);
  }
  const rest = body.slice(LOGIN_PREFIX.length);
  const cut = rest.indexOf("_");
  const tokenId = rest.slice(0, cut);
  let secret = new Uint8Array(0);
  try {
    secret = b64decode(rest.slice(cut + 1));
  } catch {
    // Reported below with the length check: one message for a damaged code.
  }
  if (cut !== 16 || !/^[0-9a-f]{16}$/.test(tokenId) || secret.length !== 32) {
    throw new Error("that login code is damaged or incomplete: copy it again");
  }
  return { tokenId, secret };
}

/** The code's secret -> the key that opens the account key, and the proof. */
export async function loginKeys(secret) {
  const sealKey = await hkdf(secret, "dotmage/enroll-kek");
  const proof = await hkdf(secret, "dotmage/enroll-auth");
  return { sealKey, proof: b64encode(proof) };
}
