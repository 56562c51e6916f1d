#!/usr/bin/env bash
# The skoala upgrade runbook (shared/runbook.md) run by hand, as a plain script: exactly the
# commands an operator types, the control plane first, then the worker clusters P at a time
# (xargs -P). No retries, no state, no approval gate, no health check beyond what the commands do.
#
#   runbook.sh CLUSTERS_FILE
#
# CLUSTERS_FILE: one cluster a line, tab-separated NAME KUBECONFIG CONTEXT. The first line is the
# control plane (release skoala), every other line a worker cluster (release skoala-init).
#
# Environment:
#   VERSION         target version, e.g. 0.19.2 (chart version = app version; image tags vVERSION)
#   REPO_URL        the chart repository, added as `skoala`
#   DB_JOB          the DB-migration Job manifest; when set it runs on the control plane first (the
#                   runbook: mandatory from < 0.19.0 to a version in [0.19.0, 0.22.0))
#   P               worker clusters at a time (default 1)
#   WORK            where the values backups and the pulled chart go (default ./runbook-work)
#   HELM, KUBECTL   the tools (default: helm and kubectl on PATH); HELM_CONFIG_HOME, HELM_CACHE_HOME,
#                   HELM_DATA_HOME and the rest of HELM_* reach helm through the environment
#
# Output: one line per cluster on stdout, NAME<TAB>START<TAB>END (epoch seconds, microseconds).
# Each command's own output goes to WORK/NAME/log. The first failure stops the run (no further
# worker cluster starts), naming the cluster and the command, exit status non-zero.
#
# The commands (K: --kubeconfig KUBECONFIG plus --kube-context CONTEXT for helm, --context
# CONTEXT for kubectl; V: $VERSION; in WORK/NAME):
#   control plane
#     kubectl K -n skoala-system apply -f $DB_JOB -o name               (only with DB_JOB)
#     kubectl K -n skoala-system wait --for=condition=complete <that job> --timeout=10m
#     helm K -n skoala-system get values skoala -o yaml > skoala.yaml
#     helm repo add skoala $REPO_URL
#     helm repo update
#     helm K upgrade --install --create-namespace -n skoala-system skoala skoala/skoala --version=V
#       --set hive.image.tag=vV --set sesame.image.tag=vV -f skoala.yaml
#   each worker cluster
#     helm K -n skoala-system get values skoala-init -o yaml > skoala-init.yaml
#     helm repo add skoala $REPO_URL
#     helm repo update
#     kubectl K -n skoala-system delete jobs gateway-api-admission gateway-api-admission-patch
#       --ignore-not-found                                              (V >= 0.26.2)
#     helm K upgrade --install --create-namespace -n skoala-system skoala-init skoala/skoala-init
#       --version=V --set nacos-operator.image.tag=vV --set skoala-agent.image.tag=vV
#       --set sentinel-operator.image.tag=vV [--set seata-operator.image.tag=vV (V >= 0.28.0)]
#       -f skoala-init.yaml
#     the CRDs of the target chart, updated in place, never deleted     (V < 0.53.0)
#     helm pull skoala/skoala-init --version=V --untar --untardir chart
#     kubectl K apply --server-side --force-conflicts
#       -f chart/skoala-init/charts/contour-provisioner/crds/contour.yaml
#       -f chart/skoala-init/charts/contour-provisioner-prereq/crds/gateway-api.yaml
#       [-f chart/skoala-init/charts/contour-provisioner/crds/higress.gen.yaml (V >= 0.52.1)]
set -Eeuo pipefail

: "${VERSION:?VERSION: the target version, e.g. 0.19.2}"
: "${REPO_URL:?REPO_URL: the chart repository URL}"
HELM=${HELM:-helm}
KUBECTL=${KUBECTL:-kubectl}
P=${P:-1}
WORK=${WORK:-$PWD/runbook-work}
DB_JOB=${DB_JOB:-}
NS=skoala-system
TAG=v$VERSION
export VERSION REPO_URL HELM KUBECTL P WORK DB_JOB

# $1 >= $2, as versions
ver_ge() { [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1) == "$2" ]]; }

# One cluster's line (NAME<TAB>KUBECONFIG<TAB>CONTEXT): sets name, kubeconfig, context, dir, log,
# and names the cluster in the message of whatever fails from here on.
enter() {
  IFS=$'\t' read -r name kubeconfig context <<<"$1"
  dir=$WORK/$name
  log=$dir/log
  mkdir -p "$dir"
  : >"$log"
  cd "$dir"
  trap 'rc=$?; echo "runbook: $name: failed (exit $rc): $BASH_COMMAND" >&2; tail -n 5 "$log" | sed "s/^/runbook: $name:   /" >&2; exit 255' ERR
  helm_k=(--kubeconfig "$kubeconfig" --kube-context "$context")
  kubectl_k=(--kubeconfig "$kubeconfig" --context "$context")
  start=$EPOCHREALTIME
}

done_line() { printf '%s\t%s\t%s\n' "$name" "$start" "$EPOCHREALTIME"; }

control_plane() {
  enter "$1"
  if [[ -n $DB_JOB ]]; then
    job=$("$KUBECTL" "${kubectl_k[@]}" -n "$NS" apply -f "$DB_JOB" -o name 2>>"$log")
    "$KUBECTL" "${kubectl_k[@]}" -n "$NS" wait --for=condition=complete "$job" --timeout=10m >>"$log" 2>&1
  fi
  "$HELM" "${helm_k[@]}" -n "$NS" get values skoala -o yaml >skoala.yaml 2>>"$log"
  "$HELM" repo add skoala "$REPO_URL" >>"$log" 2>&1
  "$HELM" repo update >>"$log" 2>&1
  "$HELM" "${helm_k[@]}" upgrade --install --create-namespace -n "$NS" skoala skoala/skoala --version="$VERSION" \
    --set hive.image.tag="$TAG" --set sesame.image.tag="$TAG" -f skoala.yaml >>"$log" 2>&1
  done_line
}

worker() {
  enter "$1"
  "$HELM" "${helm_k[@]}" -n "$NS" get values skoala-init -o yaml >skoala-init.yaml 2>>"$log"
  "$HELM" repo add skoala "$REPO_URL" >>"$log" 2>&1
  "$HELM" repo update >>"$log" 2>&1
  if ver_ge "$VERSION" 0.26.2; then
    "$KUBECTL" "${kubectl_k[@]}" -n "$NS" delete jobs gateway-api-admission gateway-api-admission-patch \
      --ignore-not-found >>"$log" 2>&1
  fi
  local set=(--set nacos-operator.image.tag="$TAG" --set skoala-agent.image.tag="$TAG"
    --set sentinel-operator.image.tag="$TAG")
  if ver_ge "$VERSION" 0.28.0; then set+=(--set seata-operator.image.tag="$TAG"); fi
  "$HELM" "${helm_k[@]}" upgrade --install --create-namespace -n "$NS" skoala-init skoala/skoala-init \
    --version="$VERSION" "${set[@]}" -f skoala-init.yaml >>"$log" 2>&1
  if ! ver_ge "$VERSION" 0.53.0; then
    rm -rf chart
    "$HELM" pull skoala/skoala-init --version="$VERSION" --untar --untardir chart >>"$log" 2>&1
    local crds=(-f chart/skoala-init/charts/contour-provisioner/crds/contour.yaml
      -f chart/skoala-init/charts/contour-provisioner-prereq/crds/gateway-api.yaml)
    if ver_ge "$VERSION" 0.52.1; then crds+=(-f chart/skoala-init/charts/contour-provisioner/crds/higress.gen.yaml); fi
    "$KUBECTL" "${kubectl_k[@]}" apply --server-side --force-conflicts "${crds[@]}" >>"$log" 2>&1
  fi
  done_line
}

# xargs runs this same script once per worker cluster.
if [[ ${1:-} == --worker ]]; then
  worker "$2"
  exit 0
fi

clusters=${1:?usage: runbook.sh CLUSTERS_FILE (tab-separated NAME KUBECONFIG CONTEXT, control plane first)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
clusters=$(cd "$(dirname "$clusters")" && pwd)/$(basename "$clusters")

# The control plane, in a subshell (it changes directory); its failure stops everything.
(control_plane "$(head -n 1 "$clusters")")
# Then the worker clusters, P at a time; a failed one (exit 255) makes xargs start no other.
trap 'echo "runbook: stopped: a worker cluster failed" >&2; exit 1' ERR
tail -n +2 "$clusters" | sed '/^[[:space:]]*$/d' | xargs -d '\n' -P "$P" -n 1 "$BASH" "$0" --worker
