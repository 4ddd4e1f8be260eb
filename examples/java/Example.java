// Send a message through Dakghar, follow it to its final status, and check the signed webhook the
// gateway POSTs about it. JDK 17, no libraries: java.net.http for the API, the JDK's
// com.sun.net.httpserver for the receiver, javax.crypto for the signature.
//
//   make run                                  # in another terminal: the gateway on :8080
//   DAKGHAR_KEY=$(cat dakghar-demo.key) java examples/java/Example.java
//   DAKGHAR_WEBHOOK_SECRET=whsec_... java examples/java/Example.java verify 't=...,v1=...' < body.json
//
// The webhook receiver runs in this process on a free loopback port; `make run` (serve --demo)
// allows loopback callback URLs, a production gateway only public ones.

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Example {
    static final long TOLERANCE_SECONDS = 300;
    static final Set<String> FINAL =
            Set.of("delivered", "undelivered", "expired", "rejected", "failed", "canceled");

    /** The Dakghar-Signature value for {@code body} sent at {@code timestamp}. */
    static String sign(String secret, byte[] body, long timestamp) {
        return "t=" + timestamp + ",v1=" + HexFormat.of().formatHex(mac(secret, body, timestamp));
    }

    static byte[] mac(String secret, byte[] body, long timestamp) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            mac.update((timestamp + ".").getBytes(StandardCharsets.UTF_8));
            return mac.doFinal(body);
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * True when {@code header} signs the raw {@code body} with {@code secret} and is at most 300 s
     * old (so a captured request cannot be replayed). During a rotation the header has one v1 per
     * secret: any match will do.
     */
    static boolean verifySignature(String secret, byte[] body, String header, long now) {
        String t = null;
        java.util.List<String> candidates = new java.util.ArrayList<>();
        for (String part : header.split(",")) {
            int eq = part.indexOf('=');
            if (eq < 0) continue;
            String key = part.substring(0, eq), value = part.substring(eq + 1);
            if (key.equals("t")) t = value;
            if (key.equals("v1")) candidates.add(value);
        }
        long timestamp;
        try {
            timestamp = Long.parseLong(t == null ? "" : t.trim());
        } catch (NumberFormatException e) {
            return false;
        }
        if (Math.abs(now - timestamp) > TOLERANCE_SECONDS) return false;
        byte[] expected =
                HexFormat.of().formatHex(mac(secret, body, timestamp)).getBytes(StandardCharsets.UTF_8);
        for (String candidate : candidates) {
            // MessageDigest.isEqual takes the same time wherever the first difference is.
            if (MessageDigest.isEqual(candidate.getBytes(StandardCharsets.UTF_8), expected)) return true;
        }
        return false;
    }

    /** A string field of a JSON object; a real application would use a JSON library instead. */
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(json);
        if (!m.find()) throw new IllegalStateException("no " + name + " in " + json);
        return m.group(1);
    }

    record Webhook(byte[] raw, String signature) {}

    static final String BASE =
            System.getenv().getOrDefault("DAKGHAR_URL", "http://127.0.0.1:8080").replaceAll("/$", "");
    static final String KEY = System.getenv("DAKGHAR_KEY");
    // HTTP/1.1: the default HTTP/2 attempt sends an h2c upgrade, which the gateway does not speak.
    static final HttpClient HTTP = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();

    /** One API call; a non-2xx answer is an exception with the problem details' code. */
    static String call(String method, String path, String json, String idempotencyKey)
            throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(BASE + path))
                .timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json")
                .method(method, json == null
                        ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(json));
        if (idempotencyKey != null) request.header("Idempotency-Key", idempotencyKey);
        HttpResponse<String> response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() >= 300) {
            throw new IOException(method + " " + path + ": " + response.statusCode() + " " + response.body());
        }
        return response.body();
    }

    static int walkthrough() throws Exception {
        if (KEY == null || KEY.isEmpty()) {
            System.err.println("set DAKGHAR_KEY (make run prints a demo key and saves it in dakghar-demo.key)");
            return 2;
        }
        String secret = field(call("GET", "/v1/account/webhook-secret", null, null), "webhook_secret");

        // The receiver answers 2xx only for a valid signature; anything else is retried.
        CompletableFuture<Webhook> webhook = new CompletableFuture<>();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/hook", exchange -> {
            byte[] raw = exchange.getRequestBody().readAllBytes();
            String signature = exchange.getRequestHeaders().getFirst("Dakghar-Signature");
            boolean ok = signature != null
                    && verifySignature(secret, raw, signature, Instant.now().getEpochSecond());
            // With webhook_events "sent" or "all" earlier statuses come too; keep the final one.
            if (ok && FINAL.contains(field(new String(raw, StandardCharsets.UTF_8), "status"))) {
                webhook.complete(new Webhook(raw, signature));
            }
            exchange.sendResponseHeaders(ok ? 204 : 400, -1);
            exchange.close();
        });
        server.start();
        String callback = "http://127.0.0.1:" + server.getAddress().getPort() + "/hook";
        try {
            String to = System.getenv().getOrDefault("DAKGHAR_TO", "+919812345678");
            String request = "{\"to\": \"" + to + "\", \"body\": \"Hello from the Java example\", "
                    + "\"callback_url\": \"" + callback + "\"}";
            // An Idempotency-Key makes a retry of this POST (after a timeout, say) safe.
            String sent = call("POST", "/v1/messages", request, UUID.randomUUID().toString());
            String id = field(sent, "id"), status = field(sent, "status");
            System.out.println("sent " + id + " (" + status + ")");

            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!FINAL.contains(status)) {
                if (System.nanoTime() > deadline) throw new IOException("still " + status + " after 60 s");
                Thread.sleep(500);
                // The message's own status comes before its events' in the object.
                String now = field(call("GET", "/v1/messages/" + id, null, null), "status");
                if (!now.equals(status)) System.out.println("status " + now);
                status = now;
            }
            System.out.println("final " + status);

            Webhook got;
            try {
                got = webhook.get(30, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new IOException("no webhook within 30 s");
            }
            String body = new String(got.raw(), StandardCharsets.UTF_8);
            String event = field(body, "status");
            System.out.println("webhook " + field(body, "message_id") + " " + event + ": signature verified");
            byte[] tampered = body.replaceFirst(event, "tampered").getBytes(StandardCharsets.UTF_8);
            boolean again = verifySignature(secret, tampered, got.signature(), Instant.now().getEpochSecond());
            System.out.println("tampered body: signature " + (again ? "verified" : "rejected"));
            return status.equals("delivered") && !again ? 0 : 1;
        } finally {
            server.stop(0);
        }
    }

    /** Secret from DAKGHAR_WEBHOOK_SECRET, header from the argument, raw body from stdin. */
    static int verify(String[] args) throws IOException {
        String header = args.length > 1 ? args[1] : System.getenv("DAKGHAR_SIGNATURE");
        long now = Instant.now().getEpochSecond();
        if (header == null || header.isEmpty()) {
            // A demonstration: sign a sample body now, then check it and a tampered copy.
            String body = "{\"type\":\"message.status\",\"message_id\":\"msg_1\",\"status\":\"delivered\"}";
            String sample = sign("whsec_sample", body.getBytes(StandardCharsets.UTF_8), now);
            System.out.println("sample header: " + sample);
            System.out.println("sample body: " + result(verifySignature(
                    "whsec_sample", body.getBytes(StandardCharsets.UTF_8), sample, now)));
            System.out.println("tampered body: " + result(verifySignature("whsec_sample",
                    body.replace("delivered", "failed").getBytes(StandardCharsets.UTF_8), sample, now)));
            return 0;
        }
        String secret = System.getenv("DAKGHAR_WEBHOOK_SECRET");
        if (secret == null || secret.isEmpty()) {
            System.err.println("set DAKGHAR_WEBHOOK_SECRET (GET /v1/account/webhook-secret)");
            return 2;
        }
        boolean ok = verifySignature(secret, System.in.readAllBytes(), header, now);
        System.out.println(result(ok));
        return ok ? 0 : 1;
    }

    static String result(boolean ok) {
        return ok ? "signature verified" : "signature rejected";
    }

    public static void main(String[] args) throws Exception {
        try {
            System.exit(args.length > 0 && args[0].equals("verify") ? verify(args) : walkthrough());
        } catch (IOException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
