#!/bin/sh
# A minimal extension handler (agent-protocol §1–§3): every command is logged; enable writes the
# status file for the settings' sequence number, as real handlers do.
cmd="$1"
echo "$(date -u +%H:%M:%S) $cmd version=$AZURE_GUEST_AGENT_EXTENSION_VERSION seq=$ConfigSequenceNumber" >> ../handler-calls.log
if [ "$cmd" = enable ]; then
  printf '[{"version":1.0,"timestampUTC":"%s","status":{"name":"Hello","operation":"Enable","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"hello from %s"}}}]' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$AZURE_GUEST_AGENT_EXTENSION_VERSION" > "status/$ConfigSequenceNumber.status.tmp"
  mv "status/$ConfigSequenceNumber.status.tmp" "status/$ConfigSequenceNumber.status"
fi
exit 0
