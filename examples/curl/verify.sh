#!/usr/bin/env bash
# Verify a Dakghar webhook signature with openssl:
#
#   Dakghar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>...]
#
# HMAC-SHA256 keyed with the account's webhook secret (GET /v1/account/webhook-secret) over
# "<t>.<raw body>"; any v1 may match (during a rotation there is one per secret); a timestamp
# more than 300 s from now is refused, so a captured request cannot be replayed.
#
#   DAKGHAR_WEBHOOK_SECRET=whsec_... examples/curl/verify.sh 't=...,v1=...' < body.json  # 0 or 1
#   examples/curl/verify.sh                          # no header: a demonstration on a sample
#
# The secret is passed to openssl on its command line, where other local users may see it with
# ps; a shell cannot compare in constant time either. Use this to learn or debug, and a real
# language in a receiver.
set -euo pipefail

# hmac SECRET: the hex HMAC-SHA256 of standard input.
hmac() { openssl dgst -sha256 -hmac "$1" -hex | awk '{print $NF}'; }

# verify_signature SECRET HEADER: exit 0 when HEADER signs the body on standard input.
verify_signature() {
  local secret=$1 t="" part expected now
  local -a candidates=()
  IFS=',' read -r -a parts <<<"$2"
  for part in "${parts[@]}"; do
    case $part in
      t=*) t=${part#t=} ;;
      v1=*) candidates+=("${part#v1=}") ;;
    esac
  done
  t=${t//[[:space:]]/}
  [[ $t =~ ^[0-9]+$ ]] || return 1
  now=$(date +%s)
  (( now - t <= 300 && t - now <= 300 )) || return 1
  expected=$({ printf '%s.' "$t"; cat; } | hmac "$secret")
  for part in "${candidates[@]}"; do
    [ "$part" = "$expected" ] && return 0
  done
  return 1
}

header=${1:-${DAKGHAR_SIGNATURE:-}}
if [ -z "$header" ]; then
  # A demonstration: sign a sample body now, then check it and a tampered copy.
  body='{"type":"message.status","message_id":"msg_1","status":"delivered"}'
  t=$(date +%s)
  sample="t=$t,v1=$(printf '%s.%s' "$t" "$body" | hmac whsec_sample)"
  echo "sample header: $sample"
  if printf '%s' "$body" | verify_signature whsec_sample "$sample"; then
    echo "sample body: signature verified"
  else
    echo "sample body: signature rejected"
  fi
  if printf '%s' "${body/delivered/failed}" | verify_signature whsec_sample "$sample"; then
    echo "tampered body: signature verified"
  else
    echo "tampered body: signature rejected"
  fi
  exit 0
fi
: "${DAKGHAR_WEBHOOK_SECRET:?set DAKGHAR_WEBHOOK_SECRET (GET /v1/account/webhook-secret)}"
if verify_signature "$DAKGHAR_WEBHOOK_SECRET" "$header"; then
  echo "signature verified"
else
  echo "signature rejected"
  exit 1
fi
