/*
 * Named containers (see named.h and docs/pyxis.md, "Named containers").
 *
 * <base>/<uid>/.pyxis_cache_named.<job>.<hex of NAME>/ (container_scope=job) or
 * .pyxis_cache_named.g.<hex of NAME>/ (global), the job user's, holds
 *   upper/, work/   the overlay's upper layer and work directory, over the entry
 *   entry           the name of the entry it sits on (pyxis_cache_u<uid>_<20 hex>)
 * slurmstepd holds LOCK_EX on the directory while a step uses it: one step at a
 * time mounts the upper layer (an overlay's upper mounted twice is undefined),
 * and the collector leaves a locked one alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "args.h"
#include "attach.h"
#include "cli.h"
#include "lock.h"
#include "log.h"
#include "mounter.h"
#include "named.h"

#define RECORD "entry"
/* How long a step waits for the previous step of the name to let go (its slurmstepd's exit). */
#define NAMED_WAIT_SECONDS 60

/* .pyxis_cache_named.<job>|g.<hex>: the name hex-encoded, so that any byte but '/' is fine. */
int named_dir_name(const struct plugin_context *ctx, const char *container, char *buf, size_t len)
{
	const unsigned char *name = (const unsigned char *)container;
	size_t n;

	if (ctx->cfg.pyxis.container_scope == SCOPE_JOB)
		n = (size_t)snprintf(buf, len, NAMED_PREFIX "%u.", (unsigned)ctx->job.jobid);
	else
		n = (size_t)snprintf(buf, len, NAMED_PREFIX "g.");
	for (; *name != '\0' && n + 3 <= len; ++name, n += 2)
		snprintf(buf + n, len - n, "%02x", *name);
	return *name == '\0' && n < len ? 0 : -1;
}

/* The entry the container sits on: 1 with its name, 0 when there is no record (never made). */
static int read_record(int dirfd, uid_t uid, char *name, size_t len)
{
	char text[NAME_MAX + 2], prefix[32];
	struct stat st;
	ssize_t n;
	size_t i, plen;
	int fd;

	fd = openat(dirfd, RECORD, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	/* The user's file: a regular one, read once, and only an entry name of theirs counts. */
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, text, sizeof(text) - 1) : -1;
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	text[strcspn(text, "\n")] = '\0';
	plen = (size_t)snprintf(prefix, sizeof(prefix), ENTRY_PREFIX "%u_", (unsigned)uid);
	if (strncmp(text, prefix, plen) != 0 || strlen(text) != plen + HASH_HEX || strlen(text) >= len)
		return 0;
	for (i = plen; i < plen + 20; ++i)
		if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
			return 0;
	strcpy(name, text);
	return 1;
}

static int write_record(int dirfd, const char *name)
{
	char text[NAME_MAX + 2];
	int fd, n, rc = -1;

	fd = openat(dirfd, RECORD, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return -1;
	n = snprintf(text, sizeof(text), "%s\n", name);
	if (write(fd, text, (size_t)n) == n)
		rc = 0;
	close(fd);
	return rc;
}

/* The recorded entry, locked as cli_reuse locks it: 1, 0 when it is gone (evicted), -1 on error. */
static int lock_entry(struct plugin_context *ctx, const char *name, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char lock[PATH_MAX];

	snprintf(c->entry, sizeof(c->entry), "%s", name);
	if (cli_user_path(ctx, name, LOCK_FILE, lock, sizeof(lock)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": container_cache_data_path: path too long");
		return -1;
	}
	if (lock_shared(lock, 0, ctx->job.uid, &c->lock_fd, err, errlen) < 0)
		return -1;
	return c->lock_fd < 0 ? 0 : 1;
}

/*
 * The directory, made as the job user (user_init's effective ids) and locked
 * exclusively. "exec" asks for a running container: it does not wait.
 */
static int open_locked(struct plugin_context *ctx, const char *path, int wait, int *busy, char *err, size_t errlen)
{
	struct stat st, now;
	int fd;

	*busy = 0;
again:
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s: %m", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != ctx->job.uid) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s: %s", path,
			 fd < 0 ? strerror(errno) : "not the job user's directory");
		goto fail;
	}
	if ((wait ? lock_wait(fd, LOCK_EX, NAMED_WAIT_SECONDS) : flock(fd, LOCK_EX | LOCK_NB)) < 0) {
		if (errno != EWOULDBLOCK) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-name: flock %s: %s", path,
				 errno == EINTR || errno == ECANCELED ? "the step is cancelled" : strerror(errno));
			goto fail;
		}
		*busy = 1;
		snprintf(err, errlen,
			 PLUGIN_NAME ": --container-name: %s is in use by a running step (steps that start a "
				     "named container run one at a time; one that attaches to it does not wait)",
			 container_args.name);
		goto fail;
	}
	/* Removed while we waited (a first step of the name that failed, named_start): make it again. */
	if (lstat(path, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
		close(fd);
		goto again;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

int named_start(struct plugin_context *ctx, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	const char *flags = container_args.name_flags, *image = container_args.image;
	char path[PATH_MAX], lower[PATH_MAX], recorded[64], why[ERROR_MAX];
	int exists, busy, locked, fd;

	mounter_set_layer_size(ctx->cfg.layer_size);
	if (named_dir_name(ctx, container_args.name, c->named_dir, sizeof(c->named_dir)) < 0 ||
	    cli_user_path(ctx, c->named_dir, NULL, path, sizeof(path)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: path too long");
		return -1;
	}
	fd = open_locked(ctx, path, strcmp(flags, "exec") != 0, &busy, err, errlen);
	if (fd < 0)
		return -1;
	/* The steps attached to the previous step of the name still use its layer: they end first. */
	if (attach_wait_detached(fd, container_args.name, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	exists = read_record(fd, ctx->job.uid, recorded, sizeof(recorded));
	/* pyxis's flags and messages (pyxis_slurmstepd.c, user_init). */
	if (strcmp(flags, "create") == 0 && exists) {
		snprintf(err, errlen,
			 PLUGIN_NAME ": error: \"create\" flag was passed to --container-name but the container already exists");
		goto fail;
	}
	if (strcmp(flags, "exec") == 0) {
		snprintf(err, errlen,
			 PLUGIN_NAME ": error: \"exec\" flag was passed to --container-name but the container is not running");
		goto fail;
	}
	if (!exists && image == NULL) {
		snprintf(err, errlen,
			 PLUGIN_NAME ": error: a container with name \"%s\" does not exist, and --container-image is not set",
			 container_args.name);
		goto fail;
	}
	if (exists) {
		/* As pyxis: an existing container is used, and the image (if any) is not imported again. */
		locked = lock_entry(ctx, recorded, err, errlen);
		if (locked < 0)
			goto fail;
		if (locked == 0) {
			/* Evicted between the steps: made again from the image, if that is its image. */
			if (image == NULL) {
				snprintf(err, errlen,
					 PLUGIN_NAME ": --container-name: %s: its image (%s) was removed from the cache: "
						     "give --container-image again",
					 container_args.name, recorded);
				goto fail;
			}
			if (cli_reuse(ctx, image, NULL, err, errlen) < 0)
				goto fail;
			if (strcmp(c->entry, recorded) != 0) {
				snprintf(err, errlen,
					 PLUGIN_NAME ": --container-name: %s: its image (%s) was removed from the cache, "
						     "and %s is another image",
					 container_args.name, recorded, image);
				goto fail;
			}
		}
		pyxis_info(PLUGIN_NAME ": reusing existing container filesystem: %s", container_args.name);
	} else if (cli_reuse(ctx, image, NULL, err, errlen) < 0) {
		/* The first step of the name: its entry, made (or waited for) as without FUSE. */
		goto fail;
	}
	if (cli_user_path(ctx, c->entry, NULL, lower, sizeof(lower)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: path too long");
		goto fail;
	}
	if (named_layer_mount(lower, ctx->user_dir, c->entry, c->named_dir, &ctx->job, &c->fuse, why, sizeof(why)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: the container's layer over %s failed (%s)",
			 c->entry, why);
		goto fail;
	}
	if (!exists && write_record(fd, c->entry) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s/" RECORD ": %m", path);
		goto fail;
	}
	if (step_root_mount(&c->root, &c->fuse, why, sizeof(why)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: path too long");
		goto fail;
	}
	futimens(fd, NULL);
	c->named_fd = fd;
	return 0;
fail:
	/*
	 * What is mounted or locked goes at exit, as for any step (step_teardown). A name
	 * that did not exist leaves nothing behind (what the mounter made is empty).
	 */
	if (!exists && c->fuse.mntns_fd < 0) {
		unlinkat(fd, "upper", AT_REMOVEDIR);
		unlinkat(fd, "work", AT_REMOVEDIR);
		unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
	}
	close(fd);
	return -1;
}

void named_release(struct container *c)
{
	if (c->named_fd < 0)
		return;
	futimens(c->named_fd, NULL);
	close(c->named_fd);
	c->named_fd = -1;
}

/* Whether <base>/<uid> has a named container of this job: the command starts only then. */
static int job_has_named(const char *user_dir, uid_t uid, uint32_t jobid)
{
	char prefix[64];
	struct dirent *d;
	struct stat st;
	DIR *dir;
	size_t n;
	int fd, found = 0;

	n = (size_t)snprintf(prefix, sizeof(prefix), NAMED_PREFIX "%u.", (unsigned)jobid);
	fd = open(user_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || st.st_uid != uid || (dir = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while (!found && (d = readdir(dir)) != NULL)
		found = strncmp(d->d_name, prefix, n) == 0;
	closedir(dir);
	return found;
}

int named_job_epilog(spank_t sp, int ac, char **av)
{
	struct plugin_context ctx = { .ac = ac, .av = av };
	struct child_output output;
	char err[ERROR_MAX], job[16];
	const char *args[] = { "--job", job };

	if (pyxis_config_parse(&ctx.cfg, ac, av, err, sizeof(err)) < 0 ||
	    ctx.cfg.pyxis.container_scope != SCOPE_JOB)
		return 0;
	if (spank_get_item(sp, S_JOB_UID, &ctx.job.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &ctx.job.gid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_ID, &ctx.job.jobid) != ESPANK_SUCCESS) {
		pyxis_error(PLUGIN_NAME ": epilog: couldn't get the job's user");
		return 0;
	}
	if (cli_user_dir(&ctx, err, sizeof(err)) < 0 || !job_has_named(ctx.user_dir, ctx.job.uid, ctx.job.jobid))
		return 0;
	snprintf(job, sizeof(job), "%u", (unsigned)ctx.job.jobid);
	if (cli_run_as(&ctx, "release", args, 2, &ctx.job, &output, err, sizeof(err)) < 0)
		pyxis_error(PLUGIN_NAME ": epilog: job %s's named containers: %s", job, err);
	return 0;
}
