# Helpers for the fault and security suite (sourced by run.sh and load-worker.sh).

# A tree's identity: paths, types, modes, sizes, symlink targets and file contents,
# without the lock file (holding the entry's record) that reuse adds to the rootfs.
manifest() {
  (
    cd "$1" || exit 1
    find . -mindepth 1 -path ./.pyxis_cache_lock -prune \
      -o -type d -printf '%p %y %m\n' -o -printf '%p %y %m %s %l\n' | LC_ALL=C sort
    find . -mindepth 1 -type f ! -path ./.pyxis_cache_lock -print0 |
      LC_ALL=C sort -z | xargs -0r sha256sum
  ) | sha256sum | cut -c1-64
}

# Runs the real command against the current cache root.
pc() {
  local sub=$1
  shift
  "$PC" "$sub" --no-plugstack --set "container_cache_data_path=$BASE" \
    --set "container_cache_gc_high=${GC_HIGH:-85}" --set "container_cache_gc_low=${GC_LOW:-80}" "$@"
}

pckey() { "$PC" key "$@"; }

# hold [-s] FILE [as-user-fn]: a flock holder in the background (HOLDER: its pid). flock -o
# keeps the lock in flock itself, so that SIGKILL of HOLDER leaves a lock held by a dead process.
# Returns once the lock is really held (a lock the holder's mode excludes cannot be taken).
hold() {
  local mode=-x probe=-s i
  if [[ $1 == -s ]]; then mode=-s probe=-x; shift; fi
  ${2:-} flock -o "$mode" "$1" sleep 600 &
  HOLDER=$!
  for ((i = 0; i < 3000; i++)); do
    flock -n "$probe" "$1" true 2>/dev/null || return 0
    kill -0 "$HOLDER" 2>/dev/null || break
    sleep 0.01
  done
  fail "hold: $1 was never locked"
}
# descendants PID: every process under PID (a holder run through runuser has flock, then sleep, below it).
descendants() {
  local kid
  for kid in $(pgrep -P "$1"); do
    echo "$kid"
    descendants "$kid"
  done
}
kill_holder() {
  local kids
  kids=$(descendants "$HOLDER")
  kill -9 "$HOLDER" 2>/dev/null
  wait "$HOLDER" 2>/dev/null
  [[ -n $kids ]] && kill -9 $kids 2>/dev/null
  return 0
}
