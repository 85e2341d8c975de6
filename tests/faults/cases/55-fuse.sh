# shellcheck shell=bash
# A cold step's FUSE mount against its own job user (issue 19 item 4), on the e2e
# harness's private Slurm: tests/faults/fuse.bats, run once, one case per test.
CASES+=" fuse_held_request fuse_swap_fifo"

fuse_tap=
fuse_results() { # runs fuse.bats once; its TAP in $fuse_tap
  [[ -n $fuse_tap ]] && return 0
  fuse_tap=$WORK/fuse.tap
  bash "$repo/tests/e2e/run.sh" --filter '^fuse attack: ' "$here/fuse.bats" >"$fuse_tap" 2>&1
  sed 's/^/    /' "$fuse_tap" >&2
}
fuse_case() { # fuse_case REGEX: the fuse.bats test whose name matches passed
  if [[ ! -f $repo/tests/e2e/run.sh ]] || ! command -v slurmctld >/dev/null; then
    echo "    SKIPPED: no Slurm harness (tests/e2e/run.sh) or no slurmctld here" >&2
    return 0
  fi
  fuse_results
  attacks=$((attacks + 1))
  grep -qE "^ok [0-9]+ fuse attack: $1" "$fuse_tap" && ! grep -qE "^not ok [0-9]+ fuse attack: $1" "$fuse_tap" ||
    fail "fuse.bats: $(grep -E "^not ok [0-9]+ fuse attack: $1" "$fuse_tap" | head -1)"
}

case_fuse_held_request() { fuse_case 'a task killed while the user holds'; }
case_fuse_swap_fifo() { fuse_case 'the image swapped for a FIFO'; }
