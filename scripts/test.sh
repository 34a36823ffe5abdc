#!/usr/bin/env bash
# The test command: install dependencies, build, run every meson test, and end
# with one line "N passed, N failed, N skipped". Exits non-zero on any failure.
# Run as root (sudo ./scripts/test.sh): tests that need root skip otherwise.
#
# Environment:
#   HUBD_SANITIZE=1   also build build-asan/ with ASan+UBSan and run the unit
#                     suite there (off by default: it doubles the build time)
#   HUBD_SKIP_SETUP=1 don't run setup-debian.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf 'test: %s\n' "$*"; }

# A build failure still ends with a summary line, so whoever reads only the
# last line sees a failure rather than nothing.
if ! bash scripts/build.sh; then
    log "build failed"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi

rc=0
# A stale log from an earlier run must not be counted as this run's.
rm -f build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
log "meson test -C build --print-errorlogs --num-processes 2"
meson test -C build --print-errorlogs --num-processes 2 </dev/null || rc=$?
testlogs=(build/meson-logs/testlog.json)

if [[ "${HUBD_SANITIZE:-0}" == 1 ]]; then
    log "sanitizer build in build-asan (address,undefined)"
    asan_ok=1
    # GCC 12 warns "may be used uninitialized" inside libstdc++'s <regex> only
    # when sanitizers instrument it (a known false positive); the normal build
    # keeps the warning on.
    asan_args=(--buildtype=debugoptimized -Db_sanitize=address,undefined -Dcpp_args=-Wno-maybe-uninitialized)
    if [[ -f build-asan/meson-private/coredata.dat ]]; then
        meson setup --reconfigure build-asan "${asan_args[@]}" || asan_ok=0
    else
        meson setup build-asan "${asan_args[@]}" || asan_ok=0
    fi
    if ((asan_ok)) && ninja -C build-asan; then
        # Any UBSan report is a failure, not just a message on stderr.
        export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
        log "meson test -C build-asan --suite unit"
        meson test -C build-asan --suite unit --print-errorlogs --num-processes 2 \
            --timeout-multiplier 3 </dev/null || rc=1
        testlogs+=(build-asan/meson-logs/testlog.json)
    else
        log "sanitizer build failed"
        rc=1
    fi
fi

# Count results from meson's machine-readable log (one JSON object per line).
summary=$(/usr/bin/python3 - "${testlogs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        continue  # no test ran there ("No suitable tests defined")
    for line in lines:
        if not line.strip():
            continue
        result = json.loads(line).get("result", "")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:  # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
)

failed_count=$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p' <<<"$summary")
if [[ "$failed_count" != 0 ]]; then
    rc=1
elif ((rc != 0)); then
    # meson test failed without a failed test in its log (it crashed, or the
    # sanitizer build broke): the summary must not read as a clean run.
    log "meson test failed outside any single test"
    summary=${summary/ 0 failed,/ 1 failed,}
fi
echo "$summary"
exit "$rc"
