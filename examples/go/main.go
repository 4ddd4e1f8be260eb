// Command examples sends a message through Dakghar, follows it to its final status, and checks
// the signed webhook the gateway POSTs about it (standard library only).
//
//	make run                                # in another terminal: the gateway on :8080
//	cd examples/go && DAKGHAR_KEY=$(cat ../../dakghar-demo.key) go run .
//	DAKGHAR_WEBHOOK_SECRET=whsec_... go run . verify 't=...,v1=...' < body.json   # exit 0 or 1
//
// The webhook receiver runs in this process on a free loopback port; `make run` (serve --demo)
// allows loopback callback URLs, a production gateway only public ones.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

var final = map[string]bool{
	"delivered": true, "undelivered": true, "expired": true,
	"rejected": true, "failed": true, "canceled": true,
}

// Client calls the Dakghar API with one key.
type Client struct {
	Base string
	Key  string
	HTTP *http.Client
}

// Message holds the fields of a message object this example reads.
type Message struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// call sends one request and decodes the answer into out; a non-2xx answer is an error that
// carries the problem details' code.
func (c *Client) call(method, path string, body any, headers map[string]string, out any) error {
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.Base+path, payload)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var problem struct{ Code, Detail string }
		_ = json.NewDecoder(resp.Body).Decode(&problem)
		return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, problem.Code, problem.Detail)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type webhook struct {
	raw       []byte
	signature string
}

func walkthrough() error {
	base := strings.TrimSuffix(env("DAKGHAR_URL", "http://127.0.0.1:8080"), "/")
	key := os.Getenv("DAKGHAR_KEY")
	if key == "" {
		return fmt.Errorf("set DAKGHAR_KEY (make run prints a demo key and saves it in dakghar-demo.key)")
	}
	c := &Client{Base: base, Key: key, HTTP: &http.Client{Timeout: 10 * time.Second}}
	var account struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	if err := c.call("GET", "/v1/account/webhook-secret", nil, nil, &account); err != nil {
		return err
	}

	// The receiver answers 2xx only for a valid signature; anything else is retried.
	hooks := make(chan webhook, 1)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		signature := r.Header.Get("Dakghar-Signature")
		if err != nil || !VerifySignature(account.WebhookSecret, raw, signature, time.Now()) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var event struct{ Status string }
		// With webhook_events "sent" or "all" earlier statuses come too; keep the final one.
		if json.Unmarshal(raw, &event) == nil && final[event.Status] {
			select {
			case hooks <- webhook{raw, signature}:
			default: // a redelivery: receivers dedupe on event_id
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = server.Serve(listener) }()
	defer server.Close()
	callback := fmt.Sprintf("http://%s/hook", listener.Addr())

	// An Idempotency-Key makes a retry of this POST (after a timeout, say) safe.
	idempotency := make([]byte, 16)
	if _, err := rand.Read(idempotency); err != nil {
		return err
	}
	var sent Message
	request := map[string]string{
		"to": env("DAKGHAR_TO", "+919812345678"), "body": "Hello from the Go example", "callback_url": callback,
	}
	headers := map[string]string{"Idempotency-Key": hex.EncodeToString(idempotency)}
	if err := c.call("POST", "/v1/messages", request, headers, &sent); err != nil {
		return err
	}
	fmt.Printf("sent %s (%s)\n", sent.ID, sent.Status)

	status := sent.Status
	for deadline := time.Now().Add(60 * time.Second); !final[status]; {
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s after 60 s", status)
		}
		time.Sleep(500 * time.Millisecond)
		var m Message
		if err := c.call("GET", "/v1/messages/"+sent.ID, nil, nil, &m); err != nil {
			return err
		}
		if m.Status != status {
			fmt.Printf("status %s\n", m.Status)
		}
		status = m.Status
	}
	fmt.Printf("final %s\n", status)

	select {
	case got := <-hooks:
		var event struct {
			MessageID string `json:"message_id"`
			Status    string `json:"status"`
		}
		if err := json.Unmarshal(got.raw, &event); err != nil {
			return err
		}
		fmt.Printf("webhook %s %s: signature verified\n", event.MessageID, event.Status)
		tampered := bytes.Replace(got.raw, []byte(event.Status), []byte("tampered"), 1)
		again := VerifySignature(account.WebhookSecret, tampered, got.signature, time.Now())
		fmt.Printf("tampered body: signature %s\n", map[bool]string{true: "verified", false: "rejected"}[again])
		if status != "delivered" || again {
			return fmt.Errorf("expected delivered and a rejected tampered body")
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no webhook within 30 s")
	}
}

// verify checks one webhook: secret from DAKGHAR_WEBHOOK_SECRET, header from the argument (or
// DAKGHAR_SIGNATURE), raw body from standard input. Exit 0 verified, 1 rejected.
func verify(args []string) int {
	header := os.Getenv("DAKGHAR_SIGNATURE")
	if len(args) > 0 {
		header = args[0]
	}
	if header == "" {
		// A demonstration: sign a sample body now, then check it and a tampered copy.
		body := []byte(`{"type":"message.status","message_id":"msg_1","status":"delivered"}`)
		sample := Sign("whsec_sample", body, time.Now().Unix())
		fmt.Println("sample header:", sample)
		fmt.Println("sample body:", result(VerifySignature("whsec_sample", body, sample, time.Now())))
		tampered := bytes.Replace(body, []byte("delivered"), []byte("failed"), 1)
		fmt.Println("tampered body:", result(VerifySignature("whsec_sample", tampered, sample, time.Now())))
		return 0
	}
	secret := os.Getenv("DAKGHAR_WEBHOOK_SECRET")
	if secret == "" {
		fmt.Fprintln(os.Stderr, "set DAKGHAR_WEBHOOK_SECRET (GET /v1/account/webhook-secret)")
		return 2
	}
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 2
	}
	ok := VerifySignature(secret, body, header, time.Now())
	fmt.Println(result(ok))
	if ok {
		return 0
	}
	return 1
}

func result(ok bool) string {
	if ok {
		return "signature verified"
	}
	return "signature rejected"
}

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "verify" {
		os.Exit(verify(os.Args[2:]))
	}
	if err := walkthrough(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
