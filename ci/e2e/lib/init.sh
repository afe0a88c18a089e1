# shellcheck shell=bash
# The e2e test bed's start and end: root and the host's packages, the EXIT
# trap that tears down what this shell booted and unpacked, and the
# diagnostics it prints on failure. Sourced by ../lib.sh.

e2e_require_root() {
    [[ $(id -u) == 0 ]] || fail "the e2e test bed must run as root"
}

# e2e_host_deps: install what the bed needs on the host if it is missing,
# so a fresh machine works. Debian package names.
e2e_host_deps() {
    local missing=() cmd pkg
    for cmd in systemd-nspawn:systemd-container debootstrap:debootstrap \
        dpkg-scanpackages:dpkg-dev gcc:gcc nsenter:util-linux flock:util-linux; do
        pkg=${cmd#*:}
        command -v "${cmd%%:*}" >/dev/null || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        e2e_log "installing host packages: ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

# e2e_init: call once at the top of a script that boots machines. Installs
# the trap that always powers off, removes root filesystems and leftover
# cgroups, even on failure or Ctrl-C.
e2e_init() {
    e2e_require_root
    trap e2e_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$E2E_WORK_DIR" "$E2E_RUN_DIR" "$E2E_CACHE_DIR"
}

e2e_cleanup() {
    local rc=$? name dir
    set +e
    trap - EXIT
    if ((rc != 0)); then
        if [[ -n $E2E_CUR_STEP ]]; then
            e2e_log "step $E2E_CUR_STEP FAILED after $(($(e2e_now_ms) - E2E_CUR_STEP_T0)) ms"
        fi
        for name in "${E2E_OWNED_MACHINES[@]}"; do
            e2e_debug_dump "$name"
        done
    fi
    for name in "${E2E_OWNED_MACHINES[@]}"; do
        e2e_shutdown "$name"
    done
    for dir in "${E2E_OWNED_DIRS[@]}"; do
        [[ -d $dir ]] && rm -rf --one-file-system "$dir"
    done
    exit "$rc"
}

# e2e_debug_dump NAME: what a human needs to see when a test fails.
e2e_debug_dump() {
    local name=$1 run=$E2E_RUN_DIR/$1
    [[ -d $run ]] || return 0
    e2e_log "---- diagnostics for $name ----"
    if [[ -f $run/console.log ]]; then
        e2e_log "console (last 30 lines):"
        tail -n 30 "$run/console.log" | e2e_show_log
    fi
    if _e2e_alive "$name"; then
        # `systemctl status` exits 3 for a failed unit: under pipefail that
        # must not end run.sh, which goes on with the next test.
        e2e_in "$name" systemctl --no-pager --failed 2>&1 | e2e_show_log || true
        e2e_in "$name" systemctl --no-pager status 'demo-*' 2>&1 | tail -n 60 | e2e_show_log || true
        e2e_in "$name" journalctl --no-pager -n 40 2>&1 | e2e_show_log || true
    fi
    e2e_log "---- end of diagnostics ----"
}
