package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far a signature's timestamp may be from now before it is refused, so that a
// captured request cannot be replayed later.
const Tolerance = 300 * time.Second

// Sign returns the Dakghar-Signature value for body sent at timestamp: t=<unix>,v1=<hex>, the
// HMAC-SHA256 of "<t>.<raw body>" keyed with the account's webhook secret.
func Sign(secret string, body []byte, timestamp int64) string {
	return "t=" + strconv.FormatInt(timestamp, 10) + ",v1=" + hex.EncodeToString(mac(secret, body, timestamp))
}

func mac(secret string, body []byte, timestamp int64) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(timestamp, 10) + "."))
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature reports whether header signs the raw body with secret and is at most
// Tolerance old. During a secret rotation the header has one v1 per secret: any match will do.
func VerifySignature(secret string, body []byte, header string, now time.Time) bool {
	var timestamp string
	var candidates []string
	for _, part := range strings.Split(header, ",") {
		key, value, found := strings.Cut(part, "=")
		switch {
		case !found:
		case key == "t":
			timestamp = value
		case key == "v1":
			candidates = append(candidates, value)
		}
	}
	t, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return false
	}
	if age := now.Sub(time.Unix(t, 0)); age > Tolerance || age < -Tolerance {
		return false
	}
	expected := []byte(hex.EncodeToString(mac(secret, body, t)))
	for _, candidate := range candidates {
		if hmac.Equal([]byte(candidate), expected) {
			return true
		}
	}
	return false
}
