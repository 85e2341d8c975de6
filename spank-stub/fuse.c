/*
 * A cold step's rootfs from a squashfuse_ll mount of the image (see fuse.h and
 * docs/srun.md). Two processes besides slurmstepd:
 *
 *   the mounter  forked as root; unshares a user and a mount namespace, whose
 *                id maps slurmstepd writes (0 -> the job user); opens
 *                /dev/fuse there, becomes the job user (uid 0 inside) and
 *                makes every mount: a tmpfs on the mount point, the FUSE
 *                mount, an overlay with a writable tmpfs upper; then exits.
 *   the daemon   squashfuse_ll -f IMG /dev/fd/3, as the job user in the
 *                node's namespaces, on the descriptor slurmstepd takes from
 *                the mounter (pidfd_getfd). Outside the mount namespace, it
 *                ends by itself once nothing uses the mount any more.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "fuse.h"
#include "lock.h"

#define DAEMON "squashfuse_ll"
#define MOUNT_PREFIX ".pyxis_cache_mnt."
/* How long the mounts may take (the first lookups wait for the daemon). */
#define MOUNT_TIMEOUT_MS (60 * 1000)
#define UPPER_SIZE "size=64m"

/* One message between slurmstepd and the mounter (shorter than PIPE_BUF: written whole). */
struct message {
	char tag;       /* u: namespaces made, g: go on, m: FUSE mounted, o: overlay mounted, e: error */
	int value;      /* m: the /dev/fuse descriptor (in the mounter) */
	char text[512]; /* m: the mount point's name; e: what failed */
};

struct mounter {
	int in;  /* from slurmstepd */
	int out; /* to slurmstepd */
	const char *user_dir;
	const char *name;
	uint32_t job, step;
};

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

static int send_message(int fd, char tag, int value, const char *text)
{
	struct message msg = { .tag = tag, .value = value };

	if (text != NULL)
		snprintf(msg.text, sizeof(msg.text), "%s", text);
	return write(fd, &msg, sizeof(msg)) == sizeof(msg) ? 0 : -1;
}

/* The next message, waiting at most timeout_ms; tag 0 on end of file or timeout. */
static void receive_message(int fd, int timeout_ms, struct message *msg)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	memset(msg, 0, sizeof(*msg));
	while (poll(&p, 1, timeout_ms) < 0)
		if (errno != EINTR)
			return;
	if (!(p.revents & (POLLIN | POLLHUP)))
		return;
	do
		n = read(fd, msg, sizeof(*msg));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(*msg))
		msg->tag = 0;
	msg->text[sizeof(msg->text) - 1] = '\0';
}

static void mounter_fail(const struct mounter *mt, const char *what)
{
	char text[512];

	snprintf(text, sizeof(text), "%s: %s", what, strerror(errno));
	send_message(mt->out, 'e', errno, text);
	_exit(1);
}

static int wait_go(const struct mounter *mt)
{
	struct message msg;

	receive_message(mt->in, -1, &msg);
	return msg.tag == 'g' ? 0 : -1;
}

/* The mounter's part, in the forked child (root until it becomes the user). */
static int mounter_main(const struct mounter *mt)
{
	char point[PATH_MAX], lower[PATH_MAX + 8], upper[PATH_MAX + 8], work[PATH_MAX + 8], root[PATH_MAX + 8];
	char options[3 * PATH_MAX + 64];
	struct stat st;
	int fd;

	/* All root first (user_init leaves slurmstepd's effective ids the job user's). */
	if (child_become(NULL) < 0)
		mounter_fail(mt, "become root");
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		mounter_fail(mt, "unshare a user and mount namespace");
	send_message(mt->out, 'u', 0, NULL);
	if (wait_go(mt) < 0)
		_exit(1);
	/* Still kernel uid 0, the device's owner; the mount wants a descriptor opened in this namespace. */
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		mounter_fail(mt, "/dev/fuse");
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		mounter_fail(mt, "become the job user in the namespace");
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	if (snprintf(point, sizeof(point), "%s/" MOUNT_PREFIX "%s.%u.%u.XXXXXX", mt->user_dir, mt->name, mt->job,
		     mt->step) >= (int)sizeof(point)) {
		errno = ENAMETOOLONG;
		mounter_fail(mt, "mount point");
	}
	if (mkdtemp(point) == NULL)
		mounter_fail(mt, "mkdtemp");
	snprintf(lower, sizeof(lower), "%s/lower", point);
	snprintf(upper, sizeof(upper), "%s/upper", point);
	snprintf(work, sizeof(work), "%s/work", point);
	snprintf(root, sizeof(root), "%s/root", point);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		mounter_fail(mt, "make / private");
	if (mount("pyxis-cache", point, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700," UPPER_SIZE) < 0)
		mounter_fail(mt, "mount a tmpfs");
	if (mkdir(lower, 0755) < 0 || mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(root, 0755) < 0)
		mounter_fail(mt, "mkdir");
	snprintf(options, sizeof(options), "fd=%d,rootmode=40000,user_id=0,group_id=0,default_permissions", fd);
	if (mount("squashfuse", lower, "fuse." DAEMON, MS_RDONLY | MS_NOSUID | MS_NODEV, options) < 0)
		mounter_fail(mt, "mount fuse." DAEMON);
	send_message(mt->out, 'm', fd, strrchr(point, '/') + 1);
	if (wait_go(mt) < 0)
		_exit(1);
	/*
	 * The daemon holds its copy now. Ours would keep the connection up if the daemon
	 * exits (an image it cannot read): the lookups below would wait until the timeout.
	 */
	close(fd);
	/* The rootfs's top as in an entry: the image's mode, writable by its owner (the user). */
	if (stat(lower, &st) < 0)
		mounter_fail(mt, "the image's root");
	if (chmod(upper, (st.st_mode & 07777) | 0200) < 0)
		mounter_fail(mt, "chmod");
	snprintf(options, sizeof(options), "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work);
	if (mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, options) < 0 || stat(root, &st) < 0)
		mounter_fail(mt, "mount an overlay");
	snprintf(options, sizeof(options), "%llu %llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	send_message(mt->out, 'o', 0, options);
	_exit(0);
}

static int write_file(pid_t pid, const char *file, const char *text)
{
	char path[64];
	int fd;
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) == (ssize_t)strlen(text))
		rc = 0;
	close(fd);
	return rc;
}

/* The namespace's ids: inside, 0 is the job user and group, and nothing else exists. */
static int write_id_maps(pid_t pid, const struct pyxis_job *user)
{
	char map[64];

	snprintf(map, sizeof(map), "0 %u 1", (unsigned)user->uid);
	if (write_file(pid, "uid_map", map) < 0 || write_file(pid, "setgroups", "deny") < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)user->gid);
	return write_file(pid, "gid_map", map);
}

struct daemon_args {
	const char *bin;
	const char *image;
	int fd; /* the /dev/fuse descriptor, taken from the mounter */
	const struct pyxis_job *job;
};

static void daemon_exec(const struct daemon_args *d, int err_fd)
{
	char *argv[] = { DAEMON, "-f", (char *)d->image, "/dev/fd/3", NULL };
	char path_env[] = "PATH=/usr/local/bin:/usr/bin:/bin";
	char *envp[] = { path_env, NULL };

	if (child_reset(-1, err_fd) < 0 || dup2(d->fd, 3) < 0)
		_exit(126);
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
