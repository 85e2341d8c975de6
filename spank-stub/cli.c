/*
 * The client of the pyxis-cache command: every call is
 * "<cli> <sub> --no-plugstack ... --set <key=value>..." with the plugin's own
 * plugstack arguments, so the command and the stub never disagree about the
 * configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "child.h"
#include "cli.h"

#define REUSE_ATTEMPTS 3

/* argv for "<cli> <sub> ... --set <key=value>..." (NULL-terminated, free()). */
static char **cli_argv(const struct plugin_context *ctx, const char *sub, const char *const *args, int nargs)
{
	char **argv;
	int n = 0;
	int i;

	argv = calloc(3 + nargs + 2 * ctx->ac + 1, sizeof(*argv));
	if (argv == NULL)
		goto done;
	argv[n++] = (char *)ctx->cfg.cli;
	argv[n++] = (char *)sub;
	argv[n++] = "--no-plugstack";
	for (i = 0; i < nargs; ++i)
		argv[n++] = (char *)args[i];
	for (i = 0; i < ctx->ac; ++i) {
		argv[n++] = "--set";
		argv[n++] = ctx->av[i];
	}
done:
	return argv;
}

/* Copy the JSON string value of "key" (no escapes expected) into buf. */
static int json_string(const char *json, const char *key, char *buf, size_t len)
{
	char pattern[64];
	const char *p;
	size_t n;
	int rc = -1;

	snprintf(pattern, sizeof(pattern), "\"%s\"", key);
	p = strstr(json, pattern);
	if (p == NULL)
		goto fail;
	p += strlen(pattern);
	p += strspn(p, " \t");
	if (*p++ != ':')
		goto fail;
	p += strspn(p, " \t");
	if (*p++ != '"')
		goto fail;
	n = strcspn(p, "\"\\");
	if (p[n] != '"' || n == 0 || n >= len)
		goto fail;
	memcpy(buf, p, n);
	buf[n] = '\0';
	rc = 0;
fail:
	return rc;
}

/* <base> root-owned and not writable by others, <base>/<uid> 0700 uid:gid. */
static int user_dir_ready(const struct plugin_context *ctx)
{
	char dir[PATH_MAX];
	struct stat st;

	if (lstat(ctx->cfg.data_path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/%u", ctx->cfg.data_path, (unsigned)ctx->job.uid) >= (int)sizeof(dir))
		return 0;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != ctx->job.uid || st.st_gid != ctx->job.gid ||
	    (st.st_mode & 07777) != 0700)
		return 0;
	return 1;
}

/*
 * When the directory is already exactly right there is nothing to repair, and
 * the step saves one start of the command.
 */
int cli_prepare(const struct plugin_context *ctx, char *err, size_t errlen)
{
	char uid[16], gid[16];
	const char *args[] = { "--uid", uid, "--gid", gid };
	struct child_output output;
	char **argv = NULL;
	int status;
	int rc = -1;

	if (user_dir_ready(ctx)) {
		rc = 0;
		goto fail;
	}
	snprintf(uid, sizeof(uid), "%u", (unsigned)ctx->job.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)ctx->job.gid);
	argv = cli_argv(ctx, "prepare", args, 4);
	if (argv == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": out of memory");
		goto fail;
	}
	status = child_exec(argv, NULL, "/", &output);
	if (status != 0) {
		child_error("prepare", status, &output, err, errlen);
		goto fail;
	}
	rc = 0;
fail:
	free(argv);
	return rc;
}

/*
 * "<cli> reuse --json" as the job user, then LOCK_SH on the entry's lock
 * file, held by slurmstepd until the step ends. A collector may remove the
 * entry between the reuse and the lock: then the file we locked is no longer
 * the one at that path, and we ask again.
 */
int cli_reuse(struct plugin_context *ctx, const char *image, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char uid[16], gid[16];
	const char *args[] = { "--image", image, "--uid", uid, "--gid", gid, "--json" };
	struct child_output output;
	char lock[PATH_MAX];
	struct stat locked, current;
	char **argv;
	int attempt;
	int status;
	int fd = -1;
	int rc = -1;

	snprintf(uid, sizeof(uid), "%u", (unsigned)ctx->job.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)ctx->job.gid);
	argv = cli_argv(ctx, "reuse", args, 7);
	if (argv == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": out of memory");
		goto fail;
	}

	for (attempt = 0; attempt < REUSE_ATTEMPTS; ++attempt) {
		status = child_exec(argv, &ctx->job, ctx->job.cwd, &output);
		if (status != 0) {
			child_error("reuse", status, &output, err, errlen);
			goto fail;
		}
		if (json_string(output.out, "path", c->rootfs, sizeof(c->rootfs)) < 0 ||
		    json_string(output.out, "lock", lock, sizeof(lock)) < 0 ||
		    json_string(output.out, "name", c->enroot_name, sizeof(c->enroot_name)) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": reuse: unexpected output: %.200s", output.out);
			goto fail;
		}

		fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT) {
			slurm_info(PLUGIN_NAME ": %s was removed before it was locked, retrying", lock);
			continue;
		}
		if (fd < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": %s: %m", lock);
			goto fail;
		}
		while (flock(fd, LOCK_SH) < 0) {
			if (errno != EINTR) {
				snprintf(err, errlen, PLUGIN_NAME ": flock %s: %m", lock);
				goto fail;
			}
		}
		if (fstat(fd, &locked) == 0 && stat(lock, &current) == 0 && locked.st_dev == current.st_dev &&
		    locked.st_ino == current.st_ino)
			break;
		slurm_info(PLUGIN_NAME ": %s was removed before it was locked, retrying", lock);
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: removed by a collector %d times in a row, giving up", image,
			 REUSE_ATTEMPTS);
		goto fail;
	}

	/* ENROOT_DATA_PATH is the entry's parent, <base>/<uid>. */
	snprintf(c->enroot_data, sizeof(c->enroot_data), "%s", c->rootfs);
	*strrchr(c->enroot_data, '/') = '\0';
	c->lock_fd = fd;
	fd = -1;
	rc = 0;
fail:
	if (fd >= 0)
		close(fd);
	free(argv);
	return rc;
}

/*
 * <base>/<uid>/.pyxis_cache_step_<job>.<step>.XXXXXX, the user's; cli_release
 * removes it. The directory stays locked (LOCK_SH) while the step runs, so
 * that the collector removes only the leftovers of steps that died.
 */
int cli_step_dir(struct plugin_context *ctx, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char dir[PATH_MAX];
	int rc = -1;

	if (c->step_dir[0] != '\0')
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/%u/.pyxis_cache_step_%u.%u.XXXXXX", ctx->cfg.data_path,
		     (unsigned)ctx->job.uid, ctx->job.jobid, ctx->job.stepid) >= (int)sizeof(dir) - 8) {
		snprintf(err, errlen, PLUGIN_NAME ": container_cache_data_path: path too long");
		goto fail;
	}
	if (mkdtemp(dir) == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": mkdtemp %s: %m", dir);
		goto fail;
	}
	strcpy(c->step_dir, dir);
	if (lchown(dir, ctx->job.uid, ctx->job.gid) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": chown %s: %m", dir);
		goto fail;
	}
	c->step_lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->step_lock_fd < 0 || flock(c->step_lock_fd, LOCK_SH) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": lock %s: %m", dir);
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

/* Unpack the image for this step only, as the job user, into <step_dir>/rootfs. */
int cli_step(struct plugin_context *ctx, const char *image, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char unsquashfs[PATH_MAX];
	char *argv[] = { unsquashfs, "-no-progress", "-no-xattrs", "-d", c->rootfs, (char *)image, NULL };
	struct child_output output;
	int status;
	int rc = -1;

	if (child_find_executable("unsquashfs", PYXIS_CACHE_PATH, unsquashfs, sizeof(unsquashfs)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": unsquashfs: not found in " PYXIS_CACHE_PATH);
		goto fail;
	}
	if (cli_step_dir(ctx, err, errlen) < 0)
		goto fail;
	strcpy(c->rootfs, c->step_dir);
	strcat(c->rootfs, "/rootfs");
	strcpy(c->enroot_data, c->step_dir);
	strcpy(c->enroot_name, "rootfs");

	status = child_exec(argv, &ctx->job, ctx->job.cwd, &output);
	if (status != 0) {
		child_error("unsquashfs", status, &output, err, errlen);
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* child_fn, as the job user: rm -rf that never follows symlinks or crosses mounts. */
static int remove_tree(void *arg)
{
	const char *dir = arg;

	nftw(dir, make_writable, 64, FTW_PHYS | FTW_MOUNT);
	nftw(dir, remove_one, 64, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
	if (access(dir, F_OK) == 0) {
		dprintf(STDERR_FILENO, "%s: couldn't remove everything\n", dir);
		return 1;
	}
	return 0;
}

void cli_release(struct plugin_context *ctx)
{
	struct container *c = &ctx->container;
	struct child_output output;
	int status;

	if (c->lock_fd >= 0) {
		close(c->lock_fd);
		c->lock_fd = -1;
	}
	if (c->step_dir[0] != '\0') {
		status = child_run(remove_tree, c->step_dir, &ctx->job, "/", &output);
		if (status != 0)
			slurm_error(PLUGIN_NAME ": couldn't remove %s: %s", c->step_dir, output.err);
		c->step_dir[0] = '\0';
	}
	if (c->step_lock_fd >= 0) {
		close(c->step_lock_fd);
		c->step_lock_fd = -1;
	}
}
