<?php
// Verify a Dakghar webhook signature (PHP 8, no extensions beyond the defaults).
//
//   Dakghar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>...]
//
// The HMAC key is the account's webhook secret (GET /v1/account/webhook-secret) and the signed
// text is "<t>.<raw body>". During a secret rotation the header carries one v1 per secret, so any
// match is enough. A timestamp more than 300 s from now is refused, so a captured request cannot
// be replayed later.
//
// As a program:
//   DAKGHAR_WEBHOOK_SECRET=whsec_... php signature.php 't=...,v1=...' < body.json   # exit 0 or 1
//   php signature.php                                # no header: a demonstration on a sample

declare(strict_types=1);

const DAKGHAR_TOLERANCE_SECONDS = 300;

/** The header value Dakghar would send for $body at $timestamp. */
function dakghar_sign(string $secret, string $body, int $timestamp): string
{
    return "t={$timestamp},v1=" . hash_hmac('sha256', "{$timestamp}.{$body}", $secret);
}

/** True when $header signs the raw $body (php://input, not a re-encoded array) with $secret. */
function dakghar_verify_signature(string $secret, string $body, string $header, ?int $now = null): bool
{
    $now ??= time();
    $timestamp = null;
    $candidates = [];
    foreach (explode(',', $header) as $part) {
        if (!str_contains($part, '=')) {
            continue;
        }
        [$key, $value] = explode('=', $part, 2);
        if ($key === 't') {
            $timestamp = trim($value);
        } elseif ($key === 'v1') {
            $candidates[] = $value;
        }
    }
    if ($timestamp === null || !ctype_digit($timestamp)) {
        return false;
    }
    if (abs($now - (int) $timestamp) > DAKGHAR_TOLERANCE_SECONDS) {
        return false;
    }
    $expected = hash_hmac('sha256', "{$timestamp}.{$body}", $secret);
    foreach ($candidates as $candidate) {
        if (hash_equals($expected, $candidate)) { // constant time
            return true;
        }
    }
    return false;
}

if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    $header = $argv[1] ?? (getenv('DAKGHAR_SIGNATURE') ?: '');
    if ($header === '') {
        // A demonstration: sign a sample body now, then check it and a tampered copy.
        $body = '{"type":"message.status","message_id":"msg_1","status":"delivered"}';
        $sample = dakghar_sign('whsec_sample', $body, time());
        echo "sample header: {$sample}\n";
        $ok = dakghar_verify_signature('whsec_sample', $body, $sample);
        echo 'sample body: signature ', $ok ? 'verified' : 'rejected', "\n";
        $ok = dakghar_verify_signature('whsec_sample', str_replace('delivered', 'failed', $body), $sample);
        echo 'tampered body: signature ', $ok ? 'verified' : 'rejected', "\n";
        exit(0);
    }
    $secret = getenv('DAKGHAR_WEBHOOK_SECRET') ?: '';
    if ($secret === '') {
        fwrite(STDERR, "set DAKGHAR_WEBHOOK_SECRET (GET /v1/account/webhook-secret)\n");
        exit(2);
    }
    $ok = dakghar_verify_signature($secret, stream_get_contents(STDIN), $header);
    echo $ok ? "signature verified\n" : "signature rejected\n";
    exit($ok ? 0 : 1);
}
