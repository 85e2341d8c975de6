# shellcheck shell=bash
# A cold step's FUSE mount against its own job user, on the e2e
# harness's private Slurm: tests/faults/fuse.bats, run once with the other files on Slurm,
# one case per test (tests/faults/run.sh runs it and grades it, last).
CASES+=" fuse_held_request fuse_swap_fifo fuse_read_hold fuse_swap_image fuse_own_server fuse_preexec_walk fuse_preexec_read"

fuse_case() { # fuse_case REGEX: the fuse.bats test whose name matches passed (tests/faults/run.sh's slurm_case)
  attacks=$((attacks + 1))
  slurm_case "fuse attack: $1"
}

case_fuse_held_request() { fuse_case 'a task killed while the user holds'; }
case_fuse_swap_fifo() { fuse_case 'the image swapped for a FIFO'; }
case_fuse_read_hold() { fuse_case "the mount's reads held by the user while the runtime starts"; }
case_fuse_swap_image() { fuse_case 'the image swapped for another valid image'; }
case_fuse_own_server() { fuse_case "an image on the user's own FUSE filesystem"; }
case_fuse_preexec_walk() { fuse_case "the mount served by the user to all but a task not yet exec'd"; }
case_fuse_preexec_read() { fuse_case "the reads of a task's execve held by the user"; }
