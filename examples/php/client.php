<?php
// A small Dakghar API client over PHP's http:// stream wrapper (no curl extension needed).

declare(strict_types=1);

/** One API call; the decoded JSON answer, or a RuntimeException with the problem's code. */
function dakghar_call(string $method, string $path, ?array $body = null, array $headers = []): array
{
    $base = rtrim(getenv('DAKGHAR_URL') ?: 'http://127.0.0.1:8080', '/');
    $key = getenv('DAKGHAR_KEY') ?: '';
    $lines = ["Authorization: Bearer {$key}", 'Content-Type: application/json', 'Connection: close'];
    foreach ($headers as $name => $value) {
        $lines[] = "{$name}: {$value}";
    }
    $context = stream_context_create(['http' => [
        'method' => $method,
        'header' => implode("\r\n", $lines),
        'content' => $body === null ? '' : json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES),
        'protocol_version' => 1.1,
        'timeout' => 10,
        'ignore_errors' => true, // read the problem details of a 4xx/5xx instead of a warning
    ]]);
    $raw = file_get_contents($base . $path, false, $context);
    if ($raw === false) {
        throw new RuntimeException("{$method} {$path}: no answer from {$base}");
    }
    preg_match('{^HTTP/\S+ (\d{3})}', $http_response_header[0] ?? '', $m);
    $status = (int) ($m[1] ?? 0);
    $data = json_decode($raw, true, 512, JSON_THROW_ON_ERROR);
    if ($status < 200 || $status >= 300) {
        throw new RuntimeException("{$method} {$path}: {$status} {$data['code']}: {$data['detail']}");
    }
    return $data;
}
