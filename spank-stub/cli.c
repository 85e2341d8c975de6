/*
 * The client of the pyxis-cache command: every call is
 * "<cli> <sub> --no-plugstack ... --set <key=value>..." with the plugin's own
 * plugstack arguments, so the command and the stub never disagree about the
 * configuration.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "child.h"
#include "cli.h"
#include "lock.h"
#include "log.h"

#define REUSE_ATTEMPTS 3
#define PATH_TOO_LONG PLUGIN_NAME ": container_cache_data_path: path too long"

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

/*
 * Run "<cli> <sub> args..." as user (NULL: root) in cwd. 0 with its output in
 * output, or -1 with one line in err.
 */
static int cli_run(const struct plugin_context *ctx, const char *sub, const char *const *args, int nargs,
		   const struct pyxis_job *user, const char *cwd, unsigned flags, struct child_output *output,
		   char *err, size_t errlen)
{
	char **argv = cli_argv(ctx, sub, args, nargs);
	int status;
	int rc = -1;

	if (argv == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": out of memory");
		goto fail;
	}
	status = child_exec(argv, user, cwd, flags, output);
	if (status != 0) {
		child_error(sub, status, output, err, errlen);
		goto fail;
	}
	rc = 0;
fail:
	free(argv);
	return rc;
}

int cli_entry_name_ok(const char *name, uid_t uid)
{
	char prefix[32];
	size_t n, i;

	n = (size_t)snprintf(prefix, sizeof(prefix), ENTRY_PREFIX "%u_", (unsigned)uid);
	if (strncmp(name, prefix, n) != 0 || strlen(name) != n + HASH_HEX)
		return 0;
	for (i = n; i < n + HASH_HEX; ++i)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

/*
 * The protocol's one reply: the whole of the child's stdout is one name (what
 * read_capture left after cutting the newline). It comes from a process the
 * job user owns, and can be rewritten by them (/proc/<pid>/fd/1): it must be
 * exactly "<prefix><n hex or alnum>" and nothing else, or the step fails.
 */
static int reply_name(const char *out, const char *prefix, size_t tail, int hex, char *name, size_t len)
{
	size_t n = strlen(prefix);
	size_t i;
	int rc = -1;

	if (strncmp(out, prefix, n) != 0 || strlen(out) != n + tail || n + tail >= len)
		goto fail;
	for (i = n; i < n + tail; ++i) {
		if (hex ? !isdigit((unsigned char)out[i]) && (out[i] < 'a' || out[i] > 'f')
			: !isalnum((unsigned char)out[i]))
			goto fail;
	}
	memcpy(name, out, n + tail + 1);
	rc = 0;
fail:
	return rc;
}

/*
 * A command that succeeded may still have said something (a registry that could
 * not be reached, so a known digest served): its first line, for task_init to
 * show the user. It comes from the user's own process, and goes to their srun.
 */
static void keep_warning(struct plugin_context *ctx, const struct child_output *output)
{
	if (output->err[0] != '\0' && ctx->warning[0] == '\0')
		snprintf(ctx->warning, sizeof(ctx->warning), "%.*s", (int)strcspn(output->err, "\n"), output->err);
}

/* <base> root-owned and not writable by others, <base>/<uid> 0700 uid:gid. */
static int user_dir_ready(const struct plugin_context *ctx)
{
	struct stat st;

	if (lstat(ctx->cfg.data_path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
		return 0;
	if (lstat(ctx->user_dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != ctx->job.uid || st.st_gid != ctx->job.gid ||
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

	if (user_dir_ready(ctx))
		return 0;
	snprintf(uid, sizeof(uid), "%u", (unsigned)ctx->job.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)ctx->job.gid);
	return cli_run(ctx, "prepare", args, 4, NULL, "/", 0, &output, err, errlen);
}

int cli_user_dir(struct plugin_context *ctx, char *err, size_t errlen)
{
	int n = snprintf(ctx->user_dir, sizeof(ctx->user_dir), "%s/%u", ctx->cfg.data_path, (unsigned)ctx->job.uid);

	if (n < 0 || (size_t)n >= sizeof(ctx->user_dir)) {
		ctx->user_dir[0] = '\0';
		snprintf(err, errlen, PATH_TOO_LONG);
		return -1;
	}
	return 0;
}

int cli_user_path(const struct plugin_context *ctx, const char *name, const char *file, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s%s%s", ctx->user_dir, name, file != NULL ? "/" : "", file != NULL ? file : "");

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * "<cli> <sub>" as the job user, in the user's directory that cli_prepare made ready. When it
 * failed and that directory is no longer ready (removed or changed since: by an administrator,
 * a cache wiped under a running node), root prepares it again and the command runs once more:
 * a step does not fail because the directory went away between the two.
 */
static int cli_run_as_user(struct plugin_context *ctx, const char *sub, const char *const *args, int nargs,
			   struct child_output *output, char *err, size_t errlen)
{
	if (cli_run(ctx, sub, args, nargs, &ctx->job, ctx->job.cwd, 0, output, err, errlen) == 0)
		return 0;
	if (user_dir_ready(ctx))
		return -1;
	pyxis_info(PLUGIN_NAME ": %s failed and the user's directory is not ready: preparing it again", sub);
	if (cli_prepare(ctx, err, errlen) < 0)
		return -1;
	return cli_run(ctx, sub, args, nargs, &ctx->job, ctx->job.cwd, 0, output, err, errlen);
}

/* The index of word in words (n of them), or -1. */
static int word_index(const char *word, const char *const *words, int n)
{
	int i;

	for (i = 0; i < n; ++i) {
		if (strcmp(word, words[i]) == 0)
			return i;
	}
	return -1;
}

/* A whole decimal number and nothing else. */
static int whole_number(const char *text, unsigned long long *value)
{
	char *end;

	if (text[0] < '0' || text[0] > '9' || strlen(text) > 20)
		return -1;
	errno = 0;
	*value = strtoull(text, &end, 10);
	return *end == '\0' && errno == 0 ? 0 : -1;
}

/*
 * Cut "reuse --no-wait"'s reply "<name> <state> <kind>[ <dev> <ino>]" after the name
 * (the device and inode of the file identified: a file's, never a registry image's);
 * -1 if it is not one.
 */
static int reply_words(char *out, struct reuse_reply *reply)
{
	static const char *const states[] = ENTRY_STATE_WORDS;
	static const char *const kinds[] = IMAGE_KIND_WORDS;
	char *state = strchr(out, ' ');
	char *kind = state == NULL ? NULL : strchr(state + 1, ' ');
	char *dev, *ino = NULL;
	struct file_id id = { 0 };
	int s, k;

	if (kind == NULL)
		return -1;
	*state++ = '\0';
	*kind++ = '\0';
	dev = strchr(kind, ' ');
	if (dev != NULL) {
		*dev++ = '\0';
		ino = strchr(dev, ' ');
		if (ino == NULL)
			return -1;
		*ino++ = '\0';
		if (whole_number(dev, &id.dev) < 0 || whole_number(ino, &id.ino) < 0)
			return -1;
		id.known = 1;
	}
	s = word_index(state, states, sizeof(states) / sizeof(states[0]));
	k = word_index(kind, kinds, sizeof(kinds) / sizeof(kinds[0]));
	if (s < 0 || k < 0 || (k == IMAGE_REGISTRY && id.known))
		return -1;
	reply->state = (enum entry_state)s;
	reply->kind = (enum image_kind)k;
	reply->file = id;
	return 0;
}

/*
 * "<cli> reuse --name-only" as the job user prints the entry's name; then
 * LOCK_SH on <base>/<uid>/<name>/LOCK_FILE, held by slurmstepd until
 * the step ends. A collector may remove the entry between the reuse and the
 * lock: then the file we locked is no longer the one at that path, and we ask
 * again.
 */
int cli_reuse(struct plugin_context *ctx, const char *image, struct reuse_reply *reply, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char uid[16], gid[16];
	const char *args[] = { "--image", image, "--uid", uid, "--gid", gid, "--name-only", "--no-wait" };
	struct child_output output;
	char prefix[32];
	char lock[PATH_MAX];
	int attempt;
	int locked = 0;
	int rc = -1;

	snprintf(uid, sizeof(uid), "%u", (unsigned)ctx->job.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)ctx->job.gid);
	snprintf(prefix, sizeof(prefix), ENTRY_PREFIX "%u_", (unsigned)ctx->job.uid);
	for (attempt = 0; attempt < REUSE_ATTEMPTS && !locked; ++attempt) {
		pyxis_stamp("call");
		if (cli_run_as_user(ctx, "reuse", args, reply != NULL ? 8 : 7, &output, err, errlen) < 0)
			goto fail;
		pyxis_stamp("reply");
		keep_warning(ctx, &output);
		if ((reply != NULL && reply_words(output.out, reply) < 0) ||
		    reply_name(output.out, prefix, HASH_HEX, 1, c->entry, sizeof(c->entry)) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": reuse: printed no entry name of uid %s", uid);
			goto fail;
		}
		if (reply != NULL && reply->state != ENTRY_READY) {
			rc = 0;
			goto fail;
		}
		if (cli_user_path(ctx, c->entry, LOCK_FILE, lock, sizeof(lock)) < 0) {
			snprintf(err, errlen, PATH_TOO_LONG);
			goto fail;
		}
		locked = lock_shared(lock, 0, ctx->job.uid, &c->lock_fd, err, errlen);
		pyxis_stamp("locked");
		if (locked < 0)
			goto fail;
		if (!locked)
			pyxis_info(PLUGIN_NAME ": %s was removed before it was locked, retrying", lock);
	}
	if (!locked) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: removed by a collector %d times in a row, giving up", image,
			 REUSE_ATTEMPTS);
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

int cli_start_creator(const struct plugin_context *ctx, const char *image)
{
	char uid[16], gid[16];
	const char *args[] = { "--image", image, "--uid", uid, "--gid", gid, "--name-only", "--unless-busy" };
	char **argv;
	int rc;

	snprintf(uid, sizeof(uid), "%u", (unsigned)ctx->job.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)ctx->job.gid);
	argv = cli_argv(ctx, "reuse", args, 8);
	if (argv == NULL)
		return -1;
	rc = child_spawn_detached(argv, &ctx->job);
	free(argv);
	return rc;
}

/*
 * "<cli> step" as the job user makes a directory of the step's own (with an
 * image: unpacked into its rootfs) and prints its name; slurmstepd holds
 * LOCK_SH on <base>/<uid>/<name> until cli_release runs "<cli> release", so
 * that the collector removes only the leftovers of steps that died.
 */
int cli_step(struct plugin_context *ctx, const char *image, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char job[16], step[16];
	const char *args[] = { "--job", job, "--step", step, "--image", image };
	struct child_output output;
	char prefix[64];
	int locked;
	int rc = -1;

	snprintf(job, sizeof(job), "%u", ctx->job.jobid);
	snprintf(step, sizeof(step), "%u", ctx->job.stepid);
	snprintf(prefix, sizeof(prefix), STEP_PREFIX "%s.%s.", job, step);
	pyxis_stamp("step_call");
	if (cli_run_as_user(ctx, "step", args, image != NULL ? 6 : 4, &output, err, errlen) < 0)
		goto fail;
	pyxis_stamp("step_reply");
	keep_warning(ctx, &output);
	if (reply_name(output.out, prefix, TAIL_ALNUM, 0, c->step_name, sizeof(c->step_name)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": step: printed no step name of job %s.%s", job, step);
		goto fail;
	}
	if (cli_user_path(ctx, c->step_name, NULL, c->step_dir, sizeof(c->step_dir)) < 0) {
		snprintf(err, errlen, PATH_TOO_LONG);
		goto fail;
	}
	locked = lock_shared(c->step_dir, O_DIRECTORY, ctx->job.uid, &c->step_lock_fd, err, errlen);
	if (locked < 0)
		goto fail;
	if (!locked) {
		snprintf(err, errlen, PLUGIN_NAME ": %s was removed before it was locked", c->step_dir);
		goto fail;
	}
	/* With an image, the step runs in its copy. */
	if (image != NULL && step_root_copy(&c->root, c->step_dir, err, errlen) < 0)
		goto fail;
	rc = 0;
fail:
	return rc;
}

/*
 * Close the locks; "<cli> release" as the job user removes the step's own
 * directory while it is still locked, so no collector races it.
 */
void cli_release(struct plugin_context *ctx)
{
	struct container *c = &ctx->container;
	const char *args[] = { "--name", c->step_name };
	struct child_output output;
	char err[ERROR_MAX];

	if (c->lock_fd >= 0) {
		close(c->lock_fd);
		c->lock_fd = -1;
	}
	if (c->step_name[0] != '\0') {
		if (cli_run(ctx, "release", args, 2, &ctx->job, "/", CHILD_IGNORE_SIGTERM, &output, err, sizeof(err)) < 0)
			pyxis_error("%s", err);
		c->step_name[0] = '\0';
	}
	if (c->step_lock_fd >= 0) {
		close(c->step_lock_fd);
		c->step_lock_fd = -1;
	}
}

int cli_run_as(const struct plugin_context *ctx, const char *sub, const char *const *args, int nargs,
	       const struct pyxis_job *user, struct child_output *output, char *err, size_t errlen)
{
	return cli_run(ctx, sub, args, nargs, user, "/", 0, output, err, errlen);
}
