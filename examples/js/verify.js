// Verify a Dakghar webhook signature (Node 20, no packages).
//
//   Dakghar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>...]
//
// The HMAC key is the account's webhook secret (GET /v1/account/webhook-secret) and the signed
// text is "<t>.<raw body>". During a secret rotation the header carries one v1 per secret, so any
// match is enough. A timestamp more than 300 s away from now is refused, so a captured request
// cannot be replayed later.
//
// As a program:
//   DAKGHAR_WEBHOOK_SECRET=whsec_... node verify.js 't=...,v1=...' < body.json   # exit 0 or 1
//   node verify.js                                  # no header: a demonstration on a sample
"use strict";

const crypto = require("node:crypto");

const TOLERANCE_SECONDS = 300;

/** The header value Dakghar would send for `body` (a Buffer or string) at `timestamp`. */
function sign(secret, body, timestamp) {
  const mac = crypto.createHmac("sha256", secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `t=${timestamp},v1=${mac.digest("hex")}`;
}

/**
 * True when `header` signs the raw `body` with `secret` and is at most 300 s old.
 * Pass the body exactly as received (a Buffer): a parsed and re-serialised JSON differs.
 */
function verifySignature(secret, body, header, now = Math.floor(Date.now() / 1000)) {
  const pairs = String(header)
    .split(",")
    .filter((part) => part.includes("="))
    .map((part) => [part.slice(0, part.indexOf("=")), part.slice(part.indexOf("=") + 1)]);
  const t = pairs.filter(([key]) => key === "t").map(([, value]) => value).pop();
  if (t === undefined || !/^\d+$/.test(t.trim())) return false;
  const timestamp = Number(t.trim());
  if (Math.abs(now - timestamp) > TOLERANCE_SECONDS) return false;
  const expected = Buffer.from(sign(secret, body, timestamp).split("v1=")[1]);
  return pairs
    .filter(([key]) => key === "v1")
    .some(([, value]) => {
      const given = Buffer.from(value);
      // timingSafeEqual needs equal lengths; the length of a hex HMAC is no secret.
      return given.length === expected.length && crypto.timingSafeEqual(given, expected);
    });
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function main() {
  const header = process.argv[2] ?? process.env.DAKGHAR_SIGNATURE;
  if (!header) {
    // A demonstration: sign a sample body now, then check it and a tampered copy.
    const secret = "whsec_sample";
    const body = Buffer.from('{"type":"message.status","message_id":"msg_1","status":"delivered"}');
    const sample = sign(secret, body, Math.floor(Date.now() / 1000));
    console.log(`sample header: ${sample}`);
    console.log(`sample body: ${verifySignature(secret, body, sample) ? "signature verified" : "signature rejected"}`);
    const tampered = Buffer.from(body.toString().replace("delivered", "failed"));
    console.log(`tampered body: ${verifySignature(secret, tampered, sample) ? "signature verified" : "signature rejected"}`);
    return 0;
  }
  const secret = process.env.DAKGHAR_WEBHOOK_SECRET;
  if (!secret) {
    console.error("set DAKGHAR_WEBHOOK_SECRET (GET /v1/account/webhook-secret)");
    return 2;
  }
  const ok = verifySignature(secret, await readStdin(), header);
  console.log(ok ? "signature verified" : "signature rejected");
  return ok ? 0 : 1;
}

module.exports = { sign, verifySignature };

if (require.main === module) {
  main().then((code) => process.exit(code));
}
