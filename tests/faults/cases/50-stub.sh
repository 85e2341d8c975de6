# shellcheck shell=bash
# The SPANK stub against its own child (its reply rewritten, the child stopped), on the e2e
# harness's private Slurm: tests/faults/stub.bats, run once, one case per test
# (tests/faults/run.sh runs it and grades it).
CASES+=" stub_rewritten_reply stub_stopped_child stub_fifo_lock stub_inherited_fds stub_stopped_runtime stub_runtime_fds"

stub_case() { # stub_case REGEX: the stub.bats test whose name matches passed (tests/faults/run.sh's slurm_case)
  attacks=$((attacks + 1))
  slurm_case "stub: $1"
}

case_stub_rewritten_reply() { stub_case 'a reply rewritten'; }
case_stub_stopped_child() { stub_case 'a stopped child'; }
case_stub_fifo_lock() { stub_case "a FIFO in place of the entry's lock"; }
case_stub_inherited_fds() { stub_case "the command's children inherit no descriptor"; }
case_stub_stopped_runtime() { stub_case 'a runtime stopped before its container is set up'; }
case_stub_runtime_fds() { stub_case 'the runtime inherits no descriptor'; }
