/*
 * The shared locks slurmstepd holds for a step, on files in the job user's
 * directory: root opens them, so nothing about them is trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "child.h"
#include "common.h"
#include "lock.h"

/* The collector holds an entry's lock exclusively for a moment only (to evict it). */
#define LOCK_WAIT_SECONDS 60

/*
 * The waiter: a blocking flock(2) on the caller's open file description, passed as
 * descriptor 3 (flock locks belong to the description, so the waiter's lock is the
 * caller's). It has a name of its own (Slurm's proctrack/linuxproc signals no process
 * named slurmstepd) and the default action for every signal with none blocked
 * (slurmstepd's handlers and mask are not its), so that whatever ends the step ends
 * it; and an alarm, should the caller be gone.
 */
static void waiter(int fd, int op, int seconds)
{
	struct child_setup s = CHILD_SETUP_INIT;
	int status;

	s.pass[0] = fd;
	s.flags = CHILD_KEEP_IDS | CHILD_DEFAULT_SIGNALS;
	status = child_prepare(&s);
	if (status != 0)
		_exit(status);
	prctl(PR_SET_NAME, LOCK_WAITER_NAME, 0, 0, 0);
	alarm((unsigned)seconds + 1);
	_exit(flock(3, op) == 0 ? 0 : 1);
}

int lock_wait(int fd, int op, int seconds)
{
	long long started = child_now_ms(), deadline = started + seconds * 1000LL, left;
	struct pollfd p = { .fd = -1, .events = POLLIN };
	int status, rc = -1, saved = EWOULDBLOCK;
	pid_t pid, done;

	if (flock(fd, op | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK && errno != EINTR)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		waiter(fd, op, seconds);
	p.fd = child_pidfd_open(pid);
	for (;;) {
		done = waitpid(pid, &status, WNOHANG);
		if (done == pid) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				rc = 0;
			else
				saved = WIFSIGNALED(status) ? EINTR : EIO;
			break;
		}
		if (done < 0 && errno != EINTR) {
			saved = errno;
			break;
		}
		left = deadline - child_now_ms();
		if (left <= 0 || cancel_requested(child_now_ms() - started)) {
			if (left > 0)
				saved = ECANCELED;
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		/* Woken the moment the waiter ends; without a pidfd (Linux < 5.3), every 10 ms. */
		if (p.fd >= 0)
			poll(&p, 1, (int)(left < 1000 ? left : 1000));
		else
			usleep(10000);
	}
	if (p.fd >= 0)
		close(p.fd);
	if (rc < 0)
		errno = saved;
	return rc;
}

int lock_shared(const char *path, int flags, uid_t owner, int *fd_out, char *err, size_t errlen)
{
	struct stat locked, current;
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
	if (lock_wait(fd, LOCK_SH, LOCK_WAIT_SECONDS) < 0) {
		if (errno == EINTR || errno == ECANCELED)
			snprintf(err, errlen, PLUGIN_NAME ": flock %s: the step is cancelled", path);
		else
			snprintf(err, errlen, PLUGIN_NAME ": flock %s: %m", path);
		goto fail;
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
