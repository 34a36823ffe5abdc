#!/usr/bin/env bash
# Install build dependencies (scripts/setup-debian.sh), then configure and build
# hubd in build/ (relative to the repository root).
#
# Environment:
#   HUBD_BUILD_DIR=DIR   build directory (default: build)
#   HUBD_SKIP_SETUP=1    don't run setup-debian.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
build_dir="${HUBD_BUILD_DIR:-build}"

log() { printf 'build: %s\n' "$*"; }

bash scripts/setup-debian.sh

if [[ -f "$build_dir/meson-private/coredata.dat" ]]; then
    log "meson setup --reconfigure $build_dir"
    # A build dir from another meson version can't be reconfigured: start over.
    if ! meson setup --reconfigure "$build_dir" --buildtype=debugoptimized; then
        log "reconfigure failed, meson setup --wipe $build_dir"
        meson setup --wipe "$build_dir" --buildtype=debugoptimized
    fi
else
    log "meson setup $build_dir --buildtype=debugoptimized"
    meson setup "$build_dir" --buildtype=debugoptimized
fi

log "ninja -C $build_dir"
ninja -C "$build_dir"
