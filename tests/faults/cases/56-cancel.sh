# shellcheck shell=bash
# A step cancelled while it waits in user_init ends at once, on the e2e harness's private
# Slurm: tests/faults/cancel.bats, run once, one case per test (tests/faults/run.sh runs
# it and grades it).
CASES+=" stub_cancel_lock stub_cancel_unpack stub_cancel_mounter"

case_stub_cancel_lock() { faults=$((faults + 1)); slurm_case "stub cancel: a step waiting in user_init for its entry's lock"; }
case_stub_cancel_unpack() { faults=$((faults + 1)); slurm_case "stub cancel: a cold step waiting in user_init for its unpack"; }
case_stub_cancel_mounter() { faults=$((faults + 1)); slurm_case "stub cancel: a cold step whose FUSE mounter its user stopped"; }
