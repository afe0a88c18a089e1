# shellcheck shell=bash
# Real-systemd end-to-end test bed for restart-stale.
#
# Source this file from a bash script that runs as root with
# `set -euo pipefail`. It boots Debian containers (the release in
# E2E_SUITE: bookworm, trixie or sid, see lib/releases.sh) with
# systemd-nspawn (systemd as PID 1 inside, cgroup v2 or legacy v1), installs
# demo packages into them from a local flat apt repository and runs commands
# inside them with nsenter.
#
# Why nsenter and not machinectl: the host's PID 1 is not systemd, so
# nspawn runs with --register=no and there is no machined to talk to.
#
# State of a booted machine lives in "$E2E_RUN_DIR/NAME/" (rootfs path,
# nspawn PID, leader PID, cgroup mode, console log) so that test scripts
# started as child processes (see run.sh) can use a container that their
# parent booted.
#
# Pitfall to remember when editing: bash ignores `set -e` inside a function
# that is called as part of `if`, `&&`, `||` or `!`. So helpers here that can
# fail are called plainly, and they check what they run themselves.
#
# The functions live in lib/, one file per part of the bed, sourced below
# in this order: assert.sh (logging, assertions, measurements, steps),
# init.sh (the EXIT trap and its cleanup), rootfs.sh, machine.sh (boot,
# shutdown, running commands inside, the journal), tool.sh (restart-stale
# itself and the wait for a finish unit), packages.sh (the demo packages
# and their repo), archive.sh (packages from Debian's archive) and
# releases.sh (releases, modes, headers and e2e_test_main). Scripts source
# this file only.

# Tests source this file from tests/, which is then shellcheck's SCRIPTDIR:
# the parts' `source=lib/...` paths are also looked up in SCRIPTDIR/...
# shellcheck source-path=SCRIPTDIR/..

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
: "${E2E_CACHE_DIR:=$E2E_DIR/.cache}"
: "${E2E_WORK_DIR:=/var/tmp/restart-stale-e2e}"
: "${E2E_RUN_DIR:=/run/restart-stale-e2e}"
# E2E_SUITE is the release the current rootfs and machine are of; run.sh
# sets it per release. A caller that sets only E2E_SUITE asks for that
# release alone (what E2E_SUITE meant before E2E_RELEASES existed).
if [[ -z ${E2E_RELEASES:-} && -n ${E2E_SUITE:-} ]]; then
    E2E_RELEASES=$E2E_SUITE
fi
: "${E2E_RELEASES:=bookworm trixie sid}"
: "${E2E_SUITE:=bookworm}"
: "${E2E_MIRROR:=http://deb.debian.org/debian}"
# The packages debootstrap adds to minbase. The rootfs cache is keyed by a
# hash of this list (and suite, arch, variant), so changing it rebuilds.
: "${E2E_INCLUDE:=systemd,systemd-sysv,dbus,apt}"
: "${E2E_BOOT_TIMEOUT:=90}"
: "${E2E_SHUTDOWN_TIMEOUT:=30}"
export E2E_REPO_ROOT E2E_CACHE_DIR E2E_WORK_DIR E2E_RUN_DIR E2E_SUITE

# What the demo packages provide (see pkgs/build-debs.sh).
E2E_DEMO_PKGS=(libdemo1 demo-allowed demo-denied demo-unrelated demo-otherdel demo-slow)
E2E_DEMO_UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service
    demo-otherdel.service demo-slow1.service demo-slow2.service
    demo-slow3.service demo-slow4.service demo-slow5.service)

# Machines booted and root filesystems unpacked by *this* shell; the EXIT
# trap tears down exactly these and nothing else.
E2E_OWNED_MACHINES=()
E2E_OWNED_DIRS=()
E2E_CUR_STEP=
E2E_CUR_STEP_T0=

# shellcheck source=lib/assert.sh
. "$E2E_DIR/lib/assert.sh"
# shellcheck source=lib/init.sh
. "$E2E_DIR/lib/init.sh"
# shellcheck source=lib/rootfs.sh
. "$E2E_DIR/lib/rootfs.sh"
# shellcheck source=lib/machine.sh
. "$E2E_DIR/lib/machine.sh"
# shellcheck source=lib/tool.sh
. "$E2E_DIR/lib/tool.sh"
# shellcheck source=lib/packages.sh
. "$E2E_DIR/lib/packages.sh"
# shellcheck source=lib/archive.sh
. "$E2E_DIR/lib/archive.sh"
# shellcheck source=lib/releases.sh
. "$E2E_DIR/lib/releases.sh"
