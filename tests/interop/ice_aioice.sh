#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: runs ice_aioice (the sluice ICE agent against aioice_peer.py,
# TAP) with Debian's /usr/bin/python3. Exit 77 (skipped) when aioice is not
# installed.
# Usage: ice_aioice.sh PATH/TO/ice_aioice
set -euo pipefail

prog=${1:?usage: ice_aioice.sh PATH/TO/ice_aioice}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3
if [ ! -x "$py" ]; then
    echo "SKIP: $py is not installed (apt-get install python3 python3-aioice)"
    exit 77
fi
if ! "$py" -c 'import aioice' 2>/dev/null; then
    echo "SKIP: aioice is not installed for $py (apt-get install python3-aioice)"
    exit 77
fi
exec "$prog" "$py" "$here/aioice_peer.py"
