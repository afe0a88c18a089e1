# shellcheck shell=bash
# restart-stale in a machine: install, remove, its policy links, and the
# wait for a package manager's finish unit. Sourced by ../lib.sh.

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
