#!/usr/bin/env bash
# Build the demo packages for restart-stale's e2e tests.
#
#   build-debs.sh OUTDIR
#
# writes OUTDIR/1.0/*.deb and OUTDIR/2.0/*.deb (every package in both
# versions; v2 of each binary differs in content from v1).
#
# Compiled with gcc on the host: the test container is the same Debian
# release and architecture, so host binaries run there unchanged.
#
# Packages:
#   libdemo1        /usr/lib/<multiarch>/libdemo.so.1 (Multi-Arch: same, like
#                   real libraries, so its dpkg file list is libdemo1:<arch>.list)
#   demo-allowed    daemon linked to libdemo       demo-allowed.service
#   demo-denied     daemon linked to libdemo       demo-denied.service
#   demo-unrelated  daemon NOT linked to libdemo   demo-unrelated.service
#   demo-otherdel   maps a private deleted copy of libother-demo.so (shipped
#                   in the package), no libdemo    demo-otherdel.service
#   demo-slow       one binary linked to libdemo, five units demo-slow1..5
#                   with ExecStartPre=/bin/sleep 1 (each start takes ~1 s)
#   demo-env        daemon linked to libdemo       demo-env.service, whose
#                   Environment=DEMO_ENV=<version> changes with the version
#                   (not in lib.sh's E2E_DEMO_PKGS: only
#                   44-hardening-unit-file.sh installs it)
#
# Interpreted daemons (Architecture: all; not in lib.sh's E2E_DEMO_PKGS,
# since they need python3, which the rootfs lacks: 27-apt-interpreted.sh
# installs them):
#   demo-pyhelper   Python module /usr/lib/python3/dist-packages/demopyhelper.py
#   demo-py         /usr/lib/demo-py/pyd.py, imports demopyhelper
#                                                            demo-pyd.service
#   demo-pyother    /usr/lib/demo-pyother/pyo.py, standard library only
#                                                            demo-pyother.service
#   demo-plhelper   Perl module /usr/share/perl5/DemoPl/Helper.pm
#   demo-pl         /usr/lib/demo-pl/pld.pl, `use DemoPl::Helper;`
#                                                            demo-pld.service
#   demo-sh         /usr/lib/demo-sh/shd.sh, a `while sleep` loop run by
#                   /bin/sh                                  demo-shd.service
# Every file of these differs between 1.0 and 2.0 (a version string in it).
# The Python units set PYTHONDONTWRITEBYTECODE=1, so that no unpackaged
# __pycache__ appears next to the packaged modules.
#
# No maintainer scripts at all: nothing enables, starts or restarts units on
# install or upgrade (the tests do that), so any restart seen in a test was
# done by restart-stale.
set -euo pipefail
umask 022 # the packaged files must be world-readable whatever the caller has

out=${1:?usage: build-debs.sh OUTDIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/src" && pwd)
arch=$(dpkg --print-architecture)
multiarch=$(gcc -print-multiarch)
libdir=/usr/lib/$multiarch
unitdir=/lib/systemd/system
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cflags=(-O2 -std=gnu11 -Wall -Wextra -Werror -I"$src")

# stage PKG VER: the staging root for PKG at VER (created empty).
stage() {
    local d=$work/stage/$2/$1
    mkdir -p "$d/DEBIAN"
    echo "$d"
}

# control DIR PKG VER DEPENDS SHORT [EXTRA-FIELD...]
control() {
    local dir=$1 pkg=$2 ver=$3 deps=$4 short=$5 f
    shift 5
    {
        echo "Package: $pkg"
        echo "Version: $ver"
        echo "Architecture: ${pkg_arch:-$arch}"
        echo "Maintainer: restart-stale e2e <e2e@localhost>"
        echo "Section: misc"
        echo "Priority: optional"
        [[ -n $deps ]] && echo "Depends: $deps"
        for f in "$@"; do echo "$f"; done
        echo "Description: $short"
        echo " Demo package for restart-stale's end-to-end tests."
    } >"$dir/DEBIAN/control"
}

# unit DIR NAME DESCRIPTION EXECSTART [EXECSTARTPRE]
unit() {
    local dir=$1 name=$2 desc=$3 start=$4 pre=${5:-}
    mkdir -p "$dir$unitdir"
    {
        echo "[Unit]"
        echo "Description=$desc"
        echo
        echo "[Service]"
        echo "Type=simple"
        [[ -n $pre ]] && echo "ExecStartPre=$pre"
        echo "ExecStart=$start"
        echo
        echo "[Install]"
        echo "WantedBy=multi-user.target"
    } >"$dir$unitdir/$name"
    chmod 0644 "$dir$unitdir/$name"
}

# iunit DIR NAME DESCRIPTION EXECSTART [ENVIRONMENT]: the unit of an
# interpreted daemon.
iunit() {
    local dir=$1 name=$2 desc=$3 start=$4 env=${5:-}
    mkdir -p "$dir$unitdir"
    {
        echo "[Unit]"
        echo "Description=$desc"
        echo
        echo "[Service]"
        echo "Type=simple"
        [[ -n $env ]] && echo "Environment=$env"
        echo "ExecStart=$start"
        echo
        echo "[Install]"
        echo "WantedBy=multi-user.target"
    } >"$dir$unitdir/$name"
    chmod 0644 "$dir$unitdir/$name"
}

# text DIR PATH MODE: write stdin to DIR/PATH with MODE.
text() {
    install -D -m "$3" /dev/stdin "$1$2"
}

# bin DIR FILE: install the built FILE as DIR/usr/bin/FILE.
bin() {
    install -D -m 0755 "$b/$2" "$1/usr/bin/$2"
}

for ver in 1.0 2.0; do
    b=$work/build/$ver
    mkdir -p "$b" "$out/$ver"
    vdef=-DDAEMON_VERSION=\"$ver\"

    # --- compile
    gcc "${cflags[@]}" -fPIC -shared -Wl,-soname,libdemo.so.1 \
        -DDEMO_VERSION=\"$ver\" -o "$b/libdemo.so.1" "$src/libdemo.c"
    ln -sfn libdemo.so.1 "$b/libdemo.so" # link-time name only; not shipped
    for d in demo-allowed demo-denied demo-slow demo-env; do
        gcc "${cflags[@]}" -DDAEMON_NAME=\""$d"\" "$vdef" -o "$b/$d" \
            "$src/daemon.c" -L"$b" -ldemo
    done
    gcc "${cflags[@]}" "$vdef" -o "$b/demo-unrelated" "$src/unrelated.c"
    gcc "${cflags[@]}" -fPIC -shared -o "$b/libother-demo.so" "$src/other.c"
    gcc "${cflags[@]}" "$vdef" -DOTHER_LIB=\""$libdir/libother-demo.so"\" \
        -o "$b/demo-otherdel" "$src/otherdel.c" -ldl

    # --- libdemo1
    p=$(stage libdemo1 "$ver")
    install -D -m 0644 "$b/libdemo.so.1" "$p$libdir/libdemo.so.1"
    # What every shared library package does: refresh ld.so.cache.
    echo "activate-noawait ldconfig" >"$p/DEBIAN/triggers"
    control "$p" libdemo1 "$ver" "" "demo shared library libdemo.so.1" \
        "Multi-Arch: same"

    # --- daemons linked to libdemo
    for d in demo-allowed demo-denied; do
        p=$(stage "$d" "$ver")
        bin "$p" "$d"
        unit "$p" "$d.service" "restart-stale e2e demo ($d)" "/usr/bin/$d"
        control "$p" "$d" "$ver" "libdemo1 (>= 1.0)" "demo daemon using libdemo ($d)"
    done

    # --- demo-env: its unit file differs between the versions
    p=$(stage demo-env "$ver")
    bin "$p" demo-env
    iunit "$p" demo-env.service "restart-stale e2e demo (environment per version)" \
        /usr/bin/demo-env "DEMO_ENV=$ver"
    # systemd notices a changed unit file by its mtime alone (to the
    # microsecond), and dpkg installs the second the .deb holds: built in
    # the same second, 1.0's and 2.0's files would look the same to it and
    # NeedDaemonReload would stay "no" (e2e 44 failed so once). Real
    # packages differ there (SOURCE_DATE_EPOCH is the changelog's date), so
    # each version gets a date of its own: 1.0 on January 1, 2.0 on Feb 1.
    touch -d "2026-0${ver%%.*}-01 00:00:00 UTC" "$p$unitdir/demo-env.service"
    control "$p" demo-env "$ver" "libdemo1 (>= 1.0)" "demo daemon whose unit file changes"

    # --- demo-unrelated: no libdemo
    p=$(stage demo-unrelated "$ver")
    bin "$p" demo-unrelated
    unit "$p" demo-unrelated.service "restart-stale e2e demo (unrelated)" \
        /usr/bin/demo-unrelated
    control "$p" demo-unrelated "$ver" "" "demo daemon not using libdemo"

    # --- demo-otherdel
    p=$(stage demo-otherdel "$ver")
    bin "$p" demo-otherdel
    install -D -m 0644 "$b/libother-demo.so" "$p$libdir/libother-demo.so"
    unit "$p" demo-otherdel.service "restart-stale e2e demo (maps a deleted private copy)" \
        /usr/bin/demo-otherdel
    control "$p" demo-otherdel "$ver" "" "demo daemon mapping a deleted non-package file"

    # --- demo-slow: five units, each with a 1 s ExecStartPre
    p=$(stage demo-slow "$ver")
    bin "$p" demo-slow
    for i in 1 2 3 4 5; do
        unit "$p" "demo-slow$i.service" "restart-stale e2e demo (slow start $i)" \
            "/usr/bin/demo-slow demo-slow$i" "/bin/sleep 1"
    done
    control "$p" demo-slow "$ver" "libdemo1 (>= 1.0)" "demo daemons that take 1 s to start"

    # --- interpreted daemons (Architecture: all)
    pkg_arch=all

    p=$(stage demo-pyhelper "$ver")
    text "$p" /usr/lib/python3/dist-packages/demopyhelper.py 0644 <<PY
"""restart-stale e2e demo module, version $ver."""
VERSION = "$ver"


def tick():
    return VERSION
PY
    control "$p" demo-pyhelper "$ver" "python3" "demo Python module demopyhelper"

    p=$(stage demo-py "$ver")
    text "$p" /usr/lib/demo-py/pyd.py 0644 <<PY
# restart-stale e2e demo Python daemon, version $ver.
import time

import demopyhelper

while True:
    demopyhelper.tick()
    time.sleep(1)
PY
    iunit "$p" demo-pyd.service "restart-stale e2e demo (Python, imports demopyhelper)" \
        "/usr/bin/python3 /usr/lib/demo-py/pyd.py" PYTHONDONTWRITEBYTECODE=1
    control "$p" demo-py "$ver" "python3, demo-pyhelper (>= 1.0)" \
        "demo Python daemon importing demopyhelper"

    p=$(stage demo-pyother "$ver")
    text "$p" /usr/lib/demo-pyother/pyo.py 0644 <<PY
# restart-stale e2e demo Python daemon, version $ver: standard library only.
import os
import time

while True:
    os.getpid()
    time.sleep(1)
PY
    iunit "$p" demo-pyother.service "restart-stale e2e demo (Python, no demo module)" \
        "/usr/bin/python3 /usr/lib/demo-pyother/pyo.py" PYTHONDONTWRITEBYTECODE=1
    control "$p" demo-pyother "$ver" "python3" "demo Python daemon importing no demo module"

    p=$(stage demo-plhelper "$ver")
    text "$p" /usr/share/perl5/DemoPl/Helper.pm 0644 <<PL
# restart-stale e2e demo Perl module, version $ver.
package DemoPl::Helper;
use strict;
use warnings;

our \$VERSION = '$ver';

sub tick { return \$VERSION; }

1;
PL
    control "$p" demo-plhelper "$ver" "perl-base" "demo Perl module DemoPl::Helper"

    p=$(stage demo-pl "$ver")
    text "$p" /usr/lib/demo-pl/pld.pl 0644 <<PL
# restart-stale e2e demo Perl daemon, version $ver.
use strict;
use warnings;
use DemoPl::Helper;

while (1) {
    DemoPl::Helper::tick();
    sleep 1;
}
PL
    iunit "$p" demo-pld.service "restart-stale e2e demo (Perl, uses DemoPl::Helper)" \
        "/usr/bin/perl /usr/lib/demo-pl/pld.pl"
    control "$p" demo-pl "$ver" "perl-base, demo-plhelper (>= 1.0)" \
        "demo Perl daemon using DemoPl::Helper"

    p=$(stage demo-sh "$ver")
    text "$p" /usr/lib/demo-sh/shd.sh 0755 <<SH
#!/bin/sh
# restart-stale e2e demo shell daemon, version $ver.
version=$ver
# On SIGTERM finish the running sleep first, then exit: the main process
# must not die before its child. In cgroup v1 a container's systemd learns
# that a unit's cgroup emptied only when the main process exits (there is
# no release agent in the container), so a sleep forked just after the
# stop's kill pass and outliving sh most likely held each stop for the 90 s
# TimeoutStopSec (seen in e2e 27 [v1]: both stops of one run took 90 s).
trap 'exit 0' TERM
while sleep 1; do
    : "\$version"
done
SH
    iunit "$p" demo-shd.service "restart-stale e2e demo (shell script loop)" \
        "/bin/sh /usr/lib/demo-sh/shd.sh"
    control "$p" demo-sh "$ver" "" "demo shell-script daemon"
    unset pkg_arch

    for p in "$work/stage/$ver"/*; do
        dpkg-deb --root-owner-group -Zgzip --build "$p" "$out/$ver/" >/dev/null
    done
done

# Sanity: the two library builds must differ, or an upgrade would not be one.
if cmp -s "$work/build/1.0/libdemo.so.1" "$work/build/2.0/libdemo.so.1"; then
    echo "build-debs.sh: libdemo.so.1 1.0 and 2.0 are identical" >&2
    exit 1
fi
ls "$out"/1.0 "$out"/2.0
