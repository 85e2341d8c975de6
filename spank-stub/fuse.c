/*
 * A cold step's rootfs from a squashfuse_ll mount of the image (see fuse.h and
 * docs/srun.md). Two processes besides slurmstepd:
 *
 *   the mounter  (mounter.c) forked as root; unshares a user and a mount
 *                namespace, whose id maps slurmstepd writes; makes every
 *                mount as the job user (uid 0 inside): a tmpfs on the mount
 *                point, the FUSE mount, an overlay with a writable tmpfs
 *                upper; then exits.
 *   the daemon   squashfuse_ll -f /dev/fd/4 /dev/fd/3, as the job user in the
 *                node's namespaces, out of the step (a session of its own), on
 *                the descriptor slurmstepd takes from the mounter (pidfd_getfd)
 *                and the image it opened itself (a regular file, never a FIFO
 *                swapped in by name). It ends once nothing uses the mount, or
 *                the connection is aborted.
 *   the guard    root, out of the step, for the step's life: it aborts the FUSE
 *                connection when a killed process of the step stays in a FUSE
 *                request (the user can serve the connection, or stop the daemon
 *                mid-request: SIGKILL cannot end such a process, and Slurm would
 *                wait for it and drain the node), when a task Slurm has not yet
 *                exec'd (which no scancel signals) stays in one request for
 *                CHILD_FUSE_STALL_SECONDS, and when the step is over.
 */
#include <errno.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "fuse.h"
#include "lock.h"
#include "mounter.h"

/* The guard looks every second; a process killed and still in a request at three looks has it abort. */
#define GUARD_TICK_MS 1000
#define GUARD_KILLED_TICKS 3
/* A task not yet exec'd (Slurm does not signal it) in one request that long has it abort too. */
#define GUARD_STALL_TICKS CHILD_FUSE_STALL_SECONDS

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

/*
 * The mount's read-ahead, in KiB (the kernel's default is 128: the daemon's block size). The
 * runtime's first exec from a fresh mount faults its binary in: with 128 KiB the kernel asks the
 * daemon for one block at a time, each decompressed before the next is asked for; with a MiB it
 * asks for eight at once, which the daemon's threads decompress side by side (a 2 MB static
 * binary: 43 ms to exec, 22 ms; docs/performance.md, P11).
 */
#define READ_AHEAD_KB "1024"

/* The daemon's words when the image it opened is not the file identified (mounter_error looks for them). */
#define REPLACED_TEXT "the image is not the file the command identified (replaced since)"

struct daemon_args {
	const char *bin;
	const char *image;
	const struct file_id *file; /* what the command identified; NULL: no check */
	int fd; /* the /dev/fuse descriptor, taken from the mounter */
	const struct pyxis_job *job;
};

/*
 * Slurm sends a step's signals to every process of the step (proctrack), the daemon
 * too: scancel --signal=USR1 ended it and the task, running from the mount, died of
 * SIGBUS. So the daemon is out of the step's tree, and also ignores every signal a
 * step may be sent (CHILD_IGNORE_STEP_SIGNALS): whatever signals the step's processes
 * reaches the task alone. It exits once nothing uses the mount, or its connection is
 * aborted.
 */
static void daemon_exec(const struct daemon_args *d, int err_fd)
{
	char *argv[] = { DAEMON, "-f", "/dev/fd/4", "/dev/fd/3", NULL };
	struct child_setup s = { .out_fd = -1, .err_fd = err_fd, .pass = { d->fd, -1 }, .mntns_fd = -1, .user = d->job,
				 .cwd = d->job->cwd, .flags = CHILD_IGNORE_STEP_SIGNALS | CHILD_CWD_OR_ROOT };
	struct child_env env = CHILD_ENV_INIT;
	struct stat st;
	int fd, status;

	status = child_prepare(&s);
	if (status != 0)
		_exit(status);
	child_env_path(&env, CHILD_PATH_SYSTEM, NULL);
	/*
	 * The image, opened once, as the user: without blocking (a FIFO put in its place
	 * after the command identified it would hold the daemon in open), only a regular
	 * file, and only the file the command identified (its device and inode): another
	 * one renamed over the name since, even a valid image, is refused. squashfuse_ll
	 * reads that descriptor, not a name that can be swapped.
	 */
	fd = open(d->image, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		dprintf(STDERR_FILENO, "Can't open squashfs image: %m\n");
		_exit(1);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		dprintf(STDERR_FILENO, "the image is not a regular file\n");
		_exit(1);
	}
	if (d->file != NULL &&
	    ((unsigned long long)st.st_dev != d->file->dev || (unsigned long long)st.st_ino != d->file->ino)) {
		dprintf(STDERR_FILENO, REPLACED_TEXT "\n");
		_exit(1);
	}
	if (fcntl(fd, F_SETFL, 0) < 0 || (fd != 4 && (dup2(fd, 4) < 0 || close(fd) < 0)))
		_exit(126);
	execve(d->bin, argv, env.envp);
	dprintf(STDERR_FILENO, "%s: %m\n", d->bin);
	_exit(127);
}

/*
 * The FUSE connection of the mount that pin_fd holds, in pid's mount namespace: the
 * minor of its device (fusectl's /sys/fs/fuse/connections/<N>), from the mount's id
 * (/proc/self/fdinfo) and /proc/<pid>/mountinfo (nothing is asked of the daemon).
 * 0 when it is not a fuse.squashfuse_ll mount there.
 */
static unsigned mount_connection(pid_t pid, int pin_fd)
{
	char path[64], line[3 * PATH_MAX];
	unsigned id, mnt_id = 0, major, minor, conn = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pin_fd);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (mnt_id == 0 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "mnt_id: %u", &id) == 1)
			mnt_id = id;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	f = fopen(path, "re");
	if (mnt_id == 0 || f == NULL) {
		if (f != NULL)
			fclose(f);
		return 0;
	}
	/* ID PARENT MAJOR:MINOR ROOT POINT OPTIONS ... - TYPE SOURCE ... */
	while (conn == 0 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%u %*u %u:%u", &id, &major, &minor) == 3 && id == mnt_id && major == 0 &&
		    strstr(line, " - fuse." DAEMON " ") != NULL)
			conn = minor;
	fclose(f);
	return conn;
}

/*
 * As root: the read-ahead of the mount whose connection is conn (its backing device's, which
 * sysfs names by the mount's device number, 0:conn). Set once the daemon has answered FUSE_INIT,
 * whose answer would lower it again; a failure only costs speed.
 */
static void set_read_ahead(unsigned conn)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/sys/class/bdi/0:%u/read_ahead_kb", conn);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		if (write(fd, READ_AHEAD_KB, strlen(READ_AHEAD_KB)) < 0) {
			/* only slower: the kernel's default stays */
		}
		close(fd);
	}
}

/* A copy of the mounter's descriptor fd (pidfd_getfd), or -1 (errno). */
static int take_fd(struct mounter_link *l, int fd)
{
	/* pidfd_getfd: Linux 5.6 and headers that know it; without, no mount (the step waits for the unpack). */
#ifdef SYS_pidfd_getfd
	if (l->child.pidfd < 0)
		l->child.pidfd = child_pidfd_open(l->child.pid);
	return l->child.pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, l->child.pidfd, fd, 0);
#else
	(void)l;
	(void)fd;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * 1 when pid's mounts name our mount point (the FUSE namespace names <point>/lower, a
 * container's its overlay's lowerdir=<point>/lower) and, with `killed`, it is in
 * uninterruptible sleep in a FUSE request with SIGKILL pending.
 */
static int in_mount(const char *pid, const char *point_name, int killed)
{
	char path[64], buf[4096], *end, state;
	unsigned long long pending = 0;
	int found = 0;
	FILE *f;

	if (!killed)
		goto mounts;
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if (child_proc_stat(path, &state, NULL) < 0 || state != 'D')
		return 0;
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (strncmp(buf, "SigPnd:", 7) == 0 || strncmp(buf, "ShdPnd:", 7) == 0)
			pending |= strtoull(buf + 7, &end, 16);
	fclose(f);
	if (!(pending & (1ULL << (SIGKILL - 1))))
		return 0;
	/*
	 * Waiting in FUSE (request_wait_answer, unless inlined into another fuse function),
	 * not on a disk or NFS: a user's own kill -9 of such a process must not cost the
	 * step its mount. A kernel that does not say (no kallsyms: "0") is taken at its word.
	 */
	if (child_read_proc(pid, "wchan", buf, sizeof(buf)) > 0 && strcmp(buf, "0") != 0 && strstr(buf, "fuse") == NULL &&
	    strcmp(buf, "request_wait_answer") != 0)
		return 0;
mounts:
	snprintf(path, sizeof(path), "/proc/%s/mountinfo", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (!found && fgets(buf, sizeof(buf), f) != NULL)
		found = strstr(buf, point_name) != NULL;
	fclose(f);
	return found;
}

static int any_in_mount(const char *point_name, int killed)
{
	struct dirent *d;
	DIR *dir;
	int found = 0;

	dir = opendir("/proc");
	if (dir == NULL)
		return 0;
	while (!found && (d = readdir(dir)) != NULL)
		if (isdigit((unsigned char)d->d_name[0]))
			found = in_mount(d->d_name, point_name, killed);
	closedir(dir);
	return found;
}

/*
 * A task of the step before Slurm execs it (still slurmstepd's code: the stub's task_init,
 * Slurm's execve of the command) waiting on the mount's server (child_fuse_wchan: in a
 * request, or for a page a held read fills, as execve's read of the command does): 1 with
 * its pid and context switches. Slurm signals no such process (scancel's SIGKILL does not
 * reach it), so a request the user's server never answers would hold it, and slurmstepd
 * with it, until UnkillableStepTimeout drains the node.
 */
static int pre_exec_waiter(const char *point_name, const struct stat *self, long *pid,
			   unsigned long long *switches)
{
	char path[64];
	struct dirent *d;
	struct stat exe;
	int found = 0, killed;
	DIR *dir;

	dir = opendir("/proc");
	if (dir == NULL)
		return 0;
	while (!found && (d = readdir(dir)) != NULL) {
		if (!isdigit((unsigned char)d->d_name[0]) || strlen(d->d_name) > 16)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/exe", d->d_name);
		if (stat(path, &exe) < 0 || exe.st_dev != self->st_dev || exe.st_ino != self->st_ino)
			continue;
		snprintf(path, sizeof(path), "/proc/%s", d->d_name);
		if (!child_fuse_waiter(path, &killed, switches) || !in_mount(d->d_name, point_name, 0))
			continue;
		*pid = atol(d->d_name);
		found = 1;
	}
	closedir(dir);
	return found;
}

/*
 * The guard's loop (root, out of the step). It holds the mount (m->pin_fd), so the
 * connection number stays the mount's while it runs, its mount point removed or not.
 * Every GUARD_TICK_MS, a process killed and still in a request of the mount after
 * GUARD_KILLED_TICKS looks, or a task not yet exec'd in the same request for
 * GUARD_STALL_TICKS (pre_exec_waiter), has the connection aborted. slurmstepd writes a
 * byte on step_fd when the step is over: the
 * connection is aborted, and the guard ends. If slurmstepd dies instead (SIGKILL),
 * the tasks it leaves keep the mount: it goes with the last process that uses it.
 */
static void guard_main(int step_fd, unsigned conn, const char *point_name)
{
	struct pollfd p = { .fd = step_fd, .events = POLLIN };
	unsigned long long switches = 0, seen_switches = 0;
	long waiter = 0, seen = 0;
	int killed = 0, stalled = 0, ready;
	struct stat self;
	char byte;

	if (stat("/proc/self/exe", &self) < 0)
		memset(&self, 0, sizeof(self));

	for (;;) {
		ready = poll(&p, 1, GUARD_TICK_MS);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready > 0 && p.fd >= 0) {
			if (read(p.fd, &byte, 1) == 1)
				break;
			close(p.fd);
			p.fd = -1;
		}
		if (p.fd < 0 && !any_in_mount(point_name, 0))
			break;
		killed = any_in_mount(point_name, 1) ? killed + 1 : 0;
		if (killed >= GUARD_KILLED_TICKS) {
			child_abort_fuse(conn);
			killed = 0;
		}
		/* The same task, before its exec, in the same request (no context switch since). */
		if (self.st_ino != 0 && pre_exec_waiter(point_name, &self, &waiter, &switches)) {
			stalled = waiter == seen && switches == seen_switches ? stalled + 1 : 1;
			seen = waiter;
			seen_switches = switches;
		} else {
			stalled = 0;
		}
		if (stalled > GUARD_STALL_TICKS) {
			child_abort_fuse(conn);
			stalled = 0;
		}
	}
	child_abort_fuse(conn);
	_exit(0);
}

/* The guard, started as root: 0 with the step's end of its pipe in *step_fd, or -1. */
static int start_guard(const struct fuse_mount *m, const char *point_name, int *step_fd)
{
	int pipe_fd[2];
	pid_t pid;

	if (pipe2(pipe_fd, O_CLOEXEC) < 0)
		return -1;
	pid = child_fork_detached();
	if (pid == 0) {
		struct child_setup s = { .out_fd = -1, .err_fd = -1, .pass = { pipe_fd[0], m->pin_fd }, .mntns_fd = -1,
					 .flags = CHILD_KEEP_IDS };
		char name[NAME_MAX + 1];
		int status;

		if (strlen(point_name) >= sizeof(name))
			_exit(126);
		memcpy(name, point_name, strlen(point_name) + 1);
		status = child_prepare(&s);
		if (status != 0)
			_exit(status);
		guard_main(3, m->conn, name);
	}
	close(pipe_fd[0]);
	if (pid < 0) {
		close(pipe_fd[1]);
		return -1;
	}
	*step_fd = pipe_fd[1];
	return 0;
}

int fuse_user_mounted(const struct file_id *file, uid_t uid)
{
	char line[3 * PATH_MAX], want[32], *dash, *type, *source, *options, *save;
	unsigned dev_major, dev_minor;
	int found = 0;
	FILE *f;

	if (uid == 0)
		return 0;
	snprintf(want, sizeof(want), "user_id=%u", (unsigned)uid);
	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return 0;
	/* ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS */
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%*u %*u %u:%u", &dev_major, &dev_minor) != 2 ||
		    dev_major != major((dev_t)file->dev) || dev_minor != minor((dev_t)file->dev) ||
		    (dash = strstr(line, " - ")) == NULL)
			continue;
		type = strtok_r(dash + 3, " \n", &save);
		source = type == NULL ? NULL : strtok_r(NULL, " \n", &save);
		options = source == NULL ? NULL : strtok_r(NULL, " \n", &save);
		if (options == NULL || strncmp(type, "fuse", 4) != 0)
			continue;
		for (char *o = strtok_r(options, ",", &save); o != NULL && !found; o = strtok_r(NULL, ",", &save))
			found = strcmp(o, want) == 0;
	}
	fclose(f);
	return found;
}

/*
 * The mounter did not say what it should have: the daemon's own words first (a bad image), else the
 * mounter's. FUSE_IMAGE_REPLACED when the daemon found another file than the one identified,
 * FUSE_CANCELLED when the step was cancelled meanwhile, else -1.
 */
static int mounter_error(const struct mounter_link *l, const struct message *msg, int daemon_err_fd, char *err,
			 size_t errlen)
{
	char daemon_err[256];

	if (l->cancelled) {
		snprintf(err, errlen, MOUNTER_CANCELLED_TEXT);
		return FUSE_CANCELLED;
	}
	daemon_err[0] = '\0';
	if (daemon_err_fd >= 0)
		child_read_capture(daemon_err_fd, daemon_err, sizeof(daemon_err));
	daemon_err[strcspn(daemon_err, "\n")] = '\0';
	if (strcmp(daemon_err, REPLACED_TEXT) == 0) {
		snprintf(err, errlen, "%s", daemon_err);
		return FUSE_IMAGE_REPLACED;
	}
	if (daemon_err[0] != '\0')
		snprintf(err, errlen, DAEMON ": %s", daemon_err);
	else if (msg->tag == 'e')
		snprintf(err, errlen, "%s", msg->text);
	else
		snprintf(err, errlen, "the mount did not finish within %d s", MOUNT_TIMEOUT_MS / 1000);
	return -1;
}

int fuse_mount_image(const char *daemon_bin, const char *image, const struct file_id *file, const char *user_dir,
		     const char *name, const struct pyxis_job *job, struct fuse_mount *m, char *err, size_t errlen)
{
	struct mounter mt = { .user_dir = user_dir, .name = name, .job = job->jobid, .step = job->stepid };
	struct daemon_args d = { .bin = daemon_bin, .image = image, .file = file, .fd = -1, .job = job };
	struct mounter_link link;
	int daemon_err_fd = -1;
	pid_t daemon;
	struct message msg;
	int rc = -1;

	if (mounter_start(&link, &mt, job, m, &msg, err, errlen) < 0) {
		if (err[0] == '\0')
			rc = mounter_error(&link, &msg, daemon_err_fd, err, errlen);
		goto fail;
	}
	/* The mount held, and its connection from the mounter's mount table, before anything can wait on it. */
	m->pin_fd = take_fd(&link, msg.pin);
	if (m->pin_fd < 0) {
		snprintf(err, errlen, "take the FUSE mount: %m");
		goto fail;
	}
	m->conn = mount_connection(link.child.pid, m->pin_fd);
	if (m->conn == 0) {
		snprintf(err, errlen, "the FUSE mount's connection: not found");
		goto fail;
	}
	if (start_guard(m, msg.text, &m->guard_fd) < 0) {
		snprintf(err, errlen, "start the mount's guard: %m");
		goto fail;
	}
	d.fd = take_fd(&link, msg.value);
	if (d.fd < 0) {
		snprintf(err, errlen, "take the FUSE descriptor: %m");
		goto fail;
	}
	/* Out of the step: the step's signals, and its end, are not the daemon's. */
	daemon_err_fd = memfd_create("pyxis-cache-fuse", MFD_CLOEXEC);
	daemon = daemon_err_fd < 0 ? -1 : child_fork_detached();
	if (daemon < 0) {
		snprintf(err, errlen, "start " DAEMON ": %m");
		goto fail;
	}
	if (daemon == 0)
		daemon_exec(&d, daemon_err_fd);
	m->daemon = daemon;
	m->daemon_pidfd = child_pidfd_open(daemon);
	close(d.fd);
	d.fd = -1;
	if (mounter_next(&link, &msg) != 'o') {
		rc = mounter_error(&link, &msg, daemon_err_fd, err, errlen);
		goto fail;
	}
	if (mounter_root(&msg, m, err, errlen) < 0)
		goto fail;
	/* The overlay over the mount is made: the daemon has answered FUSE_INIT. */
	set_read_ahead(m->conn);
	rc = 0;
fail:
	/* A mounter waiting for an answer that never comes does not die of SIGKILL: abort first. */
	if (rc < 0)
		child_abort_fuse(m->conn);
	mounter_end(&link);
	if (rc < 0) {
		fuse_release(m);
		mounter_forget_points(&mt);
	}
	if (mounter_give_back(&link) < 0 && rc == 0) {
		snprintf(err, errlen, "seteuid: %m");
		fuse_release(m);
		rc = -1;
	}
	if (daemon_err_fd >= 0)
		close(daemon_err_fd);
	if (d.fd >= 0)
		close(d.fd);
	return rc;
}

void fuse_release(struct fuse_mount *m)
{
	struct pollfd p = { .fd = m->daemon_pidfd, .events = POLLIN };

	/*
	 * Nothing of the step uses the mount any more: abort its connection while the
	 * namespace still holds it (a task's namespace kept open by the user would keep
	 * it, and the daemon, up), and let the guard go.
	 */
	if (m->mntns_fd >= 0)
		child_abort_fuse(m->conn);
	m->conn = 0;
	if (m->guard_fd >= 0) {
		ssize_t told = write(m->guard_fd, "x", 1); /* the step is over (or the guard is gone) */

		(void)told;
		close(m->guard_fd);
	}
	m->guard_fd = -1;
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
	/* Last: the connection's number is the mount's until here (its superblock goes with the last holder). */
	if (m->pin_fd >= 0)
		close(m->pin_fd);
	m->pin_fd = -1;
	/* The daemon (not our child: init reaps it) ends with its connection: half a second for it, no more. */
	if (m->daemon_pidfd >= 0 && poll(&p, 1, 500) == 1)
		m->daemon = -1;
	if (m->daemon_pidfd >= 0)
		close(m->daemon_pidfd);
	m->daemon_pidfd = -1;
}
