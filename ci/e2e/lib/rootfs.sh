# shellcheck shell=bash
# Root filesystems for the machines: a debootstrap tarball cached per
# release, unpacked and prepared per run. Sourced by ../lib.sh.

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
