# shellcheck shell=bash
# Real-systemd end-to-end test bed for restart-stale.
#
# Source this file from a bash script that runs as root with
# `set -euo pipefail`. It boots Debian containers (the release in
# E2E_SUITE: bookworm, trixie or sid, see "releases" below) with
# systemd-nspawn (systemd as PID 1 inside, cgroup v2 or legacy v1), installs
# demo packages into them from a local flat apt repository and runs commands
# inside them with nsenter.
#
# Why nsenter and not machinectl: the host's PID 1 is not systemd, so
# nspawn runs with --register=no and there is no machined to talk to.
#
# State of a booted machine lives in "$E2E_RUN_DIR/NAME/" (rootfs path,
# nspawn PID, leader PID, cgroup mode, console log) so that test scripts
# started as child processes (see run.sh) can use a container that their
# parent booted.
#
# Pitfall to remember when editing: bash ignores `set -e` inside a function
# that is called as part of `if`, `&&`, `||` or `!`. So helpers here that can
# fail are called plainly, and they check what they run themselves.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
: "${E2E_CACHE_DIR:=$E2E_DIR/.cache}"
: "${E2E_WORK_DIR:=/var/tmp/restart-stale-e2e}"
: "${E2E_RUN_DIR:=/run/restart-stale-e2e}"
# E2E_SUITE is the release the current rootfs and machine are of; run.sh
# sets it per release. A caller that sets only E2E_SUITE asks for that
# release alone (what E2E_SUITE meant before E2E_RELEASES existed).
if [[ -z ${E2E_RELEASES:-} && -n ${E2E_SUITE:-} ]]; then
    E2E_RELEASES=$E2E_SUITE
fi
: "${E2E_RELEASES:=bookworm trixie sid}"
: "${E2E_SUITE:=bookworm}"
: "${E2E_MIRROR:=http://deb.debian.org/debian}"
# The packages debootstrap adds to minbase. The rootfs cache is keyed by a
# hash of this list (and suite, arch, variant), so changing it rebuilds.
: "${E2E_INCLUDE:=systemd,systemd-sysv,dbus,apt}"
: "${E2E_BOOT_TIMEOUT:=90}"
: "${E2E_SHUTDOWN_TIMEOUT:=30}"
export E2E_REPO_ROOT E2E_CACHE_DIR E2E_WORK_DIR E2E_RUN_DIR E2E_SUITE

# What the demo packages provide (see pkgs/build-debs.sh).
E2E_DEMO_PKGS=(libdemo1 demo-allowed demo-denied demo-unrelated demo-otherdel demo-slow)
E2E_DEMO_UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service
    demo-otherdel.service demo-slow1.service demo-slow2.service
    demo-slow3.service demo-slow4.service demo-slow5.service)

# Machines booted and root filesystems unpacked by *this* shell; the EXIT
# trap tears down exactly these and nothing else.
E2E_OWNED_MACHINES=()
E2E_OWNED_DIRS=()
E2E_CUR_STEP=
E2E_CUR_STEP_T0=

# ---------------------------------------------------------------- logging

e2e_now_ms() { date +%s%3N; }

e2e_log() { printf '[e2e] %s\n' "$*" >&2; }

# fail MSG...: print a clear failure line and exit the script. The EXIT
# trap then dumps diagnostics and cleans up.
fail() {
    printf '[e2e] FAIL: %s\n' "$*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [[ $1 != "$2" ]]; then
        fail "${3:-values differ}: expected '$1', got '$2'"
    fi
    e2e_log "ok: ${3:-value} == '$1'"
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
    if [[ $1 == "$2" ]]; then
        fail "${3:-values equal}: did not expect '$1'"
    fi
    e2e_log "ok: ${3:-value} '$2' != '$1'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]: fixed-string containment.
assert_contains() {
    if [[ $1 != *"$2"* ]]; then
        printf '%s\n' "$1" | sed 's/^/[e2e]   | /' >&2
        fail "${3:-text} does not contain '$2' (text above)"
    fi
    e2e_log "ok: ${3:-text} contains '$2'"
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    if [[ $1 == *"$2"* ]]; then
        printf '%s\n' "$1" | sed 's/^/[e2e]   | /' >&2
        fail "${3:-text} contains '$2' (text above)"
    fi
    e2e_log "ok: ${3:-text} does not contain '$2'"
}

# assert_line TEXT ERE [WHAT]: some line of TEXT matches the extended
# regular expression ERE (grep -E).
assert_line() {
    if ! grep -qE -- "$2" <<<"$1"; then
        printf '%s\n' "$1" | sed 's/^/[e2e]   | /' >&2
        fail "${3:-text}: no line matches /$2/ (text above)"
    fi
    e2e_log "ok: ${3:-text} has a line matching /$2/"
}

# assert_no_line TEXT ERE [WHAT]: no line of TEXT matches ERE.
assert_no_line() {
    if grep -qE -- "$2" <<<"$1"; then
        printf '%s\n' "$1" | sed 's/^/[e2e]   | /' >&2
        fail "${3:-text}: a line matches /$2/ (text above)"
    fi
    e2e_log "ok: ${3:-text} has no line matching /$2/"
}

# e2e_measure TEXT...: log a measurement ("[e2e] measure: TEXT"). These are
# numbers for humans, never assertions; run.sh repeats them at the end (it
# exports E2E_MEASURE_FILE) so they are easy to find in a long log.
e2e_measure() {
    e2e_log "measure: $* [$E2E_SUITE ${E2E_MODE:-?}]"
    if [[ -n ${E2E_MEASURE_FILE:-} ]]; then
        printf '%s: %s [%s %s]\n' "$(basename "$0")" "$*" "$E2E_SUITE" "${E2E_MODE:-?}" >>"$E2E_MEASURE_FILE"
    fi
}

# e2e_median N...: the median of numbers (the lower one of the middle two).
e2e_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# e2e_step DESC CMD...: run CMD and log "[e2e] step DESC took N ms".
# On failure set -e ends the script; the EXIT trap then reports which step
# failed and after how long.
e2e_step() {
    local desc=$1 t0 outer=$E2E_CUR_STEP outer_t0=$E2E_CUR_STEP_T0
    shift
    t0=$(e2e_now_ms)
    E2E_CUR_STEP=$desc
    E2E_CUR_STEP_T0=$t0
    e2e_log "step $desc ..."
    "$@"
    # Steps nest (a test step runs sub-steps): restore the enclosing one.
    E2E_CUR_STEP=$outer
    E2E_CUR_STEP_T0=$outer_t0
    e2e_log "step $desc took $(($(e2e_now_ms) - t0)) ms"
}

e2e_require_root() {
    [[ $(id -u) == 0 ]] || fail "the e2e test bed must run as root"
}

# e2e_host_deps: install what the bed needs on the host if it is missing,
# so a fresh machine works. Debian package names.
e2e_host_deps() {
    local missing=() cmd pkg
    for cmd in systemd-nspawn:systemd-container debootstrap:debootstrap \
        dpkg-scanpackages:dpkg-dev gcc:gcc nsenter:util-linux flock:util-linux; do
        pkg=${cmd#*:}
        command -v "${cmd%%:*}" >/dev/null || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        e2e_log "installing host packages: ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

# ---------------------------------------------------------------- cleanup

# e2e_init: call once at the top of a script that boots machines. Installs
# the trap that always powers off, removes root filesystems and leftover
# cgroups, even on failure or Ctrl-C.
e2e_init() {
    e2e_require_root
    trap e2e_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$E2E_WORK_DIR" "$E2E_RUN_DIR" "$E2E_CACHE_DIR"
}

e2e_cleanup() {
    local rc=$? name dir
    set +e
    trap - EXIT
    if ((rc != 0)); then
        if [[ -n $E2E_CUR_STEP ]]; then
            e2e_log "step $E2E_CUR_STEP FAILED after $(($(e2e_now_ms) - E2E_CUR_STEP_T0)) ms"
        fi
        for name in "${E2E_OWNED_MACHINES[@]}"; do
            e2e_debug_dump "$name"
        done
    fi
    for name in "${E2E_OWNED_MACHINES[@]}"; do
        e2e_shutdown "$name"
    done
    for dir in "${E2E_OWNED_DIRS[@]}"; do
        [[ -d $dir ]] && rm -rf --one-file-system "$dir"
    done
    exit "$rc"
}

# e2e_debug_dump NAME: what a human needs to see when a test fails.
e2e_debug_dump() {
    local name=$1 run=$E2E_RUN_DIR/$1
    [[ -d $run ]] || return 0
    e2e_log "---- diagnostics for $name ----"
    if [[ -f $run/console.log ]]; then
        e2e_log "console (last 30 lines):"
        tail -n 30 "$run/console.log" | sed 's/^/[e2e]   | /' >&2
    fi
    if _e2e_alive "$name"; then
        # `systemctl status` exits 3 for a failed unit: under pipefail that
        # must not end run.sh, which goes on with the next test.
        e2e_in "$name" systemctl --no-pager --failed 2>&1 | sed 's/^/[e2e]   | /' >&2 || true
        e2e_in "$name" systemctl --no-pager status 'demo-*' 2>&1 | tail -n 60 | sed 's/^/[e2e]   | /' >&2 || true
        e2e_in "$name" journalctl --no-pager -n 40 2>&1 | sed 's/^/[e2e]   | /' >&2 || true
    fi
    e2e_log "---- end of diagnostics ----"
}

# ---------------------------------------------------------------- rootfs

_e2e_rootfs_tarball() {
    local key
    key=$(printf '%s\n' "$E2E_SUITE" "$(dpkg --print-architecture)" minbase "$E2E_INCLUDE" |
        sha256sum | cut -c1-16)
    printf '%s/rootfs-%s-%s.tar\n' "$E2E_CACHE_DIR" "$E2E_SUITE" "$key"
}

_e2e_build_rootfs_tarball() {
    local tarball=$1 tmp log
    tmp=$(mktemp -d "$E2E_WORK_DIR/debootstrap.XXXXXX")
    E2E_OWNED_DIRS+=("$tmp")
    log=$tmp.log
    e2e_log "no cached rootfs; running debootstrap (log: $log)"
    if ! debootstrap --variant=minbase --include="$E2E_INCLUDE" \
        "$E2E_SUITE" "$tmp" "$E2E_MIRROR" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        fail "debootstrap failed"
    fi
    # The downloaded .debs are not needed inside and double the size.
    rm -f "$tmp"/var/cache/apt/archives/*.deb
    # mktemp -d made the root 0700, and tar records ".": with / unreadable
    # for non-root users, dbus-daemon (user messagebus) cannot reach
    # /run/systemd/notify and dbus.service never becomes ready.
    chmod 0755 "$tmp"
    tar -C "$tmp" --numeric-owner --xattrs --xattrs-include='*' -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$tmp" "$log"
}

# e2e_rootfs DIR: fill DIR with a fresh root filesystem of $E2E_SUITE.
# Builds the cached tarball with debootstrap first if there is none.
e2e_rootfs() {
    local dir=$1 tarball
    tarball=$(_e2e_rootfs_tarball)
    mkdir -p "$E2E_CACHE_DIR" "$E2E_WORK_DIR"
    # flock: two runs at once must not both debootstrap into the same name.
    exec {lockfd}>"$tarball.lock"
    flock "$lockfd"
    if [[ ! -s $tarball ]]; then
        _e2e_build_rootfs_tarball "$tarball"
    fi
    flock -u "$lockfd"
    exec {lockfd}>&-
    [[ -e $dir ]] && rm -rf --one-file-system "$dir"
    mkdir -p "$dir"
    E2E_OWNED_DIRS+=("$dir")
    tar -C "$dir" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tarball"
    # See _e2e_build_rootfs_tarball: / must be 0755 (older caches had 0700).
    chmod 0755 "$dir"
    _e2e_prepare_rootfs "$dir"
}

# Per-run tweaks, done on the unpacked copy so the cache key stays simple.
_e2e_prepare_rootfs() {
    local dir=$1 t
    # Only the local demo repo: tests must not depend on (or wait for) the
    # network, and apt-get update stays well under a second.
    rm -f "$dir/etc/apt/sources.list"
    printf 'deb [trusted=yes] file:/srv/repo ./\n' >"$dir/etc/apt/sources.list.d/e2e.list"
    cat >"$dir/etc/apt/apt.conf.d/90e2e" <<'EOF'
Acquire::Languages "none";
Dpkg::Use-Pty "0";
APT::Install-Recommends "0";
EOF
    mkdir -p "$dir/srv/repo" "$dir/srv/tool"
    : >"$dir/srv/repo/Packages"
    # Masking is just a /dev/null symlink; doing it before boot means the
    # timers never start, so no apt run can race with the tests.
    for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer; do
        ln -sfn /dev/null "$dir/etc/systemd/system/$t"
    done
}

# ---------------------------------------------------------------- machines

_e2e_state() { cat "$E2E_RUN_DIR/$1/$2"; }

# True if NAME's nspawn process still exists (and is not a zombie).
_e2e_alive() {
    local pid state
    pid=$(_e2e_state "$1" nspawn.pid 2>/dev/null) || return 1
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

# The container's PID 1 as the host sees it: a child of the nspawn process
# whose NSpid line ends in 1 (the innermost PID namespace's view).
_e2e_find_leader() {
    local nspawn=$1 child nspid f
    local -a kids=() k
    for f in /proc/"$nspawn"/task/*/children; do
        k=()
        read -ra k <"$f" 2>/dev/null || true # no trailing newline: read "fails"
        kids+=("${k[@]}")
    done
    for child in "${kids[@]}"; do
        nspid=$(awk '/^NSpid:/ { print NF, $NF }' "/proc/$child/status" 2>/dev/null) || continue
        # NF > 2 means the process lives in a nested PID namespace.
        if [[ $nspid == *" 1" && ${nspid%% *} -gt 2 ]]; then
            echo "$child"
            return 0
        fi
    done
    return 1
}

# e2e_boot NAME DIR v2|v1: boot DIR with systemd inside; cgroup v2
# (unified) or legacy v1. Returns when the system is running/degraded.
e2e_boot() {
    local name=$1 dir=$2 mode=$3 unified run nspawn leader state i t0
    case $mode in
        v2) unified=1 ;;
        v1) unified=0 ;;
        *) fail "e2e_boot: mode must be v2 or v1, not '$mode'" ;;
    esac
    run=$E2E_RUN_DIR/$name
    [[ -e $run/nspawn.pid ]] && _e2e_alive "$name" && fail "machine $name is already running"
    rm -rf "$run"
    mkdir -p "$run"
    printf '%s\n' "$dir" >"$run/rootfs"
    printf '%s\n' "$mode" >"$run/mode"
    # debootstrap copied the host's /etc/hostname; name the machine after
    # NAME so journal lines and prompts say which container they come from.
    printf '%s\n' "$name" >"$dir/etc/hostname"
    t0=$(e2e_now_ms)
    # --keep-unit/--register=no: host PID 1 is not systemd, there is no
    # machined or scope to create. --console=read-only keeps the boot
    # messages in console.log without needing a tty. --private-network:
    # a loopback of its own, so that machines booted side by side (run.sh's
    # lanes) never fight over a port; no test needs the host's network.
    # nspawn puts the container in "payload" below the cgroup it starts
    # in: two machines started from the same cgroup would share it. So
    # each starts from a cgroup of its own (_e2e_machine_cgroups), which
    # lets run.sh boot machines side by side (its lanes).
    _e2e_machine_cgroups "$name" >"$run/cgroups.own"
    # shellcheck disable=SC2016 # expanded by the inner bash
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=$unified bash -c '
        while read -r cg; do echo "$$" >"$cg/cgroup.procs" || exit 1; done <"$1"
        shift
        exec systemd-nspawn "$@"' e2e-nspawn "$run/cgroups.own" -q -D "$dir" -b \
        --register=no --keep-unit -M "$name" --console=read-only --private-network \
        </dev/null >"$run/console.log" 2>&1 &
    nspawn=$!
    printf '%s\n' "$nspawn" >"$run/nspawn.pid"
    E2E_OWNED_MACHINES+=("$name")

    leader=
    for ((i = 0; i < 200; i++)); do
        _e2e_alive "$name" || break
        leader=$(_e2e_find_leader "$nspawn") && break
        sleep 0.05
    done
    if [[ -z $leader ]]; then
        tail -n 20 "$run/console.log" >&2
        fail "could not find the leader of $name (nspawn $nspawn)"
    fi
    printf '%s\n' "$leader" >"$run/leader"
    e2e_log "machine $name: nspawn pid $nspawn, leader pid $leader (mode $mode)"

    # Wait for boot to finish. is-system-running exits non-zero for
    # "starting" etc., so only its output is looked at.
    state=
    for ((i = 0; i < E2E_BOOT_TIMEOUT * 10; i++)); do
        _e2e_alive "$name" || break
        state=$(e2e_in "$name" systemctl is-system-running 2>/dev/null) || true
        [[ $state == running || $state == degraded ]] && break
        sleep 0.1
    done
    if [[ $state != running && $state != degraded ]]; then
        tail -n 30 "$run/console.log" >&2
        fail "machine $name did not finish booting (state '$state')"
    fi
    if [[ $state == degraded ]]; then
        e2e_log "machine $name is degraded; failed units:"
        e2e_in "$name" systemctl --no-pager --no-legend --failed | sed 's/^/[e2e]   | /' >&2
    fi
    e2e_log "machine $name: $state after $(($(e2e_now_ms) - t0)) ms"
    # The timers were masked in the rootfs before boot; make sure.
    state=$(e2e_in "$name" systemctl is-enabled apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer | sort -u) || true
    assert_eq masked "$state" "timer state"
}

# e2e_in NAME CMD...: run CMD in all of NAME's namespaces, with a clean
# environment. Note: this process stays in the host's cgroup, outside any
# unit of the container; use e2e_run for "as an admin would".
e2e_in() {
    local leader
    leader=$(_e2e_state "$1" leader)
    shift
    nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
}

# e2e_run NAME CMD...: run CMD inside NAME in its own transient unit, as an
# admin's shell would, wait for it and pass its output and exit status.
# The unit goes into user.slice (E2E_RUN_SLICE), where an admin's login
# session would be: in system.slice, apt and any hook it runs would sit in a
# system.slice unit (run-uN.service) that restart-stale would consider too.
# To test apt run from a system service (unattended-upgrades), set
# E2E_RUN_SLICE=system.slice.
e2e_run() {
    local name=$1
    shift
    e2e_in "$name" systemd-run --quiet --wait --pipe --collect \
        --slice="${E2E_RUN_SLICE:-user.slice}" \
        --setenv=DEBIAN_FRONTEND=noninteractive -- "$@" </dev/null
}

# e2e_apt NAME ARGS...: apt-get ARGS inside NAME in its own unit,
# non-interactive, keeping changed conffiles.
e2e_apt() {
    local name=$1
    shift
    e2e_run "$name" apt-get -y -q -o Dpkg::Options::=--force-confold "$@"
}

# e2e_unit_pid NAME UNIT: MainPID of UNIT as seen inside NAME (0 if none).
e2e_unit_pid() {
    e2e_in "$1" systemctl show -p MainPID --value "$2"
}

# e2e_host_pid NAME PID: the host's PID for PID inside NAME.
e2e_host_pid() {
    local name=$1 want=$2 leader ns p
    leader=$(_e2e_state "$name" leader)
    ns=$(readlink "/proc/$leader/ns/pid")
    for p in /proc/[0-9]*; do
        [[ $(readlink "$p/ns/pid" 2>/dev/null) == "$ns" ]] || continue
        if awk -v w="$want" '/^NSpid:/ { exit !($NF == w) }' "$p/status" 2>/dev/null; then
            echo "${p#/proc/}"
            return 0
        fi
    done
    return 1
}

# e2e_maps NAME PID: /proc/PID/maps read inside NAME.
e2e_maps() {
    e2e_in "$1" cat "/proc/$2/maps"
}

# e2e_wait_active NAME UNIT... : wait (up to 30 s) until all UNITs are
# active with a MainPID.
e2e_wait_active() {
    local name=$1 u i state
    shift
    for u in "$@"; do
        for ((i = 0; i < 300; i++)); do
            state=$(e2e_in "$name" systemctl show -p ActiveState --value "$u")
            [[ $state == active && $(e2e_unit_pid "$name" "$u") != 0 ]] && break
            sleep 0.1
        done
        [[ $state == active ]] || fail "$u in $name is '$state', not active"
    done
}

# e2e_unit_procs NAME UNIT: the PIDs (inside NAME) in UNIT's cgroup, one
# per line: from the unified hierarchy in v2, from name=systemd in v1.
e2e_unit_procs() {
    local name=$1 unit=$2 cg base=/sys/fs/cgroup
    cg=$(e2e_in "$name" systemctl show -p ControlGroup --value "$unit")
    [[ -n $cg ]] || fail "$unit in $name has no control group"
    [[ $(_e2e_state "$name" mode) == v1 ]] && base=/sys/fs/cgroup/systemd
    e2e_in "$name" cat "$base$cg/cgroup.procs"
}

# e2e_journal_cursor NAME: a cursor for e2e_journal, to see only what is
# logged inside NAME after this point. It is the cursor of a marker entry
# (tag e2e-cursor) that this logs first and waits for.
#
# Why a marker: journalctl before systemd 255 drops the first entry that
# matches a filter (-u, -t, FIELD=) after --after-cursor, whichever entry the
# cursor names (systemd issue #30288; bookworm has 252), so e2e_journal reads
# from the cursor inclusively, with --cursor. The cursor's own entry then
# must not match any filter a test uses, which a marker of our own ensures;
# the newest entry at the time could be, say, a line of the finish unit
# from the previous transaction.
e2e_journal_cursor() {
    local name=$1 mark out i
    mark="mark-$(date +%s%N)-$$-$RANDOM"
    e2e_in "$name" logger -t e2e-cursor -- "$mark"
    for ((i = 0; i < 100; i++)); do
        out=$(e2e_in "$name" journalctl -q --no-pager -t e2e-cursor -n 1 -o cat --show-cursor)
        if [[ $out == "$mark"$'\n'"-- cursor: "* ]]; then
            sed -n 's/^-- cursor: //p' <<<"$out"
            return 0
        fi
        sleep 0.1
    done
    echo "[e2e] e2e_journal_cursor: marker $mark did not reach $name's journal in 10 s" >&2
    return 1
}

# e2e_journal NAME CURSOR [JOURNALCTL-ARGS...]: journal entries after
# CURSOR (from e2e_journal_cursor), in short-unix format (seconds with
# microseconds), e.g. `e2e_journal m "$c" -u restart-stale-apt.service`.
# Markers of e2e_journal_cursor are left out.
e2e_journal() {
    local name=$1 cursor=$2
    shift 2
    e2e_in "$name" journalctl -q --no-pager -o short-unix --cursor="$cursor" "$@" |
        sed -E '/ e2e-cursor(\[[0-9]+\])?: mark-[0-9]+-[0-9]+-[0-9]+$/d'
}

# ---------------------------------------------------------------- the tool

E2E_FINISH_UNIT=restart-stale-apt.service

# e2e_wait_apt_finish NAME [SECS]: after an apt transaction with the tool's
# hooks installed, wait (default up to 60 s) until restart-stale-apt.service
# has acted: the unit is not running or queued and no record is waiting.
# `apt-hook finish` waits for a 2 s quiet period on the dpkg lock first.
e2e_wait_apt_finish() {
    local name=$1 secs=${2:-60} i state jobs left
    for ((i = 0; i < secs * 10; i++)); do
        # systemctl fails while PID 1 re-executes, which finish does when a
        # transaction replaced a library systemd maps: ask again.
        state=$(e2e_in "$name" systemctl show -p ActiveState --value "$E2E_FINISH_UNIT" 2>/dev/null) ||
            state=unreachable
        jobs=$(e2e_in "$name" systemctl list-jobs --no-legend "$E2E_FINISH_UNIT" 2>/dev/null) ||
            jobs=unreachable
        # The spool, and its fallback on /var for when /run fails.
        left=$(e2e_in "$name" find /run/restart-stale/apt /var/lib/restart-stale/spool/apt \
            -maxdepth 1 \( -name pending -o -name 'taken.*' \) 2>/dev/null) || true
        if [[ $state != active && $state != activating && $state != deactivating &&
            -z $jobs && -z $left ]]; then
            return 0
        fi
        sleep 0.1
    done
    fail "$E2E_FINISH_UNIT in $name still busy after ${secs}s (state '$state', record '$left')"
}

# e2e_remove_tool NAME: purge restart-stale (binary, apt hooks, conffiles)
# and its run-time state if a previous test left it installed, so that apt
# runs no hook until e2e_require_tool installs it again.
e2e_remove_tool() {
    local name=$1
    e2e_wait_apt_finish "$name"
    if e2e_in "$name" dpkg-query -W restart-stale >/dev/null 2>&1; then
        e2e_in "$name" dpkg --purge restart-stale >/dev/null
    fi
    e2e_in "$name" rm -rf /run/restart-stale
}

# e2e_shutdown NAME: power NAME off, wait for nspawn to exit (kill it after
# a timeout), remove leftover cgroups. Safe to call twice.
e2e_shutdown() {
    local name=$1 run=$E2E_RUN_DIR/$1 nspawn leader i t0 m
    [[ -d $run ]] || return 0
    t0=$(e2e_now_ms)
    nspawn=$(_e2e_state "$name" nspawn.pid 2>/dev/null) || nspawn=
    leader=$(_e2e_state "$name" leader 2>/dev/null) || leader=
    if [[ -n $nspawn ]] && _e2e_alive "$name"; then
        if [[ -n $leader ]]; then
            e2e_in "$name" systemctl --no-block poweroff >/dev/null 2>&1 || true
        fi
        for ((i = 0; i < E2E_SHUTDOWN_TIMEOUT * 10; i++)); do
            _e2e_alive "$name" || break
            sleep 0.1
        done
        if _e2e_alive "$name"; then
            e2e_log "machine $name did not power off in ${E2E_SHUTDOWN_TIMEOUT}s; killing it"
            # SIGKILL of the leader takes down the whole PID namespace.
            [[ -n $leader ]] && kill -KILL "$leader" 2>/dev/null
            kill -KILL "$nspawn" 2>/dev/null
            for ((i = 0; i < 50; i++)); do
                _e2e_alive "$name" || break
                sleep 0.1
            done
        fi
    fi
    # Reap it if it is our child; harmless otherwise.
    [[ -n $nspawn ]] && wait "$nspawn" 2>/dev/null
    _e2e_rm_cgroups "$run/cgroups.own"
    rm -rf "$run"
    for i in "${!E2E_OWNED_MACHINES[@]}"; do
        m=${E2E_OWNED_MACHINES[$i]}
        [[ $m == "$name" ]] && unset 'E2E_OWNED_MACHINES[i]'
    done
    e2e_log "machine $name: shut down in $(($(e2e_now_ms) - t0)) ms"
    return 0
}

# _e2e_machine_cgroups NAME: make NAME's own cgroup in each hierarchy that
# nspawn uses (the unified one, and the named "systemd" one of a hybrid or
# legacy host), print their paths.
_e2e_machine_cgroups() {
    local name=$1 h
    for h in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
        # Only a mounted hierarchy has cgroup.procs at its top.
        [[ -f $h/cgroup.procs ]] || continue
        mkdir -p "$h/rse2e-$name"
        echo "$h/rse2e-$name"
    done
}

# nspawn leaves "payload" and "supervisor" cgroups (and in them whatever the
# container's systemd created) behind in the host hierarchies when the host
# is not systemd. They are all inside the machine's own cgroups (OWN, the
# file _e2e_machine_cgroups' paths went to): remove those subtrees, deepest
# first, and nothing else, since a machine of another lane may be booting
# beside it. rmdir refuses anything still populated, so this cannot kill
# anything.
_e2e_rm_cgroups() {
    local own=$1 cg d
    [[ -f $own ]] || return 0
    while read -r cg; do
        [[ -d $cg ]] || continue
        find "$cg" -depth -type d | while read -r d; do
            rmdir "$d" 2>/dev/null || e2e_log "could not remove cgroup $d"
        done
    done <"$own"
}

# ---------------------------------------------------------------- packages

# e2e_build_debs: build the demo packages once per run, into
# $E2E_DEBS_DIR (exported, so child test scripts reuse them).
e2e_build_debs() {
    if [[ -z ${E2E_DEBS_DIR:-} || ! -d ${E2E_DEBS_DIR:-}/1.0 ]]; then
        E2E_DEBS_DIR=${E2E_DEBS_DIR:-$(mktemp -d "$E2E_WORK_DIR/debs.XXXXXX")}
        E2E_OWNED_DIRS+=("$E2E_DEBS_DIR")
        "$E2E_DIR/pkgs/build-debs.sh" "$E2E_DEBS_DIR" >&2
    fi
    export E2E_DEBS_DIR
}

# e2e_publish NAME v1|v2 [PKG...]: make NAME's repo /srv/repo hold version
# 1.0 of every demo package, except that for v2 the given PKGs (default:
# just libdemo1) are at 2.0 instead; then apt-get update inside.
# The default v2 changes only the library: daemons keep their own binaries,
# so the only stale mapping an upgrade creates is the old libdemo.so.1.
e2e_publish() {
    local name=$1 ver=$2 repo pkg
    shift 2
    [[ -n ${E2E_DEBS_DIR:-} ]] || fail "e2e_publish: call e2e_build_debs first"
    repo=$(_e2e_state "$name" rootfs)/srv/repo
    rm -f "$repo"/*.deb
    cp "$E2E_DEBS_DIR"/1.0/*.deb "$repo/"
    case $ver in
        v1) ;;
        v2)
            (($#)) || set -- libdemo1
            for pkg in "$@"; do
                rm -f "$repo/${pkg}"_*.deb
                cp "$E2E_DEBS_DIR/2.0/${pkg}"_2.0_*.deb "$repo/"
            done
            ;;
        *) fail "e2e_publish: version must be v1 or v2, not '$ver'" ;;
    esac
    e2e_repo_index "$name"
}

# e2e_publish_debs NAME DEB...: like `e2e_publish NAME v1`, but each DEB
# (a path on the host, e.g. from e2e_demo_redeb) replaces its package's
# 1.0 in the repo; then apt-get update inside.
e2e_publish_debs() {
    local name=$1 repo deb
    shift
    e2e_publish "$name" v1
    repo=$(_e2e_state "$name" rootfs)/srv/repo
    for deb in "$@"; do
        rm -f "$repo/$(basename "$deb" | cut -d_ -f1)"_*.deb
        cp "$deb" "$repo/"
    done
    e2e_repo_index "$name"
}

# e2e_demo_redeb PKG FROM VER CHANGELOG OUTDIR: the demo build's FROM (1.0
# or 2.0) .deb of PKG repackaged as version VER, shipping the file
# CHANGELOG (debian/changelog text) as /usr/share/doc/PKG/changelog.Debian.gz,
# as a real package does; writes OUTDIR/PKG_VER_ARCH.deb. build-debs.sh
# ships no changelogs: what the tool reads from them (docs/cves.md) would
# show up in every other test's report.
e2e_demo_redeb() {
    local pkg=$1 from=$2 ver=$3 changelog=$4 out=$5 tmp src
    [[ -n ${E2E_DEBS_DIR:-} ]] || fail "e2e_demo_redeb: call e2e_build_debs first"
    src=$(compgen -G "$E2E_DEBS_DIR/$from/${pkg}_${from}_*.deb") || fail "e2e_demo_redeb: no $pkg $from .deb"
    tmp=$(mktemp -d "$E2E_WORK_DIR/redeb.XXXXXX")
    E2E_OWNED_DIRS+=("$tmp")
    dpkg-deb -R "$src" "$tmp/root" || fail "e2e_demo_redeb: cannot unpack $src"
    sed -i "s/^Version: .*/Version: $ver/" "$tmp/root/DEBIAN/control"
    install -d -m 0755 "$tmp/root/usr/share/doc/$pkg"
    gzip -9nc "$changelog" >"$tmp/root/usr/share/doc/$pkg/changelog.Debian.gz"
    chmod 0644 "$tmp/root/usr/share/doc/$pkg/changelog.Debian.gz"
    mkdir -p "$out"
    dpkg-deb --root-owner-group -Zgzip --build "$tmp/root" "$out/" >/dev/null ||
        fail "e2e_demo_redeb: cannot build $pkg $ver"
    rm -rf "$tmp"
}

# The origin and label of the local repo's Release file, e.g. for
# unattended-upgrades' Origins-Pattern ("origin=restart-stale-e2e").
E2E_REPO_ORIGIN=restart-stale-e2e

# e2e_repo_index NAME: index NAME's repo /srv/repo (every .deb in it and in
# its subdirectories) and apt-get update inside. Besides Packages it writes
# a Release file naming E2E_REPO_ORIGIN, so the repo has an origin as a
# Debian archive does; apt then checks Packages against the Release's
# hash (the repo is [trusted=yes], so no signature is needed).
e2e_repo_index() {
    local name=$1 repo
    repo=$(_e2e_state "$name" rootfs)/srv/repo
    # dpkg-scanpackages runs on the host: the container's minbase has no
    # dpkg-dev, and the rootfs directory is the container's / anyway.
    (cd "$repo" && dpkg-scanpackages . 2>/dev/null >Packages)
    {
        printf 'Origin: %s\nLabel: %s\nSuite: e2e\nCodename: e2e\n' "$E2E_REPO_ORIGIN" "$E2E_REPO_ORIGIN"
        printf 'Date: %s\nSHA256:\n' "$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
        printf ' %s %s Packages\n' "$(sha256sum <"$repo/Packages" | cut -d' ' -f1)" "$(stat -c %s "$repo/Packages")"
    } >"$repo/Release"
    e2e_in "$name" apt-get update -q >/dev/null
}

# ------------------------------------------------ packages from the archive

# Debian packages a test needs beyond the rootfs (dnf and rpm for
# 90-dnf.sh, unattended-upgrades for 26-unattended-upgrades.sh). The
# container's apt sees only the local repo, so the .debs come from
# Debian's archive through apt on the host, resolved against the rootfs'
# dpkg status (only what the rootfs lacks), cached in
# $E2E_CACHE_DIR/SET-KEY/ and published in the container under
# /srv/repo/SET/. The key covers the rootfs tarball (its name holds the
# release; its size and time: a rebuilt rootfs may hold other versions)
# and the package list.
#
# The host's apt runs with a private state per release,
# $E2E_CACHE_DIR/apt-RELEASE/: its own sources.list (E2E_MIRROR, RELEASE,
# main, signed by the keyring of that release's rootfs), its own lists, no
# preferences; so the .debs are the container's release's whatever the
# host runs (the host's own lists are bookworm's, or whatever it is).

_e2e_archive_dir() {
    local set=$1 key tarball
    shift
    tarball=$(_e2e_rootfs_tarball)
    key=$(printf '%s\n' "$(basename "$tarball")" "$(stat -c '%s %Y' "$tarball" 2>/dev/null)" \
        "$@" | sha256sum | cut -c1-16)
    echo "$E2E_CACHE_DIR/$set-$key"
}

# _e2e_archive_apt STATEDIR LOG ARGS...: the host's apt-get on the private
# state of one release (see above), its output appended to LOG.
_e2e_archive_apt() {
    local st=$1 log=$2
    shift 2
    apt-get -q -y -o Dir::Etc::sourcelist="$st/sources.list" \
        -o Dir::Etc::sourceparts="$st/empty" -o Dir::Etc::preferences="$st/empty/none" \
        -o Dir::Etc::preferencesparts="$st/empty" -o Dir::State::lists="$st/lists" \
        -o Dir::State::extended_states="$st/extended_states" \
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
        -o Acquire::Languages=none -o Debug::NoLocking=1 "$@" >>"$log" 2>&1
}

# _e2e_archive_state [refresh]: make $E2E_SUITE's private apt state (lists
# fetched once, or again with "refresh": e2e_archive_debs does that when a
# download fails) and print its directory. The state has its own lock, as
# the sets of one release share it.
_e2e_archive_state() {
    local st=$E2E_CACHE_DIR/apt-$E2E_SUITE tarball lockfd update=${1:-}
    tarball=$(_e2e_rootfs_tarball)
    exec {lockfd}>"$st.lock"
    flock "$lockfd"
    if [[ ! -f $st/fetched ]]; then
        rm -rf "$st"
        mkdir -p "$st/lists/partial" "$st/empty" "$st/key"
        # trixie's .gpg is a symlink to .pgp, which bookworm's apt does not
        # take as a keyring name: copy the keys into keyring.gpg.
        tar -xf "$tarball" -C "$st/key" --wildcards './usr/share/keyrings/debian-archive-keyring.*' ||
            fail "no debian-archive-keyring in $tarball"
        cp -L "$st/key/usr/share/keyrings/debian-archive-keyring.gpg" "$st/keyring.gpg" ||
            cp -L "$st/key/usr/share/keyrings/debian-archive-keyring.pgp" "$st/keyring.gpg" ||
            fail "no debian-archive-keyring.gpg or .pgp in $tarball"
        printf 'deb [signed-by=%s] %s %s main\n' "$st/keyring.gpg" "$E2E_MIRROR" "$E2E_SUITE" \
            >"$st/sources.list"
        update=1
    fi
    if [[ -n $update ]]; then
        : >"$st/apt.log"
        if ! _e2e_archive_apt "$st" "$st/apt.log" update; then
            tail -n 20 "$st/apt.log" >&2
            fail "apt-get update of $E2E_SUITE's lists failed (log above)"
        fi
        # Its presence says the lists were fetched once.
        : >"$st/fetched"
        e2e_log "fetched $E2E_SUITE's package lists into $st"
    fi
    flock -u "$lockfd"
    exec {lockfd}>&-
    echo "$st"
}

# _e2e_archive_download TMP STATEDIR PKG...: download into TMP/archives;
# apt's output in TMP/apt.log.
_e2e_archive_download() {
    local tmp=$1 st=$2
    shift 2
    _e2e_archive_apt "$st" "$tmp/apt.log" -o Dir::State::status="$tmp/var/lib/dpkg/status" \
        -o Dir::Cache::archives="$tmp/archives" \
        -o APT::Install-Recommends=0 install --download-only "$@"
}

# e2e_archive_debs SET PKG...: download PKGs and the dependencies the
# rootfs lacks, once; prints the cache directory.
e2e_archive_debs() {
    local set=$1 dir tmp lockfd st
    shift
    dir=$(_e2e_archive_dir "$set" "$@")
    mkdir -p "$E2E_CACHE_DIR"
    exec {lockfd}>"$dir.lock"
    flock "$lockfd"
    if [[ ! -s $dir/debs.list ]]; then
        [[ -s $(_e2e_rootfs_tarball) ]] || fail "e2e_archive_debs: no rootfs tarball yet"
        tmp=$(mktemp -d "$E2E_WORK_DIR/$set.XXXXXX")
        E2E_OWNED_DIRS+=("$tmp")
        tar -xf "$(_e2e_rootfs_tarball)" -C "$tmp" ./var/lib/dpkg/status || fail "no dpkg status in the rootfs"
        mkdir -p "$tmp/archives/partial"
        # $(...) does not inherit set -e, and this function itself runs in
        # one (e2e_archive_install): every failure is checked explicitly.
        st=$(_e2e_archive_state) || fail "no apt state for $E2E_SUITE"
        if ! _e2e_archive_download "$tmp" "$st" "$@"; then
            e2e_log "download failed; refreshing $E2E_SUITE's package lists and retrying"
            tail -n 5 "$tmp/apt.log" >&2
            st=$(_e2e_archive_state refresh) || fail "could not refresh $E2E_SUITE's package lists"
            _e2e_archive_download "$tmp" "$st" "$@" || {
                tail -n 20 "$tmp/apt.log" >&2
                fail "could not download $* and their dependencies from $E2E_SUITE"
            }
        fi
        rm -rf "$dir"
        mkdir -p "$dir"
        mv "$tmp"/archives/*.deb "$dir/" || fail "apt downloaded no .deb for $*"
        (cd "$dir" && ls ./*.deb >debs.list) || fail "could not list $dir"
        rm -rf "$tmp"
        e2e_log "cached $(wc -l <"$dir/debs.list") .debs of $E2E_SUITE for $* in $dir"
    fi
    flock -u "$lockfd"
    exec {lockfd}>&-
    echo "$dir"
}

# e2e_archive_install NAME SET PKG...: install PKGs from Debian's archive
# in NAME (see e2e_archive_debs), as an admin would, with apt-get.
e2e_archive_install() {
    local name=$1 set=$2 dir repo
    shift 2
    dir=$(e2e_archive_debs "$set" "$@")
    repo=$(_e2e_state "$name" rootfs)/srv/repo
    mkdir -p "$repo/$set"
    cp "$dir"/*.deb "$repo/$set/"
    e2e_repo_index "$name"
    e2e_apt "$name" install "$@" >/dev/null
}

# e2e_demo_install NAME: publish v1, install all demo packages, start all
# demo units and wait until they run.
e2e_demo_install() {
    local name=$1
    e2e_publish "$name" v1
    e2e_apt "$name" install "${E2E_DEMO_PKGS[@]}" >/dev/null
    e2e_in "$name" systemctl start "${E2E_DEMO_UNITS[@]}"
    e2e_wait_active "$name" "${E2E_DEMO_UNITS[@]}"
}

# e2e_demo_reset NAME: stop and purge every demo package, so the next test
# in a shared container starts from scratch.
e2e_demo_reset() {
    local name=$1
    e2e_in "$name" systemctl stop "${E2E_DEMO_UNITS[@]}" 2>/dev/null || true
    e2e_in "$name" systemctl reset-failed 2>/dev/null || true
    local installed
    # Only what dpkg knows (installed or config-files), so that a fresh
    # machine gives no "isn't installed" warnings.
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    installed=$(e2e_in "$name" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
        "${E2E_DEMO_PKGS[@]}" 2>/dev/null | awk '$1 !~ /^u/ && $1 !~ /^.n/ { print $NF }') || true
    if [[ -n $installed ]]; then
        # shellcheck disable=SC2086 # one package name per word
        e2e_in "$name" dpkg --purge $installed >/dev/null
    fi
    e2e_in "$name" rm -rf /var/lib/demo-otherdel /etc/restart-stale
    e2e_in "$name" systemctl daemon-reload
}

# e2e_policy NAME UNIT allow|deny|none: restart-stale's policy is a symlink
# named after the unit in /etc/restart-stale/; to /dev/null denies it.
e2e_policy() {
    local name=$1 unit=$2 what=$3
    e2e_in "$name" mkdir -p /etc/restart-stale
    case $what in
        allow) e2e_in "$name" ln -sfn "/lib/systemd/system/$unit" "/etc/restart-stale/$unit" ;;
        deny) e2e_in "$name" ln -sfn /dev/null "/etc/restart-stale/$unit" ;;
        none) e2e_in "$name" rm -f "/etc/restart-stale/$unit" ;;
        *) fail "e2e_policy: allow, deny or none, not '$what'" ;;
    esac
}

# e2e_install_tool NAME DEB: copy the restart-stale .deb (from cargo deb)
# into NAME and install it with dpkg -i; let apt fix dependencies if any
# are missing (only the local repo is configured, so they must be there).
e2e_install_tool() {
    local name=$1 deb=$2 rootfs base
    [[ -f $deb ]] || fail "e2e_install_tool: no such file: $deb"
    rootfs=$(_e2e_state "$name" rootfs)
    base=$(basename "$deb")
    cp "$deb" "$rootfs/srv/tool/$base"
    if ! e2e_in "$name" dpkg -i "/srv/tool/$base"; then
        e2e_log "dpkg -i failed; trying apt-get -f install"
        e2e_apt "$name" -f install
    fi
}

# e2e_require_tool NAME: install $RESTART_STALE_DEB into NAME, or skip the
# test (exit 77, which run.sh counts as skipped) if it is not set.
e2e_require_tool() {
    if [[ -z ${RESTART_STALE_DEB:-} ]]; then
        e2e_log "SKIP: RESTART_STALE_DEB is not set (packaging/build-deb.sh builds it; run.sh does that itself)"
        exit 77
    fi
    e2e_install_tool "$1" "$RESTART_STALE_DEB"
}

# e2e_apt_setup NAME PIDS: the start the apt tests share. From a clean
# demo state: restart-stale installed with its hooks and without the admin
# file of docs/apt.md (/etc/apt/apt.conf.d/51restart-stale-local) that a
# test may have left, every demo package at 1.0 with its units running (the
# finish of that install done), demo-allowed allowed, demo-denied denied.
# Fills the associative array named PIDS (declare it with `local -A`) with
# the MainPID of every demo unit, so the test can tell what was restarted.
e2e_apt_setup() {
    local name=$1 u
    local -n e2e_setup_pids=$2
    e2e_step "reset" e2e_demo_reset "$name"
    e2e_step "install restart-stale" e2e_require_tool "$name"
    e2e_in "$name" rm -f /etc/apt/apt.conf.d/51restart-stale-local
    e2e_step "install demo packages" e2e_demo_install "$name"
    # That install was an apt transaction too; let its finish run first.
    e2e_wait_apt_finish "$name"
    e2e_policy "$name" demo-allowed.service allow
    e2e_policy "$name" demo-denied.service deny
    for u in "${E2E_DEMO_UNITS[@]}"; do
        # shellcheck disable=SC2034,SC2004 # the caller's associative array
        e2e_setup_pids[$u]=$(e2e_unit_pid "$name" "$u")
    done
}

# e2e_start_demo_units NAME PIDS UNIT...: the start the tests of the other
# package managers share (90, 92-94), whose demo packages install units
# without starting them: daemon-reload, start the UNITs and wait until they
# run, allow demo-allowed and demo-unrelated, deny demo-denied, and fill
# the associative array named PIDS (`local -A`) with each UNIT's MainPID.
e2e_start_demo_units() {
    local name=$1 u
    local -n e2e_start_pids=$2
    shift 2
    e2e_in "$name" systemctl daemon-reload
    e2e_in "$name" systemctl start "$@"
    e2e_wait_active "$name" "$@"
    e2e_policy "$name" demo-allowed.service allow
    e2e_policy "$name" demo-denied.service deny
    e2e_policy "$name" demo-unrelated.service allow
    for u in "$@"; do
        # shellcheck disable=SC2034,SC2004 # the caller's associative array
        e2e_start_pids[$u]=$(e2e_unit_pid "$name" "$u")
    done
}

# ---------------------------------------------------------------- tests

# ---------------------------------------------------------------- releases

# The Debian releases the bed boots, and the cgroup modes each boots in.
# bookworm (systemd 252) in v2 and legacy v1. trixie's systemd 257 still
# boots in v1 inside nspawn (it marks itself tainted "cgroupsv1"), but
# upstream has deprecated v1, trixie's default is v2, and a second trixie
# pass would cost ~10 minutes of CI: v1 stays covered on bookworm, trixie
# and sid run v2. E2E_MODES_RELEASE (e.g. E2E_MODES_trixie="v2 v1")
# replaces a release's modes for a local run. E2E_RELEASES (default: all
# three) and E2E_MODES (default: each release's own) narrow what a run
# boots; a mode a release does not list is never booted for it.
E2E_ALL_RELEASES=(bookworm trixie sid)
# A script without a "# e2e: releases" header runs on these. sid only for
# the scripts that name it: the archive changes daily under it.
E2E_DEFAULT_RELEASES="bookworm trixie"

# e2e_release_modes RELEASE: the cgroup modes RELEASE is booted in.
e2e_release_modes() {
    local override=E2E_MODES_$1
    if [[ $1 =~ ^[a-z]+$ && -n ${!override:-} ]]; then
        echo "${!override}"
        return
    fi
    case $1 in
        bookworm) echo "v2 v1" ;;
        trixie | sid) echo v2 ;;
        *) fail "unknown release '$1' (known: ${E2E_ALL_RELEASES[*]})" ;;
    esac
}

# e2e_modes RELEASE: the modes to boot RELEASE in for this run: its own
# (e2e_release_modes), narrowed by E2E_MODES if set.
e2e_modes() {
    local m modes=()
    for m in $(e2e_release_modes "$1"); do
        [[ -z ${E2E_MODES:-} || " $E2E_MODES " == *" $m "* ]] && modes+=("$m")
    done
    echo "${modes[*]}"
}

# e2e_check_releases: fail on an unknown release in E2E_RELEASES. Call it
# plainly (not in $(...) or `if`), before iterating over E2E_RELEASES.
e2e_check_releases() {
    local r
    for r in $E2E_RELEASES; do
        e2e_release_modes "$r" >/dev/null
    done
}

# _e2e_header SCRIPT KEY: the words of SCRIPT's first "# e2e: KEY ..." line.
_e2e_header() {
    sed -n "s/^# e2e: $2 //p" "$1" | head -n 1
}

# e2e_script_releases SCRIPT: the releases SCRIPT runs on: the words of its
# header line "# e2e: releases bookworm trixie", else E2E_DEFAULT_RELEASES.
# An unknown codename there fails (a typo must not silently drop a test).
e2e_script_releases() {
    local rels r
    rels=$(_e2e_header "$1" releases)
    for r in $rels; do
        [[ " ${E2E_ALL_RELEASES[*]} " == *" $r "* ]] ||
            fail "$(basename "$1"): unknown release '$r' in '# e2e: releases' (known: ${E2E_ALL_RELEASES[*]})"
    done
    echo "${rels:-$E2E_DEFAULT_RELEASES}"
}

# e2e_check_headers SCRIPT: fail on an unknown release or mode in SCRIPT's
# headers. Call it plainly: the other helpers run inside $(...) or `if`,
# where a failure cannot end the script.
e2e_check_headers() {
    e2e_script_releases "$1" >/dev/null
    e2e_runs_in "$1" v2 || true
}

# e2e_runs_on SCRIPT RELEASE: true if SCRIPT runs on RELEASE.
e2e_runs_on() {
    local rels
    rels=$(e2e_script_releases "$1")
    [[ " $rels " == *" $2 "* ]]
}

# e2e_runs_in SCRIPT MODE: true if SCRIPT runs in cgroup MODE. A script
# that gains nothing from one mode names the modes it runs in with a header
# line "# e2e: modes v2" (words after "modes"); without one it runs in all.
# Both headers combine: a script runs on each of its releases in those of
# the release's modes that it names. run.sh reports a script left out
# either way as "not run", not as a skip.
e2e_runs_in() {
    local script=$1 mode=$2 modes m
    modes=$(_e2e_header "$script" modes)
    for m in $modes; do
        [[ $m == v2 || $m == v1 ]] ||
            fail "$(basename "$script"): unknown mode '$m' in '# e2e: modes' (v2 or v1)"
    done
    [[ -z $modes || " $modes " == *" $mode "* ]]
}

# e2e_test_main FUNC: the body of every test script. FUNC is called with
# the machine name. Under run.sh (E2E_MACHINE set) it uses the shared,
# already booted machine, once. Standalone it boots its own machine for each
# release in E2E_RELEASES that the script runs on and each of that
# release's modes (e2e_modes), so every test can be run by hand.
e2e_test_main() {
    local fn=$1 release mode name dir t0 ran=0
    if [[ -n ${E2E_MACHINE:-} ]]; then
        e2e_require_root
        e2e_build_debs
        "$fn" "$E2E_MACHINE"
        return
    fi
    e2e_init
    e2e_host_deps
    t0=$(e2e_now_ms)
    e2e_check_releases
    e2e_check_headers "$0"
    e2e_step "build demo debs" e2e_build_debs
    for release in $E2E_RELEASES; do
        if ! e2e_runs_on "$0" "$release"; then
            e2e_log "not run on $release: $(basename "$0") runs on '$(e2e_script_releases "$0")'"
            continue
        fi
        export E2E_SUITE=$release
        for mode in $(e2e_modes "$release"); do
            if ! e2e_runs_in "$0" "$mode"; then
                e2e_log "not run in $mode: $(basename "$0") says '# e2e: modes $(_e2e_header "$0" modes)'"
                continue
            fi
            name=rse2e-$release-$mode-$$
            dir=$E2E_WORK_DIR/$name
            export E2E_MODE=$mode
            e2e_step "rootfs ($release $mode)" e2e_rootfs "$dir"
            e2e_step "boot ($release $mode)" e2e_boot "$name" "$dir" "$mode"
            e2e_step "test $(basename "$0") ($release $mode)" "$fn" "$name"
            e2e_step "shutdown ($release $mode)" e2e_shutdown "$name"
            rm -rf --one-file-system "$dir"
            ran=$((ran + 1))
        done
    done
    e2e_log "total $(($(e2e_now_ms) - t0)) ms"
    if ((ran == 0)); then
        e2e_log "SKIP: $(basename "$0") runs in none of the releases and modes asked for (E2E_RELEASES='$E2E_RELEASES', E2E_MODES='${E2E_MODES:-}')"
        exit 77
    fi
}
