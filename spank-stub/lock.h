/*
 * The shared locks slurmstepd holds for a step (an entry's lock file, a step's
 * directory), which tell the collector what is in use.
 */
#ifndef PYXIS_CACHE_LOCK_H
#define PYXIS_CACHE_LOCK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Open path as root without following a symlink and take LOCK_SH on it. 1 when
 * the file locked is still the one at path (a collector may have removed or
 * replaced it meanwhile), 0 when it is gone or another (ask again), -1 on error.
 * The file is the user's: O_NONBLOCK and a regular file only, so that a FIFO or
 * a lease in its place cannot hold slurmstepd in open(2), and a bounded wait
 * for the lock, so that the user's own LOCK_EX cannot hold it in flock(2).
 */
int lock_shared(const char *path, int flags, uid_t owner, int *fd_out, char *err, size_t errlen);

#endif /* PYXIS_CACHE_LOCK_H */
