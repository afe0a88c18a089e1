# shellcheck shell=bash
# pacman in the e2e test bed, for tests/*-pacman.sh. Source after lib.sh.
#
# Debian's pacman-package-manager and makepkg run inside the container;
# their .debs come through e2e_archive_install (lib.sh): downloaded on the
# host, cached in $E2E_CACHE_DIR/pacman-tools-KEY/. The demo packages are
# built there by makepkg, as an unprivileged user (makepkg refuses root),
# from pkgs/PKGBUILD.demo and the demo .debs' payloads, and served by a
# file:// sync repo made with repo-add. restart-stale itself is the .deb
# ($RESTART_STALE_DEB): its alpm hook is the packaged one.
#
# Facts of Debian's pacman the helpers rely on (see
# /work/shared/notes/package-manager-hooks.md): libalpm reads hooks from
# /usr/share/libalpm/hooks/ and pacman.conf's HookDir (/etc/pacman.d/hooks/);
# Debian creates neither directory, nor pacman's DBPath. A sync repo cannot
# be named "local". Debian's makepkg.conf builds .pkg.tar.gz; we ask for
# .pkg.tar.zst, as Arch does.

E2E_PACMAN_TOOLS=(pacman-package-manager makepkg libarchive-tools zstd fakeroot)
# The demo packages built for pacman (same names as the .debs; see
# pkgs/PKGBUILD.demo).
E2E_PACMAN_DEMO=(libdemo1 demo-allowed demo-denied demo-unrelated)
E2E_PACMAN_REPO=e2edemo
E2E_PACMAN_BUILDER=e2e-builder
# pacman killed by systemd after this many seconds (e2e_pacman): a hook
# that blocks pacman fails the test instead of hanging it.
: "${E2E_PACMAN_BOUND:=120}"

# e2e_pacman_tools NAME: install pacman, makepkg, bsdtar, zstd and fakeroot
# in NAME; add the demo repo to /etc/pacman.conf, as an admin would; create
# the build user.
e2e_pacman_tools() {
    local name=$1 rootfs
    e2e_archive_install "$name" pacman-tools "${E2E_PACMAN_TOOLS[@]}"
    rootfs=$(_e2e_state "$name" rootfs)
    e2e_in "$name" mkdir -p /var/lib/pacman /var/cache/pacman/pkg /srv/pacrepo
    if ! grep -q "^\[$E2E_PACMAN_REPO\]" "$rootfs/etc/pacman.conf"; then
        # The package's pacman.conf has no repository; SigLevel = Never as
        # for an unsigned local repo.
        printf '\n[%s]\nSigLevel = Never\nServer = file:///srv/pacrepo\n' \
            "$E2E_PACMAN_REPO" >>"$rootfs/etc/pacman.conf"
    fi
    if ! e2e_in "$name" id -u "$E2E_PACMAN_BUILDER" >/dev/null 2>&1; then
        e2e_in "$name" useradd --system --no-create-home --home-dir /srv/pacbuild "$E2E_PACMAN_BUILDER"
    fi
}

# e2e_pacman_demo_build NAME: build the demo packages, 1.0 and 2.0, inside
# NAME with makepkg into /srv/pacpkgs/VERSION/. The staged payload of each
# is its demo .deb's (e2e_build_debs), with /lib moved to /usr/lib: the
# hook's Target is usr/*, and pacman owns the real paths (/lib is a link).
e2e_pacman_demo_build() {
    local name=$1 rootfs ver pkg stage
    rootfs=$(_e2e_state "$name" rootfs)
    rm -rf "$rootfs/srv/pacbuild" "$rootfs/srv/pacpkgs"
    mkdir -p "$rootfs/srv/pacbuild" "$rootfs/srv/pacpkgs"
    # Debian's makepkg.conf, with Arch's package format and without
    # makepkg 7's automatic library dependencies (they would name glibc's
    # sonames, which no pacman package provides here).
    cat >"$rootfs/srv/pacbuild/makepkg.conf" <<'CONF'
source /etc/makepkg.conf
PKGEXT='.pkg.tar.zst'
OPTIONS+=(!autodeps)
CONF
    for ver in 1.0 2.0; do
        mkdir -p "$rootfs/srv/pacbuild/$ver"
        cp "$E2E_DIR/pkgs/PKGBUILD.demo" "$rootfs/srv/pacbuild/$ver/PKGBUILD"
        for pkg in "${E2E_PACMAN_DEMO[@]}"; do
            stage=$rootfs/srv/pacbuild/stage/$ver/$pkg
            mkdir -p "$stage"
            dpkg-deb -x "$E2E_DEBS_DIR/$ver/${pkg}_${ver}"_*.deb "$stage"
            if [[ -d $stage/lib ]]; then
                mkdir -p "$stage/usr"
                cp -a "$stage/lib" "$stage/usr/"
                rm -rf "${stage:?}/lib"
            fi
        done
    done
    e2e_in "$name" chown -R "$E2E_PACMAN_BUILDER:" /srv/pacbuild /srv/pacpkgs
    for ver in 1.0 2.0; do
        # shellcheck disable=SC2016 # expanded by the container's sh
        e2e_in "$name" runuser -u "$E2E_PACMAN_BUILDER" -- env HOME=/srv/pacbuild \
            DEMO_VER="$ver" DEMO_STAGE="/srv/pacbuild/stage/$ver" PKGDEST="/srv/pacpkgs/$ver" \
            sh -c 'cd "$1" && makepkg --config /srv/pacbuild/makepkg.conf --nodeps --force --noconfirm' \
            makepkg "/srv/pacbuild/$ver" >/dev/null
    done
}

# e2e_pacman_publish NAME v1|v2 [PKG...]: NAME's sync repo /srv/pacrepo
# holds every demo package at 1.0, except that for v2 the given PKGs
# (default: libdemo1) are at 2.0 instead (a sync repo has one version of a
# package).
e2e_pacman_publish() {
    local name=$1 ver=$2 rootfs pkg f
    shift 2
    rootfs=$(_e2e_state "$name" rootfs)
    rm -rf "$rootfs/srv/pacrepo"
    mkdir -p "$rootfs/srv/pacrepo"
    for pkg in "${E2E_PACMAN_DEMO[@]}"; do
        f=1.0
        if [[ $ver == v2 ]]; then
            (($#)) || set -- libdemo1
            [[ " $* " == *" $pkg "* ]] && f=2.0
        elif [[ $ver != v1 ]]; then
            fail "e2e_pacman_publish: v1 or v2, not '$ver'"
        fi
        cp "$rootfs/srv/pacpkgs/$f/$pkg-$f-1-"*.pkg.tar.zst "$rootfs/srv/pacrepo/"
    done
    e2e_in "$name" sh -c "cd /srv/pacrepo && repo-add -q $E2E_PACMAN_REPO.db.tar.gz ./*.pkg.tar.zst"
}

# e2e_pacman NAME ARGS...: pacman --noconfirm ARGS inside NAME as an admin
# would run it (own unit, see e2e_run), killed after $E2E_PACMAN_BOUND s.
e2e_pacman() {
    local name=$1
    shift
    e2e_in "$name" systemd-run --quiet --wait --pipe --collect --slice=user.slice \
        --property=RuntimeMaxSec="$E2E_PACMAN_BOUND" --property=TimeoutStopSec=5 -- \
        pacman --noconfirm "$@" </dev/null
}

# e2e_wait_pacman_finish NAME [SECS]: e2e_wait_finish (lib.sh) for
# restart-stale-pacman.service, after a pacman transaction with the hook
# installed.
e2e_wait_pacman_finish() {
    e2e_wait_finish "$1" restart-stale-pacman.service "${2:-60}"
}
