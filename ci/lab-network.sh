#!/usr/bin/env bash
# lab-network.sh -- the lab's network on one machine, for the tests that need compute nodes that
# are not the login node (tests/sge/test_lab_network.py). Run it after `ci/setup-sge.sh setup`.
#
# What it builds (as root; iproute2 and util-linux):
#   * a bridge named bond1 (10.77.0.1) on this host: the login node's interface, where the
#     console's scheduler binds. This host gets no ib0, as on the lab's login node.
#   * compute nodes node1..nodeN: network namespaces, each with a veth end named ib0
#     (node1 = 10.77.0.2, node2 = 10.77.0.3, ...) on the bridge, its own hostname (unshare --uts)
#     and its own sge_execd, so every job started there, and every dask worker, lives in that
#     node's network namespace. Name resolution: this host's /etc/hosts lists the nodes; inside a
#     node /etc/netns/<node>/hosts makes this host's name resolve to bond1's address.
#   All addresses live inside namespaces this script creates; nothing leaves the machine.
#
# How the one-host tests and the lab tests share the grid (the decision):
#   The nodes join the SAME queue as the login host, grid_short.q, because the lab tests start
#   the shipped `naist` profile and its queue is grid_short.q. To keep every other job off the
#   nodes, each node carries a FORCED boolean complex `lab_node` (exec host complex_values
#   lab_node=TRUE): SGE puts a job on a node only when it asks for it with `-l lab_node=TRUE`, and
#   a job that asks for it can run nowhere else. So the one-host tests (and other people's jobs
#   on this machine), which use `--interface lo` and ask for no lab_node, can never land on a
#   node, whatever the load; the lab tests add `--resource-spec lab_node=TRUE` (and
#   `,hostname=nodeN` to choose a node). The login host's slots are untouched (8 here, 4 in CI);
#   each node adds LAB_SLOTS slots (default 2) that only lab jobs can use.
#
# Usage (as root):
#   lab-network.sh up [N]     N compute nodes (default $LAB_NODES or 2); idempotent: fixes what
#                             is missing, restarts a node's execd that is not running
#   lab-network.sh down       force-delete the jobs still on the nodes, stop their execds, take
#                             them out of SGE, delete the namespaces, bond1 and the complex
#   lab-network.sh status     the nodes and their queue instances; exit 0 only when all are up
#   lab-network.sh kill NODE  a power loss: SIGKILL every process of NODE's namespace at once
#                             (execd, shepherds, job scripts, workers); SGE is not told
#   lab-network.sh revive NODE  start NODE's execd again (after kill) and wait for its load report
#
# Tunables: LAB_NODES=2  LAB_SLOTS=2  SGE_QUEUE=grid_short.q
set -euo pipefail
export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine} SGE_CELL=${SGE_CELL:-default}
QUEUE=${SGE_QUEUE:-grid_short.q}
SLOTS=${LAB_SLOTS:-2}
NET=10.77.0
BRIDGE=bond1
COMPLEX=lab_node
SPOOL=/var/spool/gridengine/execd
LOGIN=$(hostname)
T0=$EPOCHREALTIME

log() { printf '[lab-network %5ss] %s\n' "$(awk -v a="$EPOCHREALTIME" -v b="$T0" 'BEGIN{printf "%.1f", a-b}')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
quiet() { local out; if ! out="$("$@" 2>&1)"; then printf '%s\n' "$out" >&2; return 1; fi; }
nodes() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^node[0-9]+$' | sort -V || true; }
node_index() { echo "${1#node}"; }
execd_alive() {  # execd_alive NODE: its execd runs (a zombie does not count)
  local p st
  p=$(cat "$SPOOL/$1/execd.pid" 2>/dev/null || true)
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sge_execd ] || return 1
  st=$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f1)
  [ "$st" != Z ] && [ "$st" != X ]
}
instance_up() {  # instance_up NODE: its execd runs and answers, its queue instance has no u/E/d
  local st
  # (qstat alone is not enough: SGE shows a dead node's last load until max_unheard, 5 min)
  execd_alive "$1" && qping -info "$1" 6445 execd 1 >/dev/null 2>&1 || return 1
  st=$(qstat -f -q "$QUEUE@$1" 2>/dev/null | awk -v q="$QUEUE@$1" '$1==q{print ($6==""?"ok":$6)}')
  [ "$st" = ok ]
}
wait_up() {  # wait_up NODE...
  local n
  for _ in $(seq 1 120); do
    for n in "$@"; do instance_up "$n" || { sleep 0.5; continue 2; }; done
    return 0
  done
  die "queue instances $* did not report load within 60 s"
}
jobs_on() {  # job ids with a task on NODE (any user: only lab jobs can run there)
  qstat -u '*' -s rs -q "$QUEUE@$1" 2>/dev/null | awk 'NR>2{print $1}' | sort -u
}

ensure_complex() {
  local f
  qconf -sc | grep -q "^$COMPLEX " && return
  f=$(mktemp); qconf -sc > "$f"
  # name shortcut type relop requestable consumable default urgency
  echo "$COMPLEX $COMPLEX BOOL == FORCED NO FALSE 0" >> "$f"
  quiet qconf -Mc "$f"; rm -f "$f"
}

start_execd() {  # in the node's namespaces: its network, its hostname
  local name=$1
  install -d -o sgeadmin -g sgeadmin "$SPOOL/$name"
  execd_alive "$name" && return
  ip netns exec "$name" unshare --uts sh -c "hostname $name; exec /usr/sbin/sge_execd </dev/null"
}

add_node() {
  local name=$1 i addr f
  i=$(node_index "$name"); addr=$NET.$((i + 1))
  ip netns list | grep -qw "$name" || ip netns add "$name"
  if ! ip link show "v-$name" >/dev/null 2>&1; then
    ip link add "v-$name" type veth peer name ib0 netns "$name"
    ip link set "v-$name" master "$BRIDGE" up
    ip netns exec "$name" ip addr add "$addr/24" dev ib0
    ip netns exec "$name" ip link set ib0 up
    ip netns exec "$name" ip link set lo up
  fi
  grep -qE "[[:space:]]$name\$" /etc/hosts || echo "$addr $name" >> /etc/hosts
  # sge_qmaster keeps the lookups that failed: after a 'down' (which took the name out of
  # /etc/hosts) it may not see the name again until it restarts; it shows as `qconf -ah` or,
  # with the host still listed from before, as `qconf -Ae` failing
  local stale="lab-network: sge_qmaster cannot resolve $name yet; restart it (ci/setup-sge.sh stop, then start) and run up again"
  if ! qconf -sh 2>/dev/null | grep -qx "$name" && ! quiet qconf -ah "$name"; then
    echo "$stale" >&2
    return 1
  fi
  f=$(mktemp)
  printf 'hostname %s\nload_scaling NONE\ncomplex_values %s=TRUE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' \
    "$name" "$COMPLEX" > "$f"
  if qconf -se "$name" >/dev/null 2>&1; then quiet qconf -Me "$f"; else quiet qconf -Ae "$f"; fi || {
    rm -f "$f"
    echo "$stale" >&2
    return 1
  }
  rm -f "$f"
  qconf -sq "$QUEUE" | grep -qw "$name" || quiet qconf -aattr queue hostlist "$name" "$QUEUE"
  quiet qconf -mattr queue slots "$SLOTS" "$QUEUE@$name"
  start_execd "$name"
}

write_hosts() {  # write_hosts N: each node's own /etc/hosts, where this host is bond1's address
  local i j
  for i in $(seq 1 "$1"); do
    mkdir -p "/etc/netns/node$i"
    { echo "127.0.0.1 localhost"; echo "$NET.1 $LOGIN"
      for j in $(seq 1 "$1"); do echo "$NET.$((j + 1)) node$j"; done; } > "/etc/netns/node$i/hosts"
  done
}

up() {
  local n=${1:-${LAB_NODES:-2}} i
  [ "$(id -u)" = 0 ] || die "must run as root"
  command -v qconf >/dev/null && qconf -sq "$QUEUE" >/dev/null 2>&1 \
    || die "no SGE with queue $QUEUE: run ci/setup-sge.sh setup first"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  ensure_complex
  write_hosts "$n"  # before any execd starts: it resolves the qmaster's name at start
  for i in $(seq 1 "$n"); do add_node "node$i"; done
  wait_up $(nodes)
  log "up: $(nodes | tr '\n' ' ')on $BRIDGE $NET.1/24 ($LOGIN), queue $QUEUE, $SLOTS slots a node for jobs with -l $COMPLEX=TRUE"
}

kill_node() {  # a power loss: everything in the namespace dies at once, nobody is told
  local name=$1 pids
  ip netns list | grep -qw "$name" || die "no node $name"
  for _ in $(seq 1 20); do
    pids=$(ip netns pids "$name" | tr '\n' ' ')
    [ -n "${pids// }" ] || { log "killed every process of $name"; return 0; }
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
  die "processes of $name survive SIGKILL: $(ip netns pids "$name" | tr '\n' ' ')"
}

revive() {
  local name=$1
  ip netns list | grep -qw "$name" || die "no node $name (run up)"
  start_execd "$name"
  wait_up "$name"
  log "$name is back"
}

down() {
  local name p ids f
  for name in $(nodes); do
    ids=$(jobs_on "$name" | tr '\n' ' ')
    if [ -n "${ids// }" ]; then
      # Only lab jobs can run on a node (the FORCED complex): a test that failed left them.
      log "force-deleting jobs still on $name: $ids"
      # shellcheck disable=SC2086
      qdel -f $ids >/dev/null 2>&1 || true
    fi
    p=$(cat "$SPOOL/$name/execd.pid" 2>/dev/null || true)
    qconf -ke "$name" >/dev/null 2>&1 || true
    for _ in $(seq 1 40); do execd_alive "$name" || break; sleep 0.25; done
    ip netns pids "$name" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    for _ in $(seq 1 20); do execd_alive "$name" || break; sleep 0.1; done
    if execd_alive "$name"; then log "warning: execd $p of $name still alive"; fi
    qconf -purge queue slots "$QUEUE@$name" >/dev/null 2>&1 || true
    qconf -dattr queue hostlist "$name" "$QUEUE" >/dev/null 2>&1 || true
    qconf -de "$name" >/dev/null 2>&1 || log "warning: qconf -de $name failed"
    qconf -dh "$name" >/dev/null 2>&1 || true
    ip netns del "$name" 2>/dev/null || true
    ip link del "v-$name" 2>/dev/null || true
    sed -i "/[[:space:]]$name\$/d" /etc/hosts
    rm -rf "/etc/netns/$name" "${SPOOL:?}/$name"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rmdir /etc/netns 2>/dev/null || true
  if qconf -sc 2>/dev/null | grep -q "^$COMPLEX "; then
    f=$(mktemp); qconf -sc | grep -v "^$COMPLEX " > "$f"
    quiet qconf -Mc "$f" || log "warning: complex $COMPLEX still in use, kept"
    rm -f "$f"
  fi
  log "down: no node, no $BRIDGE"
}

status() {
  local name ok=0 all
  all=$(nodes)
  [ -n "$all" ] || { echo "no lab nodes (run: $0 up)"; return 1; }
  ip link show "$BRIDGE" >/dev/null 2>&1 || { echo "no $BRIDGE"; ok=1; }
  for name in $all; do
    if instance_up "$name"; then echo "$name up ($QUEUE@$name)"; else echo "$name DOWN"; ok=1; fi
  done
  return $ok
}

case "${1:-status}" in
  up) up "${2:-}" ;;
  down) down ;;
  status) status ;;
  kill) kill_node "${2:?usage: $0 kill NODE}" ;;
  revive) revive "${2:?usage: $0 revive NODE}" ;;
  *) echo "usage: $0 up [N] | down | status | kill NODE | revive NODE" >&2; exit 2 ;;
esac
