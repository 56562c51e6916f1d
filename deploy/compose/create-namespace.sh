#!/bin/sh
# Once the server answers: the namespace the worker uses, and the Skoala* search attributes the
# workflows keep current (runbook/search-attributes.ts; test/unit/compose.test.ts checks this list
# against it). Safe to run again: what exists is kept.
set -eu
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}

attempt=1
until temporal operator cluster health >/dev/null 2>&1; do
  if [ "$attempt" -ge 60 ]; then
    echo "Temporal at $TEMPORAL_ADDRESS did not answer after 60 attempts" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create --namespace "$NAMESPACE"
fi

# name:type, as `temporal operator search-attribute create` takes them.
for attr in SkoalaVersion:Keyword SkoalaFleet:Keyword SkoalaPhase:Keyword \
  SkoalaWaitingApproval:KeywordList SkoalaFailedClusters:KeywordList SkoalaCluster:Keyword; do
  name=${attr%%:*}
  # The namespace just created may take a moment to reach every service: retry each a few times.
  for try in 1 2 3 4 5 6 7 8 9 10; do
    if temporal operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null | grep -qw "$name"; then
      echo "search attribute $name exists"
      break
    fi
    if temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "${attr#*:}"; then
      break
    fi
    [ "$try" -lt 10 ] || exit 1
    sleep 2
  done
done
echo "namespace $NAMESPACE and its search attributes are ready"
