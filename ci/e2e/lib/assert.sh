# shellcheck shell=bash
# The e2e test bed's logging, assertions, measurements and steps. Sourced
# by ../lib.sh (scripts source that, never this file).

e2e_now_ms() { date +%s%3N; }

e2e_log() { printf '[e2e] %s\n' "$*" >&2; }

# fail MSG...: print a clear failure line and exit the script. The EXIT
# trap then dumps diagnostics and cleans up.
fail() {
    printf '[e2e] FAIL: %s\n' "$*" >&2
    exit 1
}

# e2e_show_log [PREFIX]: copy stdin to stderr, every line indented as
# "[e2e]   PREFIX | line", or "[e2e]   | line" without a PREFIX: output a
# test shows in its log, apart from the bed's own lines.
# shellcheck disable=SC2120 # the callers that pass a PREFIX are the tests
e2e_show_log() {
    local p=${1:+$1 }
    # PREFIX is data, not sed syntax.
    p=${p//\\/\\\\}
    p=${p//\//\\/}
    p=${p//&/\\&}
    sed "s/^/[e2e]   ${p}| /" >&2
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [[ $1 != "$2" ]]; then
        fail "${3:-values differ}: expected '$1', got '$2'"
    fi
    e2e_log "ok: ${3:-value} == '$1'"
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
    if [[ $1 == "$2" ]]; then
        fail "${3:-values equal}: did not expect '$1'"
    fi
    e2e_log "ok: ${3:-value} '$2' != '$1'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]: fixed-string containment.
assert_contains() {
    if [[ $1 != *"$2"* ]]; then
        printf '%s\n' "$1" | e2e_show_log
        fail "${3:-text} does not contain '$2' (text above)"
    fi
    e2e_log "ok: ${3:-text} contains '$2'"
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    if [[ $1 == *"$2"* ]]; then
        printf '%s\n' "$1" | e2e_show_log
        fail "${3:-text} contains '$2' (text above)"
    fi
    e2e_log "ok: ${3:-text} does not contain '$2'"
}

# assert_line TEXT ERE [WHAT]: some line of TEXT matches the extended
# regular expression ERE (grep -E).
assert_line() {
    if ! grep -qE -- "$2" <<<"$1"; then
        printf '%s\n' "$1" | e2e_show_log
        fail "${3:-text}: no line matches /$2/ (text above)"
    fi
    e2e_log "ok: ${3:-text} has a line matching /$2/"
}

# assert_no_line TEXT ERE [WHAT]: no line of TEXT matches ERE.
assert_no_line() {
    if grep -qE -- "$2" <<<"$1"; then
        printf '%s\n' "$1" | e2e_show_log
        fail "${3:-text}: a line matches /$2/ (text above)"
    fi
    e2e_log "ok: ${3:-text} has no line matching /$2/"
}

# e2e_measure TEXT...: log a measurement ("[e2e] measure: TEXT"). These are
# numbers for humans, never assertions; run.sh repeats them at the end (it
# exports E2E_MEASURE_FILE) so they are easy to find in a long log.
e2e_measure() {
    e2e_log "measure: $* [$E2E_SUITE ${E2E_MODE:-?}]"
    if [[ -n ${E2E_MEASURE_FILE:-} ]]; then
        printf '%s: %s [%s %s]\n' "$(basename "$0")" "$*" "$E2E_SUITE" "${E2E_MODE:-?}" >>"$E2E_MEASURE_FILE"
    fi
}

# e2e_median N...: the median of numbers (the lower one of the middle two).
e2e_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# e2e_step DESC CMD...: run CMD and log "[e2e] step DESC took N ms".
# On failure set -e ends the script; the EXIT trap then reports which step
# failed and after how long.
e2e_step() {
    local desc=$1 t0 outer=$E2E_CUR_STEP outer_t0=$E2E_CUR_STEP_T0
    shift
    t0=$(e2e_now_ms)
    E2E_CUR_STEP=$desc
    E2E_CUR_STEP_T0=$t0
    e2e_log "step $desc ..."
    "$@"
    # Steps nest (a test step runs sub-steps): restore the enclosing one.
    E2E_CUR_STEP=$outer
    E2E_CUR_STEP_T0=$outer_t0
    e2e_log "step $desc took $(($(e2e_now_ms) - t0)) ms"
}
