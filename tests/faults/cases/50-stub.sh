# shellcheck shell=bash
# The SPANK stub against its own child (issue 10, items 4 and 9), on the e2e
# harness's private Slurm: tests/faults/stub.bats, run once, one case per test.
CASES+=" stub_rewritten_reply stub_stopped_child stub_fifo_lock stub_inherited_fds stub_stopped_runtime stub_runtime_fds"

stub_tap=
stub_results() { # runs stub.bats once; its TAP in $stub_tap
  [[ -n $stub_tap ]] && return 0
  stub_tap=$WORK/stub.tap
  bash "$repo/tests/e2e/run.sh" --filter '^stub: ' "$here/stub.bats" >"$stub_tap" 2>&1
  sed 's/^/    /' "$stub_tap" >&2
}
stub_case() { # stub_case REGEX: the stub.bats test whose name matches passed
  if [[ ! -f $repo/tests/e2e/run.sh ]] || ! command -v slurmctld >/dev/null; then
    echo "    SKIPPED: no Slurm harness (tests/e2e/run.sh) or no slurmctld here" >&2
    return 0
  fi
  stub_results
  attacks=$((attacks + 1))
  # Once per runtime pass of run.sh: every run of the case passed.
  grep -qE "^ok [0-9]+ stub: $1" "$stub_tap" && ! grep -qE "^not ok [0-9]+ stub: $1" "$stub_tap" ||
    fail "stub.bats: $(grep -E "^not ok [0-9]+ stub: $1" "$stub_tap" | head -1)"
}

case_stub_rewritten_reply() { stub_case 'a reply rewritten'; }
case_stub_stopped_child() { stub_case 'a stopped child'; }
case_stub_fifo_lock() { stub_case "a FIFO in place of the entry's lock"; }
case_stub_inherited_fds() { stub_case "the command's children inherit no descriptor"; }
case_stub_stopped_runtime() { stub_case 'a runtime stopped before its container is set up'; }
case_stub_runtime_fds() { stub_case 'the runtime inherits no descriptor'; }
