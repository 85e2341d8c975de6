/*
 * The mounter (see fuse.c, and layer_mount below): forked as root by slurmstepd,
 * it unshares a user and a mount namespace, whose id maps slurmstepd writes
 * (0 -> the job user); opens /dev/fuse there (a cold step), becomes the job user
 * (uid 0 inside) and makes every mount: a tmpfs on the mount point, the lower
 * layer (the FUSE mount, or a warm step's entry bound read-only), an overlay with
 * a writable upper in that tmpfs; then exits. It and slurmstepd talk in struct
 * message over two pipes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "child.h"
#include "context.h"
#include "lock.h"
#include "mounter.h"

/* The tmpfs's size= (container_cache_layer_size): the step's layer and enroot's own paths. */
static char layer_size[32] = MOUNTER_LAYER_SIZE;

void mounter_set_layer_size(const char *size)
{
	snprintf(layer_size, sizeof(layer_size), "%s", size);
}

int send_message(int fd, char tag, int value, int pin, const char *text)
{
	struct message msg = { .tag = tag, .value = value, .pin = pin };

	if (text != NULL)
		snprintf(msg.text, sizeof(msg.text), "%s", text);
	return write(fd, &msg, sizeof(msg)) == sizeof(msg) ? 0 : -1;
}

int receive_message(int fd, int timeout_ms, struct message *msg)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int ready;

	memset(msg, 0, sizeof(*msg));
	while ((ready = poll(&p, 1, timeout_ms)) < 0)
		if (errno != EINTR)
			return 1;
	if (ready == 0)
		return 0;
	if (!(p.revents & (POLLIN | POLLHUP)))
		return 1;
	do
		n = read(fd, msg, sizeof(*msg));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(*msg))
		msg->tag = 0;
	msg->text[sizeof(msg->text) - 1] = '\0';
	return 1;
}

/*
 * slurmstepd's side: the mounter's next message within MOUNT_TIMEOUT_MS (tag 0: none),
 * or none as soon as the step is cancelled (cancel.c: slurmctld is asked every
 * CANCEL_LOOK_SECONDS; Slurm signals nothing of a step in user_init, so the user's
 * stopped mounter, or its mount held in a request, would keep the step, and the
 * node completing, for the whole bound).
 */
static void mounter_receive(struct mounter_link *l, struct message *msg)
{
	long long started = child_now_ms(), left;

	for (;;) {
		left = started + MOUNT_TIMEOUT_MS - child_now_ms();
		if (left <= 0) {
			memset(msg, 0, sizeof(*msg));
			return;
		}
		if (receive_message(l->from, left < 1000 ? (int)left : 1000, msg))
			return;
		if (cancel_requested(child_now_ms() - started)) {
			l->cancelled = 1;
			return;
		}
	}
}

static void mounter_fail(const struct mounter *mt, const char *what)
{
	char text[512];

	snprintf(text, sizeof(text), "%s: %s", what, strerror(errno));
	send_message(mt->out, 'e', errno, -1, text);
	_exit(1);
}

static int wait_go(const struct mounter *mt)
{
	struct message msg;

	receive_message(mt->in, -1, &msg);
	return msg.tag == 'g' ? 0 : -1;
}

/* The mounter's part, in the forked child (root until it becomes the user). */
int mounter_main(const struct mounter *mt)
{
	char point[PATH_MAX], lower[PATH_MAX + 8], upper[2 * PATH_MAX + 8], work[2 * PATH_MAX + 8], root[PATH_MAX + 8];
	char runtime[PATH_MAX + 32];
	char options[6 * PATH_MAX + 64];
	struct stat st;
	int fd, pin;

	/* All root already (child_prepare: user_init leaves slurmstepd's effective ids the job user's). */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		mounter_fail(mt, "unshare a user and mount namespace");
	send_message(mt->out, 'u', 0, -1, NULL);
	if (wait_go(mt) < 0)
		_exit(1);
	/* Still kernel uid 0, the device's owner; the mount wants a descriptor opened in this namespace. */
	fd = mt->lower != NULL ? -1 : open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0 && mt->lower == NULL)
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
	snprintf(options, sizeof(options), "mode=0700,size=%s", layer_size);
	if (mount("pyxis-cache", point, "tmpfs", MS_NOSUID | MS_NODEV, options) < 0)
		mounter_fail(mt, "mount a tmpfs");
	if (mkdir(lower, 0755) < 0 || mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(root, 0755) < 0)
		mounter_fail(mt, "mkdir");
	/* enroot's runtime directory, a mount point (a bind of itself): its walk stops there. */
	snprintf(runtime, sizeof(runtime), "%s/" MOUNTER_ENROOT_DIR, point);
	if (mkdir(runtime, 0700) < 0)
		mounter_fail(mt, "mkdir");
	snprintf(runtime, sizeof(runtime), "%s/" MOUNTER_ENROOT_RUNTIME, point);
	if (mkdir(runtime, 0700) < 0 || mount(runtime, runtime, NULL, MS_BIND, NULL) < 0)
		mounter_fail(mt, "make enroot's runtime directory");
	if (mt->upper_dir != NULL) {
		/*
		 * A named container (named.c): its upper and work directories are kept in
		 * <user_dir>/<upper_dir> on the cache filesystem, made here as the job user
		 * the first time, so that what its steps write outlives each of them.
		 */
		snprintf(upper, sizeof(upper), "%s/%s/upper", mt->user_dir, mt->upper_dir);
		snprintf(work, sizeof(work), "%s/%s/work", mt->user_dir, mt->upper_dir);
		if ((mkdir(upper, 0755) < 0 && errno != EEXIST) || (mkdir(work, 0700) < 0 && errno != EEXIST))
			mounter_fail(mt, "mkdir the named container's layer");
	}
	if (mt->lower != NULL) {
		/*
		 * A warm step: the entry, bound where a cold step has its FUSE mount. An overlay
		 * never writes to a lower layer: every write lands in the upper, in the tmpfs.
		 */
		if (mount(mt->lower, lower, NULL, MS_BIND, NULL) < 0)
			mounter_fail(mt, "bind the entry");
		send_message(mt->out, 'm', -1, -1, strrchr(point, '/') + 1);
		if (wait_go(mt) < 0)
			_exit(1);
	} else {
		snprintf(options, sizeof(options), "fd=%d,rootmode=40000,user_id=0,group_id=0,default_permissions", fd);
		if (mount("squashfuse", lower, "fuse." DAEMON, MS_RDONLY | MS_NOSUID | MS_NODEV, options) < 0)
			mounter_fail(mt, "mount fuse." DAEMON);
		/*
		 * The mount itself, for slurmstepd and the guard to hold: an O_PATH open asks
		 * the daemon nothing (it is not started yet). Removing the mount point from
		 * outside the namespace (fuse_release, gc, the user) detaches the mounts; a
		 * holder keeps the superblock, so the connection's number is not reused.
		 */
		pin = open(lower, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (pin < 0)
			mounter_fail(mt, "hold the FUSE mount");
		send_message(mt->out, 'm', fd, pin, strrchr(point, '/') + 1);
		if (wait_go(mt) < 0)
			_exit(1);
		/*
		 * The daemon holds its copy now. Ours would keep the connection up if the daemon
		 * exits (an image it cannot read): the lookups below would wait until the timeout.
		 */
		close(fd);
	}
	/* The rootfs's top as in an entry: the image's mode, writable by its owner (the user). */
	if (stat(lower, &st) < 0)
		mounter_fail(mt, "the image's root");
	if (chmod(upper, (st.st_mode & 07777) | 0200) < 0)
		mounter_fail(mt, "chmod");
	snprintf(options, sizeof(options), "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work);
	if (mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, options) < 0 || stat(root, &st) < 0)
		mounter_fail(mt, "mount an overlay");
	snprintf(options, sizeof(options), "%llu %llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	send_message(mt->out, 'o', 0, -1, options);
	_exit(0);
}

int write_whole(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int rc = -1;

	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) == (ssize_t)strlen(text))
		rc = 0;
	close(fd);
	return rc;
}

static int write_file(pid_t pid, const char *file, const char *text)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return write_whole(path, text);
}

/* The namespace's ids: inside, 0 is the job user and group, and nothing else exists. */
int write_id_maps(pid_t pid, const struct pyxis_job *user)
{
	char map[64];

	snprintf(map, sizeof(map), "0 %u 1", (unsigned)user->uid);
	if (write_file(pid, "uid_map", map) < 0 || write_file(pid, "setgroups", "deny") < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)user->gid);
	return write_file(pid, "gid_map", map);
}

/* A mount point name of ours for this entry and step, nothing else. */
static int valid_point(const char *text, const char *name, uint32_t job, uint32_t step)
{
	char prefix[NAME_MAX + 64];
	size_t n;

	n = (size_t)snprintf(prefix, sizeof(prefix), MOUNT_PREFIX "%s.%u.%u.", name, job, step);
	return strncmp(text, prefix, n) == 0 && strlen(text) == n + TAIL_ALNUM && strchr(text, '/') == NULL;
}

int mounter_start(struct mounter_link *l, struct mounter *mt, const struct pyxis_job *job, struct fuse_mount *m,
		  struct message *msg, char *err, size_t errlen)
{
	int to[2] = { -1, -1 }, from[2] = { -1, -1 };
	char path[64];
	int locked;

	*l = (struct mounter_link)MOUNTER_LINK_INIT;
	*m = (struct fuse_mount)FUSE_MOUNT_INIT;
	memset(msg, 0, sizeof(*msg));
	err[0] = '\0';
	l->euid = geteuid();
	if (l->euid != 0 && seteuid(0) < 0) {
		snprintf(err, errlen, "seteuid: %m");
		return -1;
	}
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %m");
		goto fail;
	}
	l->child.pid = fork();
	if (l->child.pid < 0) {
		snprintf(err, errlen, "fork: %m");
		goto fail;
	}
	if (l->child.pid == 0) {
		/* Root for good (user NULL), the two pipes as 3 and 4, nothing else of slurmstepd's. */
		struct child_setup s = CHILD_SETUP_INIT;
		int status;

		s.pass[0] = to[0];
		s.pass[1] = from[1];
		status = child_prepare(&s);
		if (status != 0)
			_exit(status);
		mt->in = 3;
		mt->out = 4;
		_exit(mounter_main(mt));
	}
	close(to[0]);
	close(from[1]);
	l->to = to[1];
	l->from = from[0];
	to[1] = from[0] = -1;

	mounter_receive(l, msg);
	if (msg->tag != 'u')
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)l->child.pid);
	m->mntns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->mntns_fd < 0 || write_id_maps(l->child.pid, job) < 0) {
		snprintf(err, errlen, "the mount's namespace: %m");
		return -1;
	}
	if (mounter_next(l, msg) != 'm')
		return -1;
	if (!valid_point(msg->text, mt->name, mt->job, mt->step)) {
		snprintf(err, errlen, "unexpected mount point from the mounter");
		return -1;
	}
	snprintf(m->point, sizeof(m->point), "%s/%s", mt->user_dir, msg->text);
	snprintf(m->rootfs, sizeof(m->rootfs), "%s/root", m->point);
	/* The step is alive for gc and status: its mount point is held while it runs. */
	locked = lock_shared(m->point, O_DIRECTORY, job->uid, &m->lock_fd, err, errlen);
	if (locked == 0)
		snprintf(err, errlen, "%s was removed before it was locked", m->point);
	return locked > 0 ? 0 : -1;
fail:
	for (int i = 0; i < 2; ++i) {
		if (to[i] >= 0)
			close(to[i]);
		if (from[i] >= 0)
			close(from[i]);
	}
	return -1;
}

char mounter_next(struct mounter_link *l, struct message *msg)
{
	send_message(l->to, 'g', 0, -1, NULL);
	mounter_receive(l, msg);
	return msg->tag;
}

int mounter_root(const struct message *msg, struct fuse_mount *m, char *err, size_t errlen)
{
	unsigned long long dev = 0, ino = 0;

	if (sscanf(msg->text, "%llu %llu", &dev, &ino) != 2) {
		snprintf(err, errlen, "unexpected reply from the mounter");
		return -1;
	}
	m->root_dev = (dev_t)dev;
	m->root_ino = (ino_t)ino;
	return 0;
}

void mounter_end(struct mounter_link *l)
{
	child_end(&l->child);
	if (l->to >= 0)
		close(l->to);
	if (l->from >= 0)
		close(l->from);
	l->to = l->from = -1;
}

void mounter_forget_points(const struct mounter *mt)
{
	/* <base>/<uid> is the user's, in root's <base>: the user cannot put a symlink in its place. */
	int fd = open(mt->user_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (valid_point(e->d_name, mt->name, mt->job, mt->step))
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	closedir(d);
}

int mounter_give_back(const struct mounter_link *l)
{
	return l->euid != 0 && seteuid(l->euid) < 0 ? -1 : 0;
}

/* Lay the step's layer over lower: the mounter's steps without FUSE, no daemon, no guard. */
static int layer_mount_upper(const char *lower, const char *user_dir, const char *name, const char *upper_dir,
			     const struct pyxis_job *job, struct fuse_mount *m, char *err, size_t errlen)
{
	struct mounter mt = { .user_dir = user_dir, .name = name, .lower = lower, .upper_dir = upper_dir,
			      .job = job->jobid, .step = job->stepid };
	struct mounter_link link;
	struct message msg;
	int rc = -1;

	if (mounter_start(&link, &mt, job, m, &msg, err, errlen) < 0)
		goto failed;
	if (mounter_next(&link, &msg) != 'o')
		goto failed;
	if (mounter_root(&msg, m, err, errlen) < 0)
		goto fail;
	rc = 0;
	goto fail;
failed:
	if (err[0] == '\0' && msg.tag == 'e')
		snprintf(err, errlen, "%s", msg.text);
	else if (err[0] == '\0' && link.cancelled)
		snprintf(err, errlen, MOUNTER_CANCELLED_TEXT);
	else if (err[0] == '\0')
		snprintf(err, errlen, "the mounter did not finish within %d s", MOUNT_TIMEOUT_MS / 1000);
	if (link.cancelled)
		rc = FUSE_CANCELLED;
fail:
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
	return rc;
}

int layer_mount(const char *lower, const char *user_dir, const char *name, const struct pyxis_job *job,
		struct fuse_mount *m, char *err, size_t errlen)
{
	return layer_mount_upper(lower, user_dir, name, NULL, job, m, err, errlen);
}

int named_layer_mount(const char *lower, const char *user_dir, const char *name, const char *upper_dir,
		      const struct pyxis_job *job, struct fuse_mount *m, char *err, size_t errlen)
{
	return layer_mount_upper(lower, user_dir, name, upper_dir, job, m, err, errlen);
}
