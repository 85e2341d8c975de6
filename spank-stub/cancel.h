/*
 * Whether the step user_init works for is being cancelled. Slurm (22.05) signals no
 * process of a step before its tasks start: slurmd's terminate waits on the step's
 * REQUEST_SIGNAL_CONTAINER until user_init returns (up to 2 minutes), then the
 * unkillable-step timer runs. So a wait in user_init (a lock, the command's unpack or
 * import) asks slurmctld itself, through slurmstepd's own libslurm, and ends when it is.
 */
#ifndef PYXIS_CACHE_CANCEL_H
#define PYXIS_CACHE_CANCEL_H

#include "context.h"

/* How often a wait asks slurmctld (one RPC), after the wait's first CANCEL_LOOK_SECONDS. */
#define CANCEL_LOOK_SECONDS 2

/* From now on cancel_requested() asks about job (its ids read when asked); NULL: never. */
void cancel_watch(const struct pyxis_job *job);

/*
 * 1 once slurmctld says the job is no longer running (cancelled, timed out, completing)
 * or the step is gone or no longer running; 0 otherwise, also when it cannot be asked
 * (no libslurm in this process, slurmctld down). since_ms: how long the caller has
 * waited so far; 0 until that is CANCEL_LOOK_SECONDS (also once cancelled: the stub's
 * short children, such as a FUSE abort, run to their end), then slurmctld is asked at
 * most every CANCEL_LOOK_SECONDS (the answer in between is the last one).
 */
int cancel_requested(long long since_ms);

#endif /* PYXIS_CACHE_CANCEL_H */
