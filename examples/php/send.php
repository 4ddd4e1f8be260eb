<?php
// Send a message through Dakghar and follow it to its final status.
//
//   make run                                     # in another terminal: the gateway on :8080
//   export DAKGHAR_KEY=$(cat dakghar-demo.key)
//   php -S 127.0.0.1:9000 examples/php/receiver.php &      # optional: see the signed webhook
//   DAKGHAR_CALLBACK_URL=http://127.0.0.1:9000/hook php examples/php/send.php

declare(strict_types=1);

require __DIR__ . '/client.php';

const FINAL_STATUSES = ['delivered', 'undelivered', 'expired', 'rejected', 'failed', 'canceled'];

if ((getenv('DAKGHAR_KEY') ?: '') === '') {
    fwrite(STDERR, "set DAKGHAR_KEY (make run prints a demo key and saves it in dakghar-demo.key)\n");
    exit(2);
}
try {
    $request = ['to' => getenv('DAKGHAR_TO') ?: '+919812345678', 'body' => 'Hello from the PHP example'];
    if (($callback = getenv('DAKGHAR_CALLBACK_URL')) !== false && $callback !== '') {
        $request['callback_url'] = $callback;
    }
    // An Idempotency-Key makes a retry of this POST (after a timeout, say) safe.
    $sent = dakghar_call('POST', '/v1/messages', $request, ['Idempotency-Key' => bin2hex(random_bytes(16))]);
    echo "sent {$sent['id']} ({$sent['status']})\n";

    $status = $sent['status'];
    $deadline = time() + 60;
    while (!in_array($status, FINAL_STATUSES, true)) {
        if (time() > $deadline) {
            throw new RuntimeException("still {$status} after 60 s");
        }
        usleep(500_000);
        $message = dakghar_call('GET', "/v1/messages/{$sent['id']}");
        if ($message['status'] !== $status) {
            echo "status {$message['status']}\n";
        }
        $status = $message['status'];
    }
    echo "final {$status}\n";
    exit($status === 'delivered' ? 0 : 1);
} catch (RuntimeException | JsonException $e) {
    fwrite(STDERR, "error: {$e->getMessage()}\n");
    exit(1);
}
