/*
 * A cold step's rootfs from a squashfuse_ll mount of the image (see fuse.h and
 * docs/srun.md). Two processes besides slurmstepd:
 *
 *   the mounter  (mounter.c) forked as root; unshares a user and a mount
 *                namespace, whose id maps slurmstepd writes; makes every
 *                mount as the job user (uid 0 inside): a tmpfs on the mount
 *                point, the FUSE mount, an overlay with a writable tmpfs
 *                upper; then exits.
 *   the daemon   squashfuse_ll -f IMG /dev/fd/3, as the job user in the
 *                node's namespaces, on the descriptor slurmstepd takes from
 *                the mounter (pidfd_getfd). Outside the mount namespace, it
 *                ends by itself once nothing uses the mount any more.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "fuse.h"
#include "lock.h"
#include "mounter.h"

int fuse_available(const char *search_path, char *daemon_bin, size_t len, char *why, size_t whylen)
{
	struct stat st;

	if (stat("/dev/fuse", &st) < 0 || !S_ISCHR(st.st_mode)) {
		snprintf(why, whylen, "no /dev/fuse");
		return -1;
	}
	if (child_find_executable(DAEMON, search_path, daemon_bin, len) < 0) {
		snprintf(why, whylen, DAEMON ": not found in %.300s", search_path);
		return -1;
	}
	return 0;
}

struct daemon_args {
	const char *bin;
	const char *image;
	int fd; /* the /dev/fuse descriptor, taken from the mounter */
	const struct pyxis_job *job;
};

/*
 * Slurm sends a step's signals to every process of the step (proctrack), the daemon
 * too: scancel --signal=USR1 ended it and the task, running from the mount, died of
 * SIGBUS (issue 19). The daemon ignores every signal a step may be sent (SIG_IGN
 * survives execve, and libfuse sets its INT/TERM/HUP handlers only over SIG_DFL), so
 * they reach the task alone; SIGKILL still ends it at the step's end, SIGSTOP stops it
 * with the step (scontrol suspend) until SIGCONT, and it exits by itself once nothing
 * uses the mount. Faults (SEGV, BUS, ...), SIGCHLD and SIGCONT keep their defaults.
 */
static void ignore_step_signals(void)
{
	static const int kept[] = { SIGKILL, SIGSTOP, SIGCHLD, SIGCONT, SIGSEGV, SIGBUS,
				    SIGFPE,  SIGILL,  SIGTRAP, SIGABRT, SIGSYS };
	size_t i;
	int sig;

	for (sig = 1; sig < NSIG; ++sig) {
		for (i = 0; i < sizeof(kept) / sizeof(kept[0]) && kept[i] != sig; ++i)
			;
		/* glibc's own real-time signals (32, 33) refuse, which is fine. */
		if (i == sizeof(kept) / sizeof(kept[0]))
			signal(sig, SIG_IGN);
	}
}

static void daemon_exec(const struct daemon_args *d, int err_fd)
{
	char *argv[] = { DAEMON, "-f", (char *)d->image, "/dev/fd/3", NULL };
	char path_env[] = "PATH=/usr/local/bin:/usr/bin:/bin";
	char *envp[] = { path_env, NULL };

	if (child_reset(-1, err_fd) < 0 || dup2(d->fd, 3) < 0)
		_exit(126);
	ignore_step_signals();
	child_close_from(4);
	if (child_become(d->job) < 0) {
		dprintf(STDERR_FILENO, "couldn't drop privileges: %m\n");
		_exit(126);
	}
	if (chdir(d->job->cwd) < 0 && chdir("/") < 0)
		_exit(126);
	execve(d->bin, argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", d->bin);
	_exit(127);
}

/* A mount point name of ours for this entry and step, nothing else. */
static int valid_point(const char *text, const char *name, uint32_t job, uint32_t step)
{
	char prefix[NAME_MAX + 64];
	size_t n;

	n = (size_t)snprintf(prefix, sizeof(prefix), MOUNT_PREFIX "%s.%u.%u.", name, job, step);
	return strncmp(text, prefix, n) == 0 && strlen(text) == n + 6 && strchr(text, '/') == NULL;
}

/* The mounter did not say what it should have: the daemon's own words first (a bad image), else the mounter's. */
static void mounter_error(const struct message *msg, int daemon_err_fd, char *err, size_t errlen)
{
	char daemon_err[256];

	child_read_capture(daemon_err_fd, daemon_err, sizeof(daemon_err));
	daemon_err[strcspn(daemon_err, "\n")] = '\0';
	if (daemon_err[0] != '\0')
		snprintf(err, errlen, DAEMON ": %s", daemon_err);
	else if (msg->tag == 'e')
		snprintf(err, errlen, "%s", msg->text);
	else
		snprintf(err, errlen, "the mount did not finish within %d s", MOUNT_TIMEOUT_MS / 1000);
}

int fuse_mount_image(const char *daemon_bin, const char *image, const char *user_dir, const char *name,
		     const struct pyxis_job *job, struct fuse_mount *m, char *err, size_t errlen)
{
	int to_mounter[2] = { -1, -1 }, from_mounter[2] = { -1, -1 };
	struct mounter mt = { .user_dir = user_dir, .name = name, .job = job->jobid, .step = job->stepid };
	struct daemon_args d = { .bin = daemon_bin, .image = image, .fd = -1, .job = job };
	struct child mounter = CHILD_INIT, daemon = CHILD_INIT;
	struct message msg;
	char path[PATH_MAX + 32];
	uid_t euid = geteuid();
	int locked;
	int rc = -1;

	*m = (struct fuse_mount)FUSE_MOUNT_INIT;
	/*
	 * Root's own ids for the id maps, /proc/<mounter>/ns and pidfd_getfd (the mounter is
	 * not dumpable); given back at the end, as slurmstepd does around user_init.
	 */
	if (euid != 0 && seteuid(0) < 0) {
		snprintf(err, errlen, "seteuid: %m");
		return -1;
	}
	if (pipe2(to_mounter, O_CLOEXEC) < 0 || pipe2(from_mounter, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %m");
		goto fail;
	}
	mounter.pid = fork();
	if (mounter.pid < 0) {
		snprintf(err, errlen, "fork: %m");
		goto fail;
	}
	if (mounter.pid == 0) {
		mt.in = to_mounter[0];
		mt.out = from_mounter[1];
		_exit(mounter_main(&mt));
	}
	close(to_mounter[0]);
	close(from_mounter[1]);
	to_mounter[0] = from_mounter[1] = -1;

	receive_message(from_mounter[0], MOUNT_TIMEOUT_MS, &msg);
	if (msg.tag != 'u') {
		mounter_error(&msg, daemon.err_fd, err, errlen);
		goto fail;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)mounter.pid);
	m->mntns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->mntns_fd < 0 || write_id_maps(mounter.pid, job) < 0) {
		snprintf(err, errlen, "the mount's namespace: %m");
		goto fail;
	}
	send_message(to_mounter[1], 'g', 0, NULL);

	receive_message(from_mounter[0], MOUNT_TIMEOUT_MS, &msg);
	if (msg.tag != 'm') {
		mounter_error(&msg, daemon.err_fd, err, errlen);
		goto fail;
	}
	if (!valid_point(msg.text, name, mt.job, mt.step)) {
		snprintf(err, errlen, "unexpected mount point from the mounter");
		goto fail;
	}
	snprintf(m->point, sizeof(m->point), "%s/%s", user_dir, msg.text);
	snprintf(m->rootfs, sizeof(m->rootfs), "%s/root", m->point);
	locked = lock_shared(m->point, O_DIRECTORY, job->uid, &m->lock_fd, err, errlen);
	if (locked == 0)
		snprintf(err, errlen, "%s was removed before it was locked", m->point);
	if (locked <= 0)
		goto fail;
	mounter.pidfd = (int)syscall(SYS_pidfd_open, mounter.pid, 0);
	d.fd = mounter.pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, mounter.pidfd, msg.value, 0);
	if (d.fd < 0) {
		snprintf(err, errlen, "take the FUSE descriptor: %m");
		goto fail;
	}
	daemon.err_fd = memfd_create("pyxis-cache-fuse", MFD_CLOEXEC);
	daemon.pid = daemon.err_fd < 0 ? -1 : fork();
	if (daemon.pid < 0) {
		snprintf(err, errlen, "start " DAEMON ": %m");
		goto fail;
	}
	if (daemon.pid == 0)
		daemon_exec(&d, daemon.err_fd);
	close(d.fd);
	d.fd = -1;
	send_message(to_mounter[1], 'g', 0, NULL);

	receive_message(from_mounter[0], MOUNT_TIMEOUT_MS, &msg);
	if (msg.tag != 'o') {
		mounter_error(&msg, daemon.err_fd, err, errlen);
		goto fail;
	}
	{
		unsigned long long dev = 0, ino = 0;

		if (sscanf(msg.text, "%llu %llu", &dev, &ino) != 2) {
			snprintf(err, errlen, "unexpected reply from the mounter");
			goto fail;
		}
		m->root_dev = (dev_t)dev;
		m->root_ino = (ino_t)ino;
	}
	/* It lives on: fuse_release reaps it. */
	m->daemon = daemon.pid;
	daemon.pid = -1;
	rc = 0;
fail:
	child_end(&daemon);
	child_end(&mounter);
	if (rc < 0)
		fuse_release(m);
	if (d.fd >= 0)
		close(d.fd);
	for (int i = 0; i < 2; ++i) {
		if (to_mounter[i] >= 0)
			close(to_mounter[i]);
		if (from_mounter[i] >= 0)
			close(from_mounter[i]);
	}
	if (euid != 0 && seteuid(euid) < 0 && rc == 0) {
		snprintf(err, errlen, "seteuid: %m");
		fuse_release(m);
		rc = -1;
	}
	return rc;
}

void fuse_release(struct fuse_mount *m)
{
	const struct timespec tick = { .tv_nsec = 5 * 1000 * 1000 };
	int i;

	if (m->mntns_fd >= 0)
		close(m->mntns_fd);
	m->mntns_fd = -1;
	/* Empty outside the namespace; rmdir never follows a symlink put in its place. */
	if (m->point[0] != '\0')
		rmdir(m->point);
	if (m->lock_fd >= 0)
		close(m->lock_fd);
	m->lock_fd = -1;
	m->point[0] = '\0';
	/* The daemon ends once the last user of the mount is gone; reap it if it did. */
	for (i = 0; m->daemon > 0 && i < 100; ++i) {
		if (waitpid(m->daemon, NULL, WNOHANG) == m->daemon)
			m->daemon = -1;
		else
			nanosleep(&tick, NULL);
	}
}
