// Send a message through Dakghar, follow it to its final status, and check the signed webhook
// the gateway POSTs about it (Node 20: global fetch, node:http; no packages).
//
//   make run                                   # in another terminal: the gateway on :8080
//   DAKGHAR_KEY=$(cat dakghar-demo.key) node examples/js/example.js
//
// The webhook receiver runs in this process on a free loopback port; `make run` (serve --demo)
// allows loopback callback URLs, a production gateway only public ones.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { verifySignature } = require("./verify.js");

const BASE = (process.env.DAKGHAR_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const KEY = process.env.DAKGHAR_KEY;
const TO = process.env.DAKGHAR_TO || "+919812345678";
const FINAL = new Set(["delivered", "undelivered", "expired", "rejected", "failed", "canceled"]);

/** One API call; throws with the problem details' code on a non-2xx answer. */
async function api(method, path, body, headers = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${data.code}: ${data.detail}`);
  return data;
}

/** A receiver on 127.0.0.1 that hands each webhook's raw body and signature to `onWebhook`. */
function startReceiver(onWebhook) {
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      // Answer 2xx only for a valid signature; anything else is retried by the gateway.
      const ok = onWebhook(Buffer.concat(chunks), request.headers["dakghar-signature"] || "");
      response.writeHead(ok ? 204 : 400).end();
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  if (!KEY) {
    console.error("set DAKGHAR_KEY (make run prints a demo key and saves it in dakghar-demo.key)");
    return 2;
  }
  const { webhook_secret: secret } = await api("GET", "/v1/account/webhook-secret");

  let resolveWebhook;
  const webhook = new Promise((resolve) => (resolveWebhook = resolve));
  const server = await startReceiver((raw, signature) => {
    const ok = verifySignature(secret, raw, signature);
    // With webhook_events "sent" or "all" earlier statuses come too; wait for the final one.
    if (ok && FINAL.has(JSON.parse(raw).status)) resolveWebhook({ raw, signature });
    return ok;
  });
  const callbackUrl = `http://127.0.0.1:${server.address().port}/hook`;

  try {
    // An Idempotency-Key makes a retry of this POST (after a timeout, say) safe.
    const sent = await api(
      "POST",
      "/v1/messages",
      { to: TO, body: "Hello from the JavaScript example", callback_url: callbackUrl },
      { "Idempotency-Key": crypto.randomUUID() },
    );
    console.log(`sent ${sent.id} (${sent.status})`);

    let status = sent.status;
    const deadline = Date.now() + 60_000;
    while (!FINAL.has(status)) {
      if (Date.now() > deadline) throw new Error(`still ${status} after 60 s`);
      await sleep(500);
      const message = await api("GET", `/v1/messages/${sent.id}`);
      if (message.status !== status) console.log(`status ${message.status}`);
      status = message.status;
    }
    console.log(`final ${status}`);

    const timeout = sleep(30_000).then(() => null);
    const got = await Promise.race([webhook, timeout]);
    if (got === null) throw new Error("no webhook within 30 s");
    const event = JSON.parse(got.raw);
    console.log(`webhook ${event.message_id} ${event.status}: signature verified`);
    const tampered = Buffer.from(got.raw.toString().replace(event.status, "tampered"));
    const again = verifySignature(secret, tampered, got.signature);
    console.log(`tampered body: signature ${again ? "verified" : "rejected"}`);
    return status === "delivered" && !again ? 0 : 1;
  } finally {
    server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`error: ${error.message}`);
    process.exit(1);
  },
);
