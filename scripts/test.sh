#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite on a fresh Debian 12 machine: install what is missing,
# configure build/ with clang, build, and run `meson test` (extra arguments
# go to meson test). Idempotent; exits with meson test's status.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
cd "$root"

sluice_ensure_packages "${SLUICE_PACKAGES[@]}"
sluice_setup_build build
sluice_build build
rc=0
meson test -C build --print-errorlogs "$@" || rc=$?
exit "$rc"
