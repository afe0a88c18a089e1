# shellcheck shell=bash
# Packages from Debian's archive, for what a test needs beyond the rootfs.
# Sourced by ../lib.sh.

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

# e2e_archive_purge NAME SET PKG...: purge what e2e_archive_install NAME
# SET PKG... brought (only packages the rootfs lacked), so later tests see
# the usual system.
e2e_archive_purge() {
    local name=$1 set=$2 dir f pkgs=()
    shift 2
    dir=$(e2e_archive_debs "$set" "$@")
    for f in "$dir"/*.deb; do
        pkgs+=("$(dpkg-deb -f "$f" Package)")
    done
    e2e_in "$name" dpkg --purge "${pkgs[@]}" >/dev/null
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
