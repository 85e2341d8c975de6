# shellcheck shell=bash
# enroot for the tests (the e2e suite's enroot runtime, the registry cases): the installed
# one, else enroot 4.1.2 built from ../shared/third_party/enroot into a cache outside the
# checkout (PYXIS_CACHE_TEST_CACHE, default /var/cache/pyxis-cache-test; the next run reuses
# it), else none. Source it, then: test_enroot prints its path, or fails.
# tests/run.sh calls it once before its lanes, so that no two suites build it at once.
test_enroot() {
  local enroot prefix had_run
  if enroot=$(command -v enroot); then
    echo "$enroot"
    return 0
  fi
  local build
  build=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared/third_party/enroot/build.sh
  [[ -f $build ]] || return 1
  prefix=${PYXIS_CACHE_TEST_CACHE:-/var/cache/pyxis-cache-test}/enroot-4.1.2
  had_run=$([[ -e /run/enroot ]] && echo y || true)
  # One build at a time (two suites may call this at once): the second finds it built.
  mkdir -p "$(dirname "$prefix")"
  flock "$(dirname "$prefix")/.enroot-build.lock" bash "$build" "$prefix" >&2 || return 1
  # build.sh runs `enroot version` as root, which creates /run/enroot (its default
  # runtime path): the cases check that steps never need it.
  [[ -n $had_run ]] || rmdir /run/enroot 2>/dev/null || true
  echo "$prefix/bin/enroot"
}
