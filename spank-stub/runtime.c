/*
 * The runtimes that run a task inside a rootfs: bwrap (an unprivileged user
 * namespace mapping the user to itself) or enroot (start of a named container
 * under ENROOT_DATA_PATH). Only argv is built here; Slurm's own exec path
 * runs the result (see docs/srun.md, "Running the task in the rootfs").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common.h"
#include "runtime.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static void bwrap_prefix(const struct runtime_task *task, struct runtime_argv *prefix)
{
	const char **argv = prefix->argv;
	struct stat st;
	int n = 0;

	argv[n++] = task->runtime_bin;
	argv[n++] = "--die-with-parent";
	argv[n++] = "--bind";
	argv[n++] = task->rootfs;
	argv[n++] = "/";
	argv[n++] = "--proc";
	argv[n++] = "/proc";
	argv[n++] = "--dev";
	argv[n++] = "/dev";
	argv[n++] = "--tmpfs";
	argv[n++] = "/tmp";
	if (strcmp(task->home, "/") != 0 && stat(task->home, &st) == 0 && S_ISDIR(st.st_mode)) {
		argv[n++] = "--bind";
		argv[n++] = task->home;
		argv[n++] = task->home;
	}
	if (strcmp(task->cwd, "/") != 0) {
		argv[n++] = "--bind";
		argv[n++] = task->cwd;
		argv[n++] = task->cwd;
	}
	if (!task->writable) {
		argv[n++] = "--remount-ro";
		argv[n++] = "/";
	}
	argv[n++] = "--chdir";
	argv[n++] = task->cwd;
	argv[n++] = "--";
	prefix->argc = n;
}

static int enroot_prefix(const struct runtime_task *task, struct runtime_argv *prefix, char *err, size_t errlen)
{
	const char **argv = prefix->argv;
	int n = 0;
	int rc = -1;

	if (child_find_executable("env", prefix->env_bin, sizeof(prefix->env_bin)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": env: not found in " PYXIS_CACHE_PATH);
		goto fail;
	}
	snprintf(prefix->data, sizeof(prefix->data), "ENROOT_DATA_PATH=%s", task->enroot_data);
	snprintf(prefix->mount, sizeof(prefix->mount), "%s:%s", task->cwd, task->cwd);
	argv[n++] = prefix->env_bin;
	argv[n++] = prefix->data;
	argv[n++] = task->writable ? "ENROOT_ROOTFS_WRITABLE=y" : "ENROOT_ROOTFS_WRITABLE=n";
	argv[n++] = "ENROOT_MOUNT_HOME=y";
	argv[n++] = task->runtime_bin;
	argv[n++] = "start";
	if (strcmp(task->cwd, "/") != 0) {
		argv[n++] = "--mount";
		argv[n++] = prefix->mount;
	}
	argv[n++] = task->enroot_name;
	prefix->argc = n;
	rc = 0;
fail:
	return rc;
}

int runtime_prefix(const struct runtime_task *task, struct runtime_argv *prefix, char *err, size_t errlen)
{
	prefix->argc = 0;
	if (task->runtime == RUNTIME_BWRAP) {
		bwrap_prefix(task, prefix);
		return 0;
	}
	return enroot_prefix(task, prefix, err, errlen);
}

/* Append s to the script, single-quoted for /bin/sh. */
static void write_quoted(int fd, const char *s)
{
	dprintf(fd, " '");
	for (; *s != '\0'; ++s) {
		if (*s == '\'')
			dprintf(fd, "'\\''");
		else
			dprintf(fd, "%c", *s);
	}
	dprintf(fd, "'");
}

/*
 * The task's argv array can be changed in place but not grown, so argv[0]
 * becomes this script, which closes itself and execs
 * "<prefix...> <argv[0]> $@".
 */
int runtime_script(const struct runtime_argv *prefix, const char *argv0, char *path, size_t pathlen, char *err,
		   size_t errlen)
{
	int fd;
	int i;
	int rc = -1;

	fd = memfd_create("pyxis-cache-task", MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("pyxis-cache-task", 0);
	if (fd < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": memfd_create: %m");
		goto fail;
	}
	/* dash closes single-digit descriptors only; bash closes any. */
	if (fd <= 9 || access("/bin/bash", X_OK) < 0)
		dprintf(fd, "#!/bin/sh\n");
	else
		dprintf(fd, "#!/bin/bash\n");
	if (fd <= 9 || access("/bin/bash", X_OK) == 0)
		dprintf(fd, "exec %d<&-\n", fd);
	dprintf(fd, "exec");
	for (i = 0; i < prefix->argc; ++i)
		write_quoted(fd, prefix->argv[i]);
	write_quoted(fd, argv0);
	dprintf(fd, " \"$@\"\n");

	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	rc = 0;
fail:
	return rc;
}
