/*
 * The mounter's side of a cache-mode step's mounts, and the messages it and
 * slurmstepd exchange: fuse.c drives it for a cold step (lower: the FUSE mount),
 * layer_mount for a warm one (lower: the entry). No Slurm calls but cancel.c's
 * (found at run time: a wait ends when the step is cancelled).
 */
#ifndef PYXIS_CACHE_MOUNTER_H
#define PYXIS_CACHE_MOUNTER_H

#include <stdint.h>
#include <sys/types.h>

#include "child.h"
#include "layout.gen.h" /* MOUNT_PREFIX, TAIL_ALNUM */

#define DAEMON "squashfuse_ll"
/* How long the mounts may take (the first lookups wait for the daemon); less once the step is cancelled. */
#define MOUNT_TIMEOUT_MS (60 * 1000)
/* container_cache_layer_size's default (config.c, lib/config.ts): the tmpfs's size=. */
#define MOUNTER_LAYER_SIZE "1g"
/*
 * enroot's paths in the tmpfs (step.c), and its runtime directory in them, which the
 * mounter makes a mount point of its own: enroot walks ENROOT_RUNTIME_PATH up to the
 * nearest mount point, one `mountpoint` process per level (common::mountpoint).
 */
#define MOUNTER_ENROOT_DIR "enroot"
#define MOUNTER_ENROOT_RUNTIME MOUNTER_ENROOT_DIR "/runtime"

struct pyxis_job;
struct fuse_mount;

/* One message between slurmstepd and the mounter (shorter than PIPE_BUF: written whole). */
struct message {
	char tag;       /* u: namespaces made, g: go on, m: FUSE mounted, o: overlay mounted, e: error */
	int value;      /* m: the /dev/fuse descriptor (in the mounter) */
	int pin;        /* m: an O_PATH descriptor of the FUSE mount's root (in the mounter), -1: none */
	char text[512]; /* m: the mount point's name; e: what failed */
};

struct mounter {
	int in;  /* from slurmstepd */
	int out; /* to slurmstepd */
	const char *user_dir;
	const char *name;
	const char *lower; /* a warm step: the entry's rootfs, bound as the lower layer; NULL: a FUSE mount */
	const char *upper_dir; /* a named container: the name in user_dir of its kept upper and work; NULL: the tmpfs's */
	uint32_t job, step;
};

int send_message(int fd, char tag, int value, int pin, const char *text);

/* The next message, waiting at most timeout_ms (-1: no bound): 1 (tag 0 on end of file), or 0 on timeout (tag 0). */
int receive_message(int fd, int timeout_ms, struct message *msg);

/* In the forked child: the mounts, in steps slurmstepd allows with 'g'. Never returns. */
int mounter_main(const struct mounter *mt);

/* slurmstepd's side of one mounter: its process, the two pipes, and the effective uid to give back. */
struct mounter_link {
	struct child child;
	int to;   /* to the mounter */
	int from; /* from it */
	uid_t euid;
	int cancelled; /* a wait for its message ended because the step is cancelled (cancel.c) */
};

#define MOUNTER_LINK_INIT { .child = CHILD_INIT, .to = -1, .from = -1, .euid = 0, .cancelled = 0 }

/* What a mount that the step's cancel ended says (fuse.c, layer_mount). */
#define MOUNTER_CANCELLED_TEXT "the step was cancelled during the mount"

/*
 * Fork the mounter for mt as root (the id maps, /proc/<pid>/ns and pidfd_getfd need
 * root's own ids; mounter_give_back gives the effective uid back), write its namespace's
 * id maps, let it go on, and take its mount point, checked (ours, for this entry and
 * step): m->mntns_fd, m->point and m->rootfs are set, and the point is held
 * (LOCK_SH, m->lock_fd: the step is alive for gc and status); *msg holds the 'm' message.
 * 0, or -1: err says why, or is empty and *msg is the mounter's last message (tag 0:
 * none in time, or l->cancelled: the step was cancelled meanwhile, cancel.c). Call
 * mounter_end, then mounter_give_back, either way.
 */
int mounter_start(struct mounter_link *l, struct mounter *mt, const struct pyxis_job *job, struct fuse_mount *m,
		  struct message *msg, char *err, size_t errlen);

/* Let the mounter go on ('g') and return the tag of its next message (0: none in time, or l->cancelled). */
char mounter_next(struct mounter_link *l, struct message *msg);

/* The overlay's root from the mounter's 'o' message (m->root_dev, root_ino): 0, or -1 with err. */
int mounter_root(const struct message *msg, struct fuse_mount *m, char *err, size_t errlen);

/* Kill and reap the mounter, close the pipes. */
void mounter_end(struct mounter_link *l);

/*
 * After a failed mount, before mounter_give_back: the mount points of mt's entry and step
 * that the mounter made but was ended before it named them (a cancel, a timeout, its user
 * stopping it) are removed; only empty directories go (rmdir(2) follows no symlink).
 */
void mounter_forget_points(const struct mounter *mt);

/* Give back the effective uid mounter_start took: 0, or -1 (errno). */
int mounter_give_back(const struct mounter_link *l);

/* Write text to path (a /proc file: uid_map, setgroups, ...) in one write: 0, or -1 (errno). */
int write_whole(const char *path, const char *text);

/* The namespace's ids (by slurmstepd, as root): inside, 0 is the job user and group. */
int write_id_maps(pid_t pid, const struct pyxis_job *user);

/* The size= of every later mount's tmpfs (container_cache_layer_size, as tmpfs reads it). */
void mounter_set_layer_size(const char *size);

/*
 * A warm step's layer: in a user and mount namespace of the step's own (m->mntns_fd),
 * an overlay whose lower layer is the entry `lower` (read-only: never written) and
 * whose upper is in a tmpfs on <user_dir>/.pyxis_cache_mnt.<name>.<job>.<step>.XXXXXX
 * (m->point, locked); m->rootfs is the overlay, in that namespace only. Returns 0,
 * or -1 with one line in err (everything undone; fuse_release undoes it too),
 * FUSE_CANCELLED (fuse.h) when the step was cancelled while it waited for the mounter.
 */
int layer_mount(const char *lower, const char *user_dir, const char *name, const struct pyxis_job *job,
		struct fuse_mount *m, char *err, size_t errlen);

/*
 * layer_mount for a named container (named.c): the same, but the overlay's upper and
 * work directories are <user_dir>/<upper_dir>/upper and /work on the cache filesystem
 * (made by the mounter as the job user when absent), kept after the step.
 */
int named_layer_mount(const char *lower, const char *user_dir, const char *name, const char *upper_dir,
		      const struct pyxis_job *job, struct fuse_mount *m, char *err, size_t errlen);

#endif /* PYXIS_CACHE_MOUNTER_H */
