#!/bin/bash
# Stand-in for helm and kubectl in the benchmark (installed as two symlinks named helm and kubectl).
#
# record: runs the real tool (BENCH_REAL_HELM / BENCH_REAL_KUBECTL) for the product's upgrade of a
#         real sandbox (1 control plane + 1 worker) and stores each answer (stdout, stderr, exit
#         code, and the files helm pull writes) under the command's key and its occurrence.
# replay: sleeps BENCH_LATENCY seconds, then answers with what the real tool answered to the same
#         command on the template cluster of the same role, the cluster's name and the upgrade ID
#         put back in. So the product reads real helm and kubectl output for any number of clusters.
#
# The key is the argv with what differs between clusters and runs replaced: kubeconfig paths,
# context names, the cluster's name, the upgrade ID and its owner mark (release labels), the worker's work/backup dirs and mkdtemp's
# random suffixes. A poll (the same key again, no other command on that cluster in between) is
# recorded as its last answer: replay never waits for a rollout that the recording waited for.
#
# Every call appends "start<TAB>end<TAB>cluster<TAB>tool<TAB>key-hash<TAB>status" to calls.log.
# Bash builtins only on the replay path (no process forked unless helm pull unpacks a chart): the
# stand-in's own cost is small, and the same for the product and for the shell baseline.
set -u
tool=${0##*/}
dir=${BENCH_STANDIN_DIR:?BENCH_STANDIN_DIR is not set}
mode=${BENCH_STANDIN_MODE:-replay}
state=${BENCH_STATE_DIR:-$dir/state}
start=$EPOCHREALTIME

cluster=host
norm=()
prev=
for a in "$@"; do
  case $prev in
    --kubeconfig) norm+=(@KUBECONFIG@); prev=$a; [[ $a =~ /([a-z0-9-]+)/kubeconfig$ ]] && [[ $cluster == host ]] && cluster=${BASH_REMATCH[1]}; continue ;;
    --context | --kube-context) norm+=(@CONTEXT@); prev=$a; cluster=$a; continue ;;
  esac
  prev=$a
  norm+=("$a")
done
upgrade=${BENCH_UPGRADE_ID:-}
owner=${BENCH_OWNER_MARK:-}
for i in "${!norm[@]}"; do
  a=${norm[$i]}
  [[ -n $upgrade ]] && a=${a//"$upgrade"/@UPGRADE@}
  [[ -n $owner ]] && a=${a//"$owner"/@OWNER@}
  [[ $cluster != host ]] && a=${a//"$cluster"/@CLUSTER@}
  if [[ -n ${BENCH_WORK_DIR:-} && $a == "$BENCH_WORK_DIR"* ]]; then
    a=@WORK@${a#"$BENCH_WORK_DIR"}
    a=${a//-[A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9]\//-XXXXXX/}
    [[ $a =~ ^(.*-)[A-Za-z0-9]{6}$ ]] && a=${BASH_REMATCH[1]}XXXXXX
  fi
  [[ -n ${BENCH_BACKUP_DIR:-} && $a == "$BENCH_BACKUP_DIR"* ]] && a=@BACKUP@${a#"$BENCH_BACKUP_DIR"}
  norm[$i]=$a
done
printf -v key '%s\x1f' "$tool" "${norm[@]}"
# Replay looks the key up in the index the recording wrote (no process forked); record hashes it.
declare -A K=()
[[ -f $dir/index.sh ]] && source "$dir/index.sh"
hash=${K[$key]:-}
if [[ -z $hash && $mode == record ]]; then
  read -r hash _ < <(printf '%s' "$key" | md5sum)
  printf 'K[%q]=%s\n' "$key" "$hash" >> "$dir/index.sh"
fi

role=host
if [[ $cluster != host ]]; then
  if [[ $cluster == "${BENCH_CONTROL_PLANE:-control-plane}" ]]; then role=cp; else role=worker; fi
fi
outdir=
for ((i = 1; i < $#; i++)); do
  case ${!i} in --untardir | --destination) j=$((i + 1)); outdir=${!j} ;; esac
done

[[ -d $state/$cluster ]] || mkdir -p "$state/$cluster"
counter=$state/$cluster/$hash
n=0
[[ -f $counter ]] && read -r n last < "$counter"

log() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$start" "$EPOCHREALTIME" "$cluster" "$tool" "$hash" "$1" >> "$dir/calls.log"; }

if [[ $mode == record ]]; then
  # A repeated command right after itself on the same cluster is a poll: keep its last answer only.
  lastkey=
  [[ -f $state/$cluster/.last ]] && read -r lastkey < "$state/$cluster/.last"
  [[ $lastkey == "$hash" && $n -gt 0 ]] || n=$((n + 1))
  echo "$n" > "$counter"
  echo "$hash" > "$state/$cluster/.last"
  slot=$dir/responses/$role/$hash/$n
  mkdir -p "$slot"
  real=BENCH_REAL_${tool^^}
  "${!real}" "$@" > "$slot/out" 2> "$slot/err"
  rc=$?
  echo "$rc" > "$slot/rc"
  printf '%s\n' "${norm[@]}" > "$dir/responses/$role/$hash/argv"
  echo "$n" > "$dir/responses/$role/$hash/count"
  if [[ -n $outdir && -d $outdir ]]; then tar -C "$outdir" -cf "$slot/files.tar" .; fi
  for f in out err; do
    IFS= read -r -d '' text < "$slot/$f"
    [[ -n $upgrade ]] && text=${text//"$upgrade"/@UPGRADE@}
    [[ -n $owner ]] && text=${text//"$owner"/@OWNER@}
    [[ $cluster != host ]] && text=${text//"$cluster"/@CLUSTER@}
    printf '%s' "$text" > "$slot/$f"
  done
  cat "$slot/out"
  cat "$slot/err" >&2
  log "record $n"
  exit "$rc"
fi

# The latency: a read that times out on a FIFO nobody writes to (bash's sleep is a process).
read -r -t "${BENCH_LATENCY:-0.2}" <> "$dir/idle.fifo"
base=$dir/responses/$role/$hash
if [[ -z $hash || ! -f $base/count ]]; then
  log MISS
  printf '%s %s\n' "$tool" "${norm[*]}" >> "$dir/misses.log"
  echo "stand-in: no recorded answer for: $tool ${norm[*]}" >&2
  exit 97
fi
read -r count < "$base/count"
n=$((n + 1))
echo "$n" > "$counter"
slot=$base/$((n < count ? n : count))
if [[ -n $outdir && -f $slot/files.tar ]]; then mkdir -p "$outdir" && tar -C "$outdir" -xf "$slot/files.tar"; fi
for f in out err; do
  text=
  IFS= read -r -d '' text < "$slot/$f"
  [[ -n $upgrade ]] && text=${text//@UPGRADE@/"$upgrade"}
  [[ -n $owner ]] && text=${text//@OWNER@/"$owner"}
  [[ $cluster != host ]] && text=${text//@CLUSTER@/"$cluster"}
  if [[ $f == out ]]; then printf '%s' "$text"; else printf '%s' "$text" >&2; fi
done
read -r rc < "$slot/rc"
log ok
exit "$rc"
