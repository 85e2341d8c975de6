/*
 * The shared locks slurmstepd holds for a step (an entry's lock file, a step's
 * directory), which tell the collector what is in use.
 */
#ifndef PYXIS_CACHE_LOCK_H
#define PYXIS_CACHE_LOCK_H

#include <stddef.h>
#include <sys/types.h>

/* The name of lock_wait's waiter (ps, /proc/<pid>/comm). */
#define LOCK_WAITER_NAME "pyxis-cache-lk"

/*
 * Take op (LOCK_SH or LOCK_EX) on fd, waiting at most seconds without polling: when the
 * lock is not free at once, a forked waiter blocks in flock(2) on the same open file
 * description and the caller waits for it on its pidfd. The waiter is one of the step's
 * processes, named LOCK_WAITER_NAME, with every signal at its default: a step's kill
 * ends it, and the wait with it, at once; and every CANCEL_LOOK_SECONDS the caller asks
 * whether the step is cancelled (cancel.h: Slurm signals nothing before the tasks
 * start). 0 when locked, else -1 with errno: EWOULDBLOCK (still held after seconds),
 * ECANCELED (the step is cancelled), EINTR (the waiter was killed), or flock's own.
 */
int lock_wait(int fd, int op, int seconds);

/*
 * Open path as root without following a symlink and take LOCK_SH on it. 1 when
 * the file locked is still the one at path (a collector may have removed or
 * replaced it meanwhile), 0 when it is gone or another (ask again), -1 on error.
 * The file is the user's: O_NONBLOCK and a regular file only, so that a FIFO or
 * a lease in its place cannot hold slurmstepd in open(2), and a bounded wait
 * for the lock (lock_wait, LOCK_WAIT_SECONDS), so that the user's own LOCK_EX
 * cannot hold it in flock(2).
 */
int lock_shared(const char *path, int flags, uid_t owner, int *fd_out, char *err, size_t errlen);

#endif /* PYXIS_CACHE_LOCK_H */
