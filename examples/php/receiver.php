<?php
// A webhook receiver for PHP's built-in server: it checks Dakghar-Signature on every POST and
// answers 204 for a valid one, 400 otherwise (the gateway then retries with backoff).
//
//   DAKGHAR_KEY=$(cat dakghar-demo.key) php -S 127.0.0.1:9000 examples/php/receiver.php
//
// The secret is DAKGHAR_WEBHOOK_SECRET, or fetched once per request from
// GET /v1/account/webhook-secret with DAKGHAR_KEY. Each result is one line on the server's stderr.

declare(strict_types=1);

require __DIR__ . '/client.php';
require __DIR__ . '/signature.php';

$secret = getenv('DAKGHAR_WEBHOOK_SECRET') ?: dakghar_call('GET', '/v1/account/webhook-secret')['webhook_secret'];
$raw = file_get_contents('php://input'); // the raw body: what was signed
$header = $_SERVER['HTTP_DAKGHAR_SIGNATURE'] ?? '';
$log = fopen('php://stderr', 'w');

if (!dakghar_verify_signature($secret, $raw, $header)) {
    fwrite($log, "webhook: signature rejected\n");
    http_response_code(400);
    return;
}
$event = json_decode($raw, true);
fwrite($log, "webhook {$event['message_id']} {$event['status']}: signature verified\n");
// Delivery is at-least-once: a real receiver dedupes on $event['event_id'] here.
http_response_code(204);
