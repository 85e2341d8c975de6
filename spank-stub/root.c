/*
 * What a step runs in (see root.h).
 */
#include <stdio.h>
#include <sys/stat.h>

#include "common.h"
#include "mounter.h"
#include "root.h"

/* <dir>/<name>, in slurmstepd's own namespace: its ids, as the runtime's process will see its root. */
static int fill_dir(struct step_root *r, const char *dir, const char *name, int own, char *err, size_t errlen)
{
	struct step_root n = { .mntns_fd = -1, .own = own };
	struct stat st;

	if (snprintf(n.path, sizeof(n.path), "%s/%s", dir, name) >= (int)sizeof(n.path) ||
	    snprintf(n.enroot_data, sizeof(n.enroot_data), "%s", dir) >= (int)sizeof(n.enroot_data) ||
	    snprintf(n.enroot_name, sizeof(n.enroot_name), "%s", name) >= (int)sizeof(n.enroot_name)) {
		snprintf(err, errlen, PLUGIN_NAME ": container_cache_data_path: path too long");
		return -1;
	}
	if (stat(n.path, &st) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: %m", n.path);
		return -1;
	}
	n.dev = st.st_dev;
	n.ino = st.st_ino;
	*r = n;
	return 0;
}

int step_root_entry(struct step_root *r, const char *user_dir, const char *entry, char *err, size_t errlen)
{
	return fill_dir(r, user_dir, entry, 0, err, errlen);
}

int step_root_copy(struct step_root *r, const char *step_dir, char *err, size_t errlen)
{
	return fill_dir(r, step_dir, "rootfs", 1, err, errlen);
}

int step_root_mount(struct step_root *r, const struct fuse_mount *m, char *err, size_t errlen)
{
	struct step_root n = { .mntns_fd = m->mntns_fd, .dev = m->root_dev, .ino = m->root_ino, .own = 1 };

	if (snprintf(n.path, sizeof(n.path), "%s", m->rootfs) >= (int)sizeof(n.path) ||
	    snprintf(n.enroot_paths, sizeof(n.enroot_paths), "%s/" MOUNTER_ENROOT_DIR, m->point) >=
		    (int)sizeof(n.enroot_paths)) {
		snprintf(err, errlen, PLUGIN_NAME ": the step's mount: path too long");
		return -1;
	}
	snprintf(n.enroot_data, sizeof(n.enroot_data), "%s", m->point);
	snprintf(n.enroot_name, sizeof(n.enroot_name), "root");
	*r = n;
	return 0;
}
