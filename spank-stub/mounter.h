/*
 * The mounter's side of a cold step's FUSE mount, and the messages it and
 * slurmstepd exchange (fuse.c drives it). No Slurm calls.
 */
#ifndef PYXIS_CACHE_MOUNTER_H
#define PYXIS_CACHE_MOUNTER_H

#include <stdint.h>
#include <sys/types.h>

#include "layout.gen.h" /* MOUNT_PREFIX, TAIL_ALNUM */

#define DAEMON "squashfuse_ll"
/* How long the mounts may take (the first lookups wait for the daemon). */
#define MOUNT_TIMEOUT_MS (60 * 1000)

struct pyxis_job;

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

int send_message(int fd, char tag, int value, const char *text);

/* The next message, waiting at most timeout_ms; tag 0 on end of file or timeout. */
void receive_message(int fd, int timeout_ms, struct message *msg);

/* In the forked child: the mounts, in steps slurmstepd allows with 'g'. Never returns. */
int mounter_main(const struct mounter *mt);

/* The namespace's ids (by slurmstepd, as root): inside, 0 is the job user and group. */
int write_id_maps(pid_t pid, const struct pyxis_job *user);

#endif /* PYXIS_CACHE_MOUNTER_H */
