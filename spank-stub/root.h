/*
 * What a step runs in: one value, filled once by whichever start decided it
 * (the entry itself, the step's own directory, or a mount: a warm step's layer,
 * a cold step's FUSE mount, a named container's layer), then read alike by the
 * runtime (runtime.c), the wait for the container (container.c) and
 * --container-save (save.c). No Slurm calls.
 */
#ifndef PYXIS_CACHE_ROOT_H
#define PYXIS_CACHE_ROOT_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "fuse.h"

struct step_root {
	char path[PATH_MAX];             /* the directory the container's / is; "" until filled */
	int mntns_fd;                    /* the mount namespace path is in (the mount's own, not closed here), or -1 */
	dev_t dev;                       /* path's device and inode as that namespace sees it */
	ino_t ino;
	char enroot_data[PATH_MAX];      /* enroot: ENROOT_DATA_PATH */
	char enroot_name[NAME_MAX + 1];  /* enroot: the container's name in it */
	char enroot_paths[PATH_MAX + 8]; /* enroot's other paths: a mount's tmpfs, or "" (the step's directory's) */
	int own;                         /* the step's own (a mount, its directory's copy): not a cached entry */
};

#define STEP_ROOT_INIT { .mntns_fd = -1 }

/*
 * Each returns 0, or -1 with one line in err (the path too long, or gone) and
 * *r left as it was.
 */

/* The entry itself, <user_dir>/<entry> (enroot: ENROOT_DATA_PATH its parent, the entry's name). */
int step_root_entry(struct step_root *r, const char *user_dir, const char *entry, char *err, size_t errlen);

/* A step directory's own copy, <step_dir>/rootfs (enroot: ENROOT_DATA_PATH the directory, name "rootfs"). */
int step_root_copy(struct step_root *r, const char *step_dir, char *err, size_t errlen);

/* A mount's overlay, <point>/root in its namespace (enroot: ENROOT_DATA_PATH <point>, name "root"). */
int step_root_mount(struct step_root *r, const struct fuse_mount *m, char *err, size_t errlen);

#endif /* PYXIS_CACHE_ROOT_H */
