/*
 * A cold step's rootfs: a squashfuse_ll mount of the image, made with the job
 * user's credentials in a user and mount namespace of the step's own (root
 * only opens /dev/fuse and writes the namespace's id maps). The entry's
 * creator runs meanwhile (cli_start_creator). See docs/srun.md, "Cold steps
 * start from a FUSE mount". No Slurm calls but cancel.c's (found at run time).
 */
#ifndef PYXIS_CACHE_FUSE_H
#define PYXIS_CACHE_FUSE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pyxis_job; /* context.h: who the mount is for, and where relative image paths resolve */

/* The image file that "reuse --no-wait" identified (cli.c; known = 0: a registry image, no file). */
struct file_id {
	unsigned long long dev, ino;
	int known;
};

struct fuse_mount {
	char point[PATH_MAX]; /* <user_dir>/.pyxis_cache_mnt.<name>.<job>.<step>.XXXXXX */
	char rootfs[PATH_MAX + 8]; /* <point>/root, in the mount namespace only */
	int lock_fd;           /* LOCK_SH on point: the step is alive (gc, status) */
	int mntns_fd;          /* the mount namespace holding the mounts */
	pid_t daemon;          /* squashfuse_ll, as the job user, out of the step */
	int daemon_pidfd;      /* readable once it exited */
	unsigned conn;         /* its FUSE connection (/sys/fs/fuse/connections/<conn>), 0: none */
	int pin_fd;            /* O_PATH on the FUSE mount's root: while held, conn is this mount's */
	int guard_fd;          /* the guard's pipe: closed, the guard aborts the connection and ends */
	dev_t root_dev;        /* the rootfs as the namespace sees it (it is another directory outside) */
	ino_t root_ino;
};

#define FUSE_MOUNT_INIT                                                                                    \
	{ .lock_fd = -1, .mntns_fd = -1, .daemon = -1, .daemon_pidfd = -1, .pin_fd = -1, .guard_fd = -1 }

/*
 * Whether a FUSE mount can be made here: 0, or -1 with why not in why
 * ("no /dev/fuse", "squashfuse_ll: not found in PATH", ...). On success the
 * daemon's path is in daemon_bin.
 */
int fuse_available(const char *search_path, char *daemon_bin, size_t len, char *why, size_t whylen);

/*
 * 1 when the file `file` names is on a FUSE filesystem the job user `uid` mounted
 * (user_id=<uid> in slurmstepd's mount table): its server could hold the daemon.
 */
int fuse_user_mounted(const struct file_id *file, uid_t uid);

/*
 * Mount image (relative: against job->cwd) read-only for the entry `name` of
 * user_dir (<base>/<uid>) and the step job->jobid.job->stepid, with a
 * per-step writable tmpfs over it (an overlay); m->rootfs is the rootfs in the
 * mount namespace m->mntns_fd. The daemon reads only the file `file` names
 * (NULL: no check, tests/fuse_mount). Returns 0, or -1 with one line in err
 * (everything undone); FUSE_IMAGE_REPLACED when image names a file other than
 * `file` (put there after the command identified it); FUSE_CANCELLED when the step
 * was cancelled while it waited for the mounter (cancel.c).
 */
#define FUSE_IMAGE_REPLACED (-2)
#define FUSE_CANCELLED (-3)
int fuse_mount_image(const char *daemon_bin, const char *image, const struct file_id *file, const char *user_dir,
		     const char *name, const struct pyxis_job *job, struct fuse_mount *m, char *err, size_t errlen);

/*
 * The step is over: abort the mount's FUSE connection, let its guard go, close
 * the namespace, the lock and the mount's pin, remove the (empty) mount point;
 * the daemon exits.
 */
void fuse_release(struct fuse_mount *m);

#endif /* PYXIS_CACHE_FUSE_H */
