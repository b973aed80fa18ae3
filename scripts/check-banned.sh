#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails when banned libc calls (CONVENTIONS.md) appear in src/: strcpy, strcat, sprintf, gets,
# atoi, strtok (strtok_r is fine).
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\b(strcpy|strcat|sprintf|gets|atoi|strtok)\s*\(' src | grep -vE '^\S+:\s*/?\*' || true)
if [ -n "$hits" ]; then
    echo "banned calls found:"
    echo "$hits"
    exit 1
fi
echo "no banned calls"
