#!/bin/sh
# One real agent on this computer against `phasewise serve` at real clock speed (README, "A real machine").
# Run from the repository root after `npm ci && npm run build`: sh examples/agent-demo/run.sh
set -eu
pw() { node dist/src/cli/main.js "$@"; }
W=${W:-$(mktemp -d /tmp/phasewise-agent-demo.XXXXXX)}
PORT=${PORT:-8444}
TOKEN=demo-operator-token-0123456789abcdef
export NODE_EXTRA_CA_CERTS="$W/serve/tls/cert.pem"
echo "working folder: $W"
mkdir -p "$W/serve"
# 1. The server, its clock at real speed (heartbeats, timeouts and health waits are wall time for real agents).
# node itself in the background (not the pw function, which would run in a subshell): $! is then the
# server's pid, so `kill $(cat $W/serve.pid)` stops it.
PHASEWISE_TOKEN=$TOKEN PHASEWISE_SUBSCRIPTIONS=demo node dist/src/cli/main.js serve --scenario examples/agent-demo/scenario.yaml --data-dir "$W/serve" --port "$PORT" \
  --clock-factor 1 > "$W/serve.log" 2>&1 &
echo $! > "$W/serve.pid"
until [ -s "$W/serve/tls/cert.pem" ] && curl -fs --cacert "$W/serve/tls/cert.pem" -H "Authorization: Bearer $TOKEN" \
  "https://localhost:$PORT/phasewise/rollouts" > /dev/null 2>&1; do
  # A server that stopped (port $PORT in use, say) is reported, not waited for.
  kill -0 "$(cat "$W/serve.pid")" 2>/dev/null || { echo "phasewise serve stopped:" >&2; tail -n 3 "$W/serve.log" >&2; exit 1; }
  sleep 0.5
done
api() { curl -fsS --cacert "$W/serve/tls/cert.pem" -H "Authorization: Bearer $TOKEN" "$@"; }
json() { api -H 'content-type: application/json' "$@"; }
URL=https://localhost:$PORT
# 2. The publisher: a key pair outside the server, two signed versions of the handler uploaded.
pw package keygen --out "$W/keys" --key-id demo-2026
for v in 1.0.0.0 1.1.0.0; do
  rm -f "$W/hello-$v.zip"
  pw package build --dir examples/agent-demo/handler --out "$W/hello-$v.zip" > /dev/null
  pw package sign --key "$W/keys/demo-2026.pem" --key-id demo-2026 --name Contoso.Demo.Hello --version $v "$W/hello-$v.zip"
  api -X PUT -H 'content-type: application/zip' --data-binary "@$W/hello-$v.zip" \
    -H "x-phasewise-package-signature: $(base64 -w0 "$W/hello-$v.zip.sig.json")" \
    "$URL/phasewise/publishers/Contoso.Demo/extensionTypes/Hello/versions/$v/package" > /dev/null
done
# 3. The machine: trust the publisher's key, enroll with a one-day token, run the agent.
ENROLL=$(json -X PUT -d '{"subscriptionId":"demo","resourceGroup":"edge","location":"eastus"}' \
  "$URL/phasewise/enrollmentTokens/demo" | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).token))')
[ -n "$ENROLL" ] || { echo "could not create an enrollment token" >&2; exit 1; }
pw agent trust add --key-id demo-2026 --file "$W/keys/demo-2026.pub" --config-dir "$W/etc"
pw agent connect --server "$URL" --enrollment-token "$ENROLL" --name laptop --lib-dir "$W/lib" --config-dir "$W/etc"
node dist/src/cli/main.js agent run --lib-dir "$W/lib" --config-dir "$W/etc" --log-dir "$W/log" --imds-port 0 > "$W/agent.log" 2>&1 &
echo $! > "$W/agent.pid"
# 4. Install the extension through ARM, then publish 1.1.0.0: the automatic rollout upgrades the machine.
ARC="$URL/subscriptions/demo/resourceGroups/edge/providers/Microsoft.HybridCompute/machines/laptop"
json -X PUT -d '{"location":"eastus","properties":{"publisher":"Contoso.Demo","type":"Hello","typeHandlerVersion":"1.0"}}' \
  "$ARC/extensions/hello?api-version=2024-07-01" > /dev/null
sleep 5
json -X PUT -d '{"os":["linux"]}' "$URL/phasewise/publishers/Contoso.Demo/extensionTypes/Hello/versions/1.1.0.0" > /dev/null
echo "published 1.1.0.0; the machine's extension as ARM shows it, every 5 s (Ctrl-C to stop watching):"
trap 'echo; echo "stop: kill \$(cat $W/agent.pid) \$(cat $W/serve.pid)"; exit 0' INT
while :; do
  api "$ARC/extensions/hello?api-version=2024-07-01" | node -e 'process.stdin.on("data",d=>{const p=JSON.parse(d).properties;
    console.log(new Date().toISOString().slice(11,19), p.typeHandlerVersion, p.provisioningState, p.instanceView?.status?.message ?? "")})'
  sleep 5
done
