#!/usr/bin/env bash
# Property-based API testing with schemathesis against the real server on its embedded
# defaults, with an administrator token, for a bounded time. Fails on any failed check: a 5xx,
# a response that violates the OpenAPI document, a wrong status, Allow header or content type,
# a schema-violating request that is accepted. The stateful phase runs too: it may delete and
# revoke whatever it finds, and the deployment must still have its administrator afterwards.
#
# Not checked: positive_data_acceptance ("every schema-valid request is accepted"). What makes
# evidence, certificates, JWSs and ciphertexts valid cannot be said in JSON Schema, so a random
# but schema-valid one is, rightly, refused.
#
# Usage: tools/schemathesis.sh [seconds, default 120]  (after `cargo build`)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"
version=4.32.5
if ! schemathesis --version 2>/dev/null | grep -q "$version"; then
  python3 -m pip install -q --disable-pip-version-check "schemathesis==$version"
fi
bin="${CARGO_TARGET_DIR:-target}/debug/sovra"
[ -x "$bin" ] || cargo build -q -p sovra-cli --locked
work=$(mktemp -d)
keep="${SCHEMATHESIS_KEEP:-}"  # a directory to keep the report and server log in
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; [ -n "$keep" ] && cp -r "$work"/. "$keep"/; rm -rf "$work"' EXIT
# One source sends thousands of requests, many with bad tokens: the per-source budgets would
# answer 429 to most (they are tested on their own in tests/server/hostile.rs).
SOVRA_LIMITS_ANONYMOUS_PER_IP_PER_SECOND=0 SOVRA_LIMITS_FAILED_AUTH_PER_IP_PER_SECOND=0 \
  SOVRA_LOG_LEVEL=warn "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 \
  > "$work/out" 2> "$work/log" &
pid=$!
for _ in $(seq 1 120); do
  url=$(sed -n 's/^Sovra is listening on //p' "$work/out")
  [ -n "$url" ] && break
  sleep 0.5
done
[ -n "$url" ] || { cat "$work/out" "$work/log"; echo "the server did not start"; exit 1; }
token=$(cat "$work/data/admin.token")
ca="$work/data/tls/ca.pem"
# The resources the document's examples name (location global, key ring ring, key key), so the
# examples reach past 404.
SOVRA_URL="$url" SOVRA_TOKEN="$token" SOVRA_CA_CERT="$ca" "$bin" keyrings create ring >/dev/null
SOVRA_URL="$url" SOVRA_TOKEN="$token" SOVRA_CA_CERT="$ca" "$bin" keys create ring/key --purpose encrypt >/dev/null
echo "== schemathesis $version against $url (${secs}s)"
set +e
schemathesis --config-file tools/schemathesis.toml run "$url/openapi.json" --tls-verify "$ca" -H "Authorization: Bearer $token" \
  --checks all --exclude-checks positive_data_acceptance --max-time "$secs" -w 2 \
  --seed 1 --report json --report-json-path "$work/report.json" > "$work/st.txt" 2>&1
st=$?
set -e
# The verdict is the checks' failures; an internal error of the generator alone is reported
# but does not fail the run.
python3 - "$work/report.json" "$work/st.txt" "$st" <<'PY'
import json, sys
text, status = open(sys.argv[2]).read(), int(sys.argv[3])
try:
    failures = len(json.load(open(sys.argv[1]))["failures"])
except Exception as e:
    print(text)
    sys.exit(f"schemathesis left no readable report ({e}); exit status {status}")
print(text if failures else text[-2500:])
if failures:
    # CI keeps only the end of a long log: repeat the failures themselves (operation, check,
    # reproducing curl) last, so they are what it shows.
    start = text.find("= FAILURES =")
    ends = [i for i in (text.find(m, start) for m in ("= ERRORS =", "= WARNINGS =", "= SUMMARY =")) if i > start]
    if start >= 0:
        print("\n== the failures again ==")
        print(text[start:min(ends) if ends else None][:6000])
    sys.exit(f"schemathesis: {failures} failure(s)")
PY
# The administrator survived the stateful phase, and the server did not panic.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -H "Authorization: Bearer $token" "$url/v1/whoami")
[ "$code" = 200 ] || { echo "the administrator can no longer sign in ($code)"; exit 1; }
if grep -q "panicked" "$work/log"; then grep -n "panicked" "$work/log"; exit 1; fi
echo "schemathesis: no failures; the administrator is intact"
