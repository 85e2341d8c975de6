#!/usr/bin/env bash
# `make bench`: pyxis-cache's performance figures, each a ratio measured side by
# side in one run. Run as root on an otherwise idle node.
#   BENCH_QUICK=1   a 40 MB image and fewer repetitions (a smoke test)
#   BENCH_ONLY=P1,P4  only these figures
#   BENCH_REPS=N    repetitions per side (default 5, 3 when quick; P1 takes 4×)
#   BENCH_DIR=DIR   work directory; the test image is cached here (default /var/tmp/pyxis-cache-bench)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

if ((EUID != 0)); then
  echo "bench/run.sh: must run as root (it prepares cache roots and owns entries for other uids)" >&2
  exit 2
fi
for tool in mksquashfs unsquashfs /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool not found (make bootstrap-test)" >&2; exit 2; }
done
deno=$repo/.tools/node_modules/deno/deno
[[ -x $deno ]] || deno=$(command -v deno) || { echo "bench/run.sh: deno not found: run 'make bootstrap'" >&2; exit 2; }

exec "$deno" run --quiet --no-config --no-lock -A "$here/bench.ts"
