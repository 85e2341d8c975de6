#!/usr/bin/env bash
# deno task compile [--plugstack FILE | --set container_cache_data_path=DIR] [--prometheus FILE]
#
# Builds dist/pyxis-cache, one executable holding Deno and the command, for sites
# where `deno compile` can download its runtime. Its permissions are fixed when it
# is built, so they are the launcher's own, computed by bin/pyxis-cache from the
# same arguments it would get: the cache root read from the plugstack.conf (or
# --set), and the directory of a --prometheus FILE. Rebuild it when
# container_cache_data_path changes.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bin/pyxis-cache
source "$repo/bin/pyxis-cache" "$@"
if ((${#writable[@]} == 0)); then
  echo "compile: no container_cache_data_path: give --plugstack FILE or --set container_cache_data_path=DIR" >&2
  exit 2
fi
mkdir -p "$repo/dist"
exec "$deno" compile --no-prompt --no-config --no-lock "${permissions[@]}" \
  --output "$repo/dist/pyxis-cache" "$repo/cmd/main.ts"
