# shellcheck shell=bash
# The demo packages: build them, publish a version in a machine's local
# repo, install and reset them, and the start the tests share. Sourced by
# ../lib.sh.

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

# e2e_assert_demo_on_2_0 NAME LOG OLD_PID: LOG, demo-allowed's journal
# since the upgrade, shows it started once, on daemon and libdemo 2.0, and
# its main process now is a new one (not OLD_PID) that maps nothing deleted.
e2e_assert_demo_on_2_0() {
    local name=$1 log=$2 old=$3 n new
    n=$(grep -cE 'systemd\[1\]: Started demo-allowed\.service' <<<"$log" || true)
    assert_eq 1 "$n" "starts of demo-allowed"
    assert_line "$log" 'demo-allowed 2\.0 started$' "demo-allowed journal (daemon 2.0)"
    assert_line "$log" 'using libdemo 2\.0$' "demo-allowed journal (libdemo 2.0)"
    new=$(e2e_unit_pid "$name" demo-allowed.service)
    assert_ne "$old" "$new" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$name" "$new")" "(deleted)" "maps of the new demo-allowed"
}
