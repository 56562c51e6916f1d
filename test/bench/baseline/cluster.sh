#!/bin/bash
# The shell baseline for one cluster: runs a recorded command sequence (one command per line,
# tab-separated: tool, then argv with placeholders) through the same stand-in helm and kubectl,
# in order, stopping at the first failure. No retries, no state, no durability.
#   cluster.sh SEQUENCE_FILE CLUSTER
# Needs BENCH_BIN (the stand-in's bin dir), BENCH_KUBE_DIR, BENCH_UPGRADE_ID, BENCH_WORK_DIR and
# BENCH_BACKUP_DIR in the environment.
set -u
seq=$1
cluster=$2
# mkdtemp's random 6-character suffix: one per cluster (the stand-in normalizes it away).
token=$(printf '%06d' "${cluster//[!0-9]/}")
while IFS=$'\t' read -r -a argv; do
  tool=${argv[0]}
  args=()
  for a in "${argv[@]:1}"; do
    case $a in
      @KUBECONFIG@) a=$BENCH_KUBE_DIR/$cluster/kubeconfig ;;
      @CONTEXT@) a=$cluster ;;
    esac
    a=${a//@CLUSTER@/$cluster}
    a=${a//@UPGRADE@/$BENCH_UPGRADE_ID}
    a=${a//@WORK@/$BENCH_WORK_DIR}
    a=${a//@BACKUP@/$BENCH_BACKUP_DIR}
    a=${a//-XXXXXX/-$token}
    args+=("$a")
  done
  "$BENCH_BIN/$tool" "${args[@]}" > /dev/null 2>&1 || { echo "$cluster: $tool ${args[*]} failed" >&2; exit 1; }
done < "$seq"
