# shellcheck shell=bash
# zypper in the e2e test bed, for tests/*-zypper.sh. Source after lib.sh and
# lib-rpm.sh: the demo rpms and their repo (/srv/rpmrepo) are lib-rpm.sh's
# (e2e_rpm_demo_build, e2e_rpm_publish), only the manager differs.
#
# Debian's zypper (libzypp, rpm) and createrepo-c come through
# e2e_archive_install (lib.sh), cached in $E2E_CACHE_DIR/zypper-tools-KEY/.
# zypper's only repository is the demo repo: the container has no network,
# and Debian's zypper configures none of its own.

E2E_ZYPPER_TOOLS=(zypper rpm createrepo-c)
# libzypp's log; with ZYPP_PLUGIN_DEBUG set it holds every plugin frame.
E2E_ZYPPER_LOG=/var/log/zypper.log

# e2e_zypper_tools NAME: install zypper, rpm and createrepo-c in NAME and
# make the demo repo zypper's only repository.
e2e_zypper_tools() {
    local name=$1 rootfs
    rootfs=$(_e2e_state "$name" rootfs)
    e2e_archive_install "$name" zypper-tools "${E2E_ZYPPER_TOOLS[@]}"
    rm -f "$rootfs"/etc/zypp/repos.d/*.repo
    mkdir -p "$rootfs/etc/zypp/repos.d"
    cat >"$rootfs/etc/zypp/repos.d/e2e-demo.repo" <<'REPO'
[e2e-demo]
name=restart-stale e2e demo rpms
baseurl=file:///srv/rpmrepo
type=rpm-md
enabled=1
autorefresh=0
gpgcheck=0
REPO
}

# e2e_zypper NAME ARGS...: zypper ARGS inside NAME as an admin would run it
# (own unit, see e2e_run), non-interactive, after a forced refresh of the
# demo repo (the repo changes within zypper's 10-minute refresh delay).
# Extra environment for zypper: E2E_ZYPPER_ENV (words VAR=VALUE).
e2e_zypper() {
    local name=$1
    shift
    # shellcheck disable=SC2086 # one VAR=VALUE per word
    e2e_run "$name" env ${E2E_ZYPPER_ENV:-} sh -c 'zypper --non-interactive --quiet refresh --force >/dev/null &&
        exec zypper --non-interactive "$@"' zypper "$@"
}

# e2e_zypper_rpm NAME ARGS...: rpm ARGS in NAME's rpmdb as libzypp uses it.
# libzypp takes /var/lib/rpm when that directory exists (Debian's rpm ships
# it empty) and passes it to rpm; Debian's rpm itself defaults to
# ~/.rpmdb, where a plain `rpm -q` finds nothing zypper installed.
e2e_zypper_rpm() {
    local name=$1
    shift
    e2e_in "$name" rpm --dbpath /var/lib/rpm "$@"
}

# e2e_zypper_frames NAME: the plugin frames libzypp logged (ZYPP_PLUGIN_DEBUG)
# in its log, one "> " (sent) or "< " (received) line per frame line.
e2e_zypper_frames() {
    # libzypp's log lines are "DATE <LEVEL> HOST(PID) [GROUP] FILE(FUNC):LINE
    # TEXT"; the frames are debug lines of group PLUGIN ("[PLUGIN++]").
    e2e_in "$1" sed -n 's/^.*\[PLUGIN+*\] [^ ]* \([<>] \)/\1/p' "$E2E_ZYPPER_LOG" | cat -v
}
