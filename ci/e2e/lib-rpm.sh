# shellcheck shell=bash
# rpm and dnf in the e2e test bed, for tests/*-dnf.sh. Source after lib.sh.
#
# Debian's dnf, rpm and createrepo-c run inside the container (bookworm or
# trixie: the packages of the container's release, $E2E_SUITE). Its
# apt sees only the local file repo (/srv/repo, see _e2e_prepare_rootfs), so
# their .debs come through e2e_archive_install (lib.sh): downloaded on the
# host, cached in $E2E_CACHE_DIR/rpm-tools-KEY/, published into
# /srv/repo/rpm-tools/. Demo rpms are built inside the container with
# rpmbuild from the demo .debs' payloads; restart-stale's own rpm with
# packaging/rpm/build-rpm.sh from $RESTART_STALE_DEB's binary.
#
# Facts of the Debian dnf (4.14 on bookworm, 4.23 on trixie: both pass
# 90-dnf.sh) the helpers rely on: it needs a --releasever (no
# system-release package; the local repo does not use it, so 12 does on
# either release) and --refresh (metadata stays cached otherwise); its
# plugin directory is /usr/lib/python3/dist-packages/dnf-plugins/; rpms
# need AutoReqProv: no.

E2E_RPM_TOOLS=(dnf rpm createrepo-c python3-rpm)
# The demo packages built as rpms (same names as the .debs).
E2E_RPM_DEMO=(libdemo1 demo-allowed demo-denied demo-unrelated)

# e2e_rpm_tools NAME: install dnf, rpm, createrepo-c and python3-rpm in NAME.
e2e_rpm_tools() {
    local name=$1
    e2e_archive_install "$name" rpm-tools "${E2E_RPM_TOOLS[@]}"
    # dnf's default reposdir; Debian's dnf package does not create it.
    mkdir -p "$(_e2e_state "$name" rootfs)/etc/yum.repos.d"
    cat >"$(_e2e_state "$name" rootfs)/etc/yum.repos.d/e2e-demo.repo" <<'REPO'
[e2e-demo]
name=restart-stale e2e demo rpms
baseurl=file:///srv/rpmrepo
enabled=1
gpgcheck=0
metadata_expire=0
REPO
}

# e2e_rpm_demo_build NAME: build the demo rpms, versions 1.0 and 2.0, inside
# NAME into /srv/rpms/VERSION/ARCH/. Their payload is the demo .debs' (built by
# e2e_build_debs), with /lib moved to /usr/lib (rpm owns the real paths;
# /lib is a link to usr/lib in the container).
e2e_rpm_demo_build() {
    local name=$1 rootfs ver pkg stage deps
    rootfs=$(_e2e_state "$name" rootfs)
    rm -rf "$rootfs/srv/rpmbuild" "$rootfs/srv/rpms"
    mkdir -p "$rootfs/srv/rpmbuild" "$rootfs/srv/rpms"
    cp "$E2E_DIR/pkgs/demo-rpm.spec" "$rootfs/srv/rpmbuild/demo.spec"
    for ver in 1.0 2.0; do
        for pkg in "${E2E_RPM_DEMO[@]}"; do
            stage=$rootfs/srv/rpmbuild/stage/$ver/$pkg
            mkdir -p "$stage"
            dpkg-deb -x "$E2E_DEBS_DIR/$ver/${pkg}_${ver}"_*.deb "$stage"
            if [[ -d $stage/lib ]]; then
                mkdir -p "$stage/usr"
                cp -a "$stage/lib" "$stage/usr/"
                rm -rf "${stage:?}/lib"
            fi
            deps=
            [[ $pkg == demo-allowed || $pkg == demo-denied ]] && deps="libdemo1 >= 1.0"
            e2e_in "$name" rpmbuild -bb --quiet \
                --define "_topdir /srv/rpmbuild/top" --define "_rpmdir /srv/rpms/$ver" \
                --define "__os_install_post %{nil}" --define "debug_package %{nil}" \
                --define "pkgname $pkg" --define "ver $ver" \
                --define "stage /srv/rpmbuild/stage/$ver/$pkg" \
                ${deps:+--define "deps $deps"} /srv/rpmbuild/demo.spec >/dev/null
        done
    done
}

# e2e_rpm_publish NAME v1|v2 [PKG...]: NAME's dnf repo /srv/rpmrepo holds
# every demo rpm at 1.0, and for v2 also the given PKGs (default: libdemo1)
# at 2.0, so a later downgrade finds 1.0.
e2e_rpm_publish() {
    local name=$1 ver=$2 rootfs pkg
    shift 2
    rootfs=$(_e2e_state "$name" rootfs)
    rm -rf "$rootfs/srv/rpmrepo"
    mkdir -p "$rootfs/srv/rpmrepo"
    cp "$rootfs"/srv/rpms/1.0/*/*.rpm "$rootfs/srv/rpmrepo/"
    case $ver in
        v1) ;;
        v2)
            (($#)) || set -- libdemo1
            for pkg in "$@"; do
                cp "$rootfs/srv/rpms/2.0/"*/"$pkg-2.0-1".*.rpm "$rootfs/srv/rpmrepo/"
            done
            ;;
        *) fail "e2e_rpm_publish: v1 or v2, not '$ver'" ;;
    esac
    e2e_in "$name" createrepo_c -q /srv/rpmrepo
}

# e2e_dnf NAME ARGS...: dnf ARGS inside NAME as an admin would run it (own
# unit, see e2e_run), non-interactive, against the demo repo only.
e2e_dnf() {
    local name=$1
    shift
    e2e_run "$name" dnf -y --releasever=12 --refresh --disablerepo='*' --enablerepo=e2e-demo "$@"
}

# e2e_rpm_install_tool NAME: build restart-stale's rpm inside NAME with
# packaging/rpm/build-rpm.sh --prebuilt, from $RESTART_STALE_DEB's binary
# (its man page and completions regenerated from it), and install it with
# rpm --nodeps: the rpmdb knows none of dpkg's packages (glibc). Skips the
# test (exit 77) when RESTART_STALE_DEB is unset.
e2e_rpm_install_tool() {
    local name=$1 rootfs tool
    if [[ -z ${RESTART_STALE_DEB:-} ]]; then
        e2e_log "SKIP: RESTART_STALE_DEB is not set (build it with packaging/build-deb.sh)"
        exit 77
    fi
    rootfs=$(_e2e_state "$name" rootfs)
    tool=$rootfs/srv/tool
    rm -rf "$tool/src" "$tool/prebuilt" "$tool/rpm" "$tool/deb"
    mkdir -p "$tool/src" "$tool/prebuilt" "$tool/deb"
    tar -C "$E2E_REPO_ROOT" --exclude=./target --exclude=./.git --exclude=./ci/e2e/.cache -cf - . |
        tar -C "$tool/src" -xf -
    dpkg-deb -x "$RESTART_STALE_DEB" "$tool/deb"
    cp "$tool/deb/usr/bin/restart-stale" "$tool/prebuilt/"
    "$tool/prebuilt/restart-stale" generate-assets "$tool/prebuilt/assets" 2>/dev/null
    local rpm
    rpm=$(e2e_in "$name" /srv/tool/src/packaging/rpm/build-rpm.sh --prebuilt /srv/tool/prebuilt /srv/tool/rpm | tail -n 1)
    e2e_log "built ${rpm#/srv/tool/rpm/}"
    e2e_in "$name" rpm -U --nodeps --replacepkgs "$rpm"
}
