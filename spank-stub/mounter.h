/*
 * The mounter's side of a cache-mode step's mounts, and the messages it and
 * slurmstepd exchange: fuse.c drives it for a cold step (lower: the FUSE mount),
 * layer_mount for a warm one (lower: the entry). No Slurm calls.
 */
#ifndef PYXIS_CACHE_MOUNTER_H
#define PYXIS_CACHE_MOUNTER_H

#include <stdint.h>
#include <sys/types.h>

#include "layout.gen.h" /* MOUNT_PREFIX, TAIL_ALNUM */

#define DAEMON "squashfuse_ll"
/* How long the mounts may take (the first lookups wait for the daemon). */
#define MOUNT_TIMEOUT_MS (60 * 1000)
/* container_cache_layer_size's default (config.c, lib/config.ts): the tmpfs's size=. */
#define MOUNTER_LAYER_SIZE "1g"

struct pyxis_job;
struct fuse_mount;

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
	const char *lower; /* a warm step: the entry's rootfs, bound as the lower layer; NULL: a FUSE mount */
	const char *upper_dir; /* a named container: the name in user_dir of its kept upper and work; NULL: the tmpfs's */
	uint32_t job, step;
};

int send_message(int fd, char tag, int value, const char *text);

/* The next message, waiting at most timeout_ms; tag 0 on end of file or timeout. */
void receive_message(int fd, int timeout_ms, struct message *msg);

/* In the forked child: the mounts, in steps slurmstepd allows with 'g'. Never returns. */
int mounter_main(const struct mounter *mt);

/* The namespace's ids (by slurmstepd, as root): inside, 0 is the job user and group. */
int write_id_maps(pid_t pid, const struct pyxis_job *user);

/* The size= of every later mount's tmpfs (container_cache_layer_size, as tmpfs reads it). */
void mounter_set_layer_size(const char *size);

/*
 * A warm step's layer: in a user and mount namespace of the step's own (m->mntns_fd),
 * an overlay whose lower layer is the entry `lower` (read-only: never written) and
 * whose upper is in a tmpfs on <user_dir>/.pyxis_cache_mnt.<name>.<job>.<step>.XXXXXX
 * (m->point, locked); m->rootfs is the overlay, in that namespace only. Returns 0,
 * or -1 with one line in err (everything undone; fuse_release undoes it too).
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
