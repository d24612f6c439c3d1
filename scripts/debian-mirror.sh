#!/usr/bin/env bash
# Prints the Debian mirror to build from: $SCAR_DEBIAN_MIRROR, else the first one apt's own sources
# name (deb822 .sources or one-line .list), read at run time so that no mirror is written anywhere.
# Prints nothing (and fails) when there is none.
set -euo pipefail
if [ -n "${SCAR_DEBIAN_MIRROR:-}" ]; then
  echo "$SCAR_DEBIAN_MIRROR"
  exit 0
fi
{
  sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n' || true
  awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
} | grep -E '/debian/?$' | head -1 | grep .
