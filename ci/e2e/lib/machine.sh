# shellcheck shell=bash
# Machines: boot and shut down (with the cgroups nspawn leaves behind), run
# commands inside (in, run, apt), look at units, processes, maps and the
# journal. Sourced by ../lib.sh.

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
        e2e_in "$name" systemctl --no-pager --no-legend --failed | e2e_show_log
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
