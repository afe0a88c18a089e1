# shellcheck shell=bash
# restart-stale in a machine: install, remove, its policy links, and the
# wait for a package manager's finish unit. Sourced by ../lib.sh.

E2E_FINISH_UNIT=restart-stale-apt.service

# e2e_wait_finish NAME UNIT [SECS [CURSOR]]: after a transaction of a
# package manager with the tool's hooks installed, wait (default up to
# 60 s) until its finish unit UNIT (restart-stale-MANAGER.service) has
# acted: UNIT is inactive or failed, no job of it is queued, and no record
# waits in MANAGER's spool (/run/restart-stale/MANAGER/, or its fallback
# /var/lib/restart-stale/spool/MANAGER/ for when /run fails). With a
# CURSOR (e2e_journal_cursor), also until the journal since CURSOR has
# systemd's end of UNIT: a unit whose start is not yet queued is inactive
# too, and the journal lags behind the unit's state.
e2e_wait_finish() {
    local name=$1 unit=$2 secs=${3:-60} cursor=${4:-} manager
    manager=${unit#restart-stale-}
    manager=${manager%.service}
    _e2e_wait_unit "$name" "$unit" "$secs" "$cursor" "$manager"
}

# e2e_wait_unit_idle NAME UNIT [SECS]: wait (default up to 60 s) until UNIT
# is inactive or failed and no job of it is queued, whatever its manager's
# spool holds (for a test that leaves a record there on purpose).
e2e_wait_unit_idle() {
    _e2e_wait_unit "$1" "$2" "${3:-60}" "" ""
}

# _e2e_wait_unit NAME UNIT SECS CURSOR MANAGER: the loop of the two above;
# an empty CURSOR or MANAGER leaves out the journal or the spool.
_e2e_wait_unit() {
    local name=$1 unit=$2 secs=$3 cursor=$4 manager=$5 i state='' jobs='' left='' ended=''
    for ((i = 0; i < secs * 10; i++)); do
        if [[ -n $cursor ]] &&
            ! grep -qF -e "systemd[1]: Finished $unit" -e "systemd[1]: Failed to start $unit" \
                <<<"$(e2e_journal "$name" "$cursor")"; then
            ended=
            sleep 0.1
            continue
        fi
        ended=yes
        # systemctl fails while PID 1 re-executes, which a finish does when
        # a transaction replaced a library systemd maps: ask again.
        state=$(e2e_in "$name" systemctl show -p ActiveState --value "$unit" 2>/dev/null) ||
            state=unreachable
        jobs=$(e2e_in "$name" systemctl list-jobs --no-legend "$unit" 2>/dev/null) ||
            jobs=unreachable
        left=
        if [[ -n $manager ]]; then
            left=$(e2e_in "$name" find "/run/restart-stale/$manager" "/var/lib/restart-stale/spool/$manager" \
                -maxdepth 1 \( -name pending -o -name 'taken.*' \) 2>/dev/null) || true
        fi
        if [[ ($state == inactive || $state == failed) && -z $jobs && -z $left ]]; then
            return 0
        fi
        sleep 0.1
    done
    [[ -z $cursor || -n $ended ]] || fail "$unit in $name did not run since the cursor in ${secs}s (state '$state')"
    fail "$unit in $name still busy after ${secs}s (state '$state', jobs '$jobs', record '$left')"
}

# e2e_wait_apt_finish NAME [SECS]: e2e_wait_finish for apt's finish unit.
# `apt-hook finish` waits for a 2 s quiet period on the dpkg lock first.
e2e_wait_apt_finish() {
    e2e_wait_finish "$1" "$E2E_FINISH_UNIT" "${2:-60}"
}

# e2e_upgrade_logged NAME LOG [PKG...]: the upgrade the apt tests share:
# publish v2 (of PKGs, e2e_publish's default without), `apt-get upgrade`
# in NAME, wait for the finish, and set the variable named LOG to the
# finish unit's journal since just before the upgrade, shown in the log
# too. LOG is an out-variable rather than $(...) so that the function runs
# plainly and set -e still ends the script at whichever step fails.
e2e_upgrade_logged() {
    local name=$1 cursor
    local -n e2e_upgrade_log=$2
    shift 2
    e2e_publish "$name" v2 "$@"
    cursor=$(e2e_journal_cursor "$name")
    e2e_step "apt-get upgrade" e2e_apt "$name" upgrade
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$name"
    e2e_upgrade_log=$(e2e_journal "$name" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$e2e_upgrade_log" | e2e_show_log
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
