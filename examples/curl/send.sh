#!/usr/bin/env bash
# Send a message through Dakghar with curl and follow it to its final status.
#
#   make run                                  # in another terminal: the gateway on :8080
#   DAKGHAR_KEY=$(cat dakghar-demo.key) examples/curl/send.sh
#   DAKGHAR_CALLBACK_URL=http://127.0.0.1:9000/hook examples/curl/send.sh   # also get the webhook
#
# JSON is read with grep so that only curl is needed; with jq, `jq -r .status` is sturdier.
set -euo pipefail

URL=${DAKGHAR_URL:-http://127.0.0.1:8080}
URL=${URL%/}
: "${DAKGHAR_KEY:?set DAKGHAR_KEY (make run prints a demo key and saves it in dakghar-demo.key)}"
TO=${DAKGHAR_TO:-+919812345678}

# The first "name":"value" pair in a JSON text; the message's own status comes before its events'.
field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d '"' -f 4; }

# One API call; prints the body, and fails (with the problem details on stderr) on a non-2xx.
api() {
  local out status
  out=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $DAKGHAR_KEY" \
    -H 'Content-Type: application/json' "$@")
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "$status" -lt 200 ] || [ "$status" -ge 300 ]; then
    echo "error: $status $out" >&2
    return 1
  fi
  printf '%s\n' "$out"
}

request="{\"to\": \"$TO\", \"body\": \"Hello from the curl example\""
if [ -n "${DAKGHAR_CALLBACK_URL:-}" ]; then
  request+=", \"callback_url\": \"$DAKGHAR_CALLBACK_URL\""
fi
request+="}"

# An Idempotency-Key makes a retry of this POST (after a timeout, say) safe.
sent=$(api "$URL/v1/messages" -H "Idempotency-Key: $(openssl rand -hex 16)" -d "$request")
id=$(field id <<<"$sent")
status=$(field status <<<"$sent")
echo "sent $id ($status)"

deadline=$((SECONDS + 60))
while :; do
  case $status in delivered | undelivered | expired | rejected | failed | canceled) break ;; esac
  if [ "$SECONDS" -gt "$deadline" ]; then
    echo "error: still $status after 60 s" >&2
    exit 1
  fi
  sleep 0.5
  now=$(api "$URL/v1/messages/$id" | field status)
  [ "$now" = "$status" ] || echo "status $now"
  status=$now
done
echo "final $status"
[ "$status" = delivered ]
