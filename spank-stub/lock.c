/*
 * The shared locks slurmstepd holds for a step, on files in the job user's
 * directory: root opens them, so nothing about them is trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "lock.h"

/* The collector holds an entry's lock exclusively for a moment only (to evict it). */
#define LOCK_WAIT_SECONDS 60

int lock_shared(const char *path, int flags, uid_t owner, int *fd_out, char *err, size_t errlen)
{
	struct stat locked, current;
	int waited_ms = 0;
	int fd;
	int rc = -1;

	*fd_out = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | flags);
	if (fd < 0 && errno == ENOENT) {
		rc = 0;
		goto fail;
	}
	if (fd < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: %m", path);
		goto fail;
	}
	if (fstat(fd, &locked) < 0 || (!(flags & O_DIRECTORY) && !S_ISREG(locked.st_mode))) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: not a regular file", path);
		goto fail;
	}
	while (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno != EINTR && (errno != EWOULDBLOCK || waited_ms >= LOCK_WAIT_SECONDS * 1000)) {
			snprintf(err, errlen, PLUGIN_NAME ": flock %s: %m", path);
			goto fail;
		}
		usleep(10000);
		waited_ms += 10;
	}
	if (lstat(path, &current) < 0 || locked.st_dev != current.st_dev || locked.st_ino != current.st_ino) {
		rc = 0;
		goto fail;
	}
	if (locked.st_uid != owner) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: not owned by uid %u", path, (unsigned)owner);
		goto fail;
	}
	*fd_out = fd;
	fd = -1;
	rc = 1;
fail:
	if (fd >= 0)
		close(fd);
	return rc;
}
