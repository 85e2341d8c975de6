/*
 * The step's setup in user_init (slurmstepd, real uid 0, effective uid the
 * job user's): the Slurm items it needs, then cli.c for every directory and
 * lock, then container.c for the container. See docs/srun.md, "Who runs what".
 */
#include <pwd.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "args.h"
#include "attach.h"
#include "cli.h"
#include "cold.h"
#include "common.h"
#include "container.h"
#include "enroot_fe.h"
#include "log.h"
#include "named.h"
#include "runtime.h"
#include "step.h"

/* The job's user and places, from Slurm. */
static int get_job(spank_t sp, struct pyxis_job *job, char *err, size_t errlen)
{
	struct passwd *pw;
	char **argv;
	int argc;
	int rc = -1;

	if (spank_get_item(sp, S_JOB_UID, &job->uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &job->gid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_ID, &job->jobid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &job->gids, &job->ngids) != ESPANK_SUCCESS) {
		snprintf(err, errlen, PLUGIN_NAME ": couldn't get the job's user");
		goto fail;
	}
	if (spank_getenv(sp, "PWD", job->cwd, sizeof(job->cwd)) != ESPANK_SUCCESS || job->cwd[0] != '/') {
		if (getcwd(job->cwd, sizeof(job->cwd)) == NULL)
			strcpy(job->cwd, "/");
	}
	/* What the command gives enroot for a registry image (child.c): the user's own settings. */
	if (spank_getenv(sp, "ENROOT_CONFIG_PATH", job->enroot_config, sizeof(job->enroot_config)) != ESPANK_SUCCESS)
		job->enroot_config[0] = '\0';
	if (spank_getenv(sp, "ENROOT_ALLOW_HTTP", job->enroot_allow_http, sizeof(job->enroot_allow_http)) !=
	    ESPANK_SUCCESS)
		job->enroot_allow_http[0] = '\0';
	if (spank_getenv(sp, "HOME", job->home, sizeof(job->home)) != ESPANK_SUCCESS) {
		pw = getpwuid(job->uid);
		snprintf(job->home, sizeof(job->home), "%s", pw != NULL ? pw->pw_dir : "/");
	}
	/* The batch script, which slurmstepd execs from its spool once the task is in the container: bound there. */
	job->batch_script[0] = '\0';
	if (job->stepid == SLURM_BATCH_SCRIPT) {
		if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv[0][0] != '/' ||
		    strlen(argv[0]) >= sizeof(job->batch_script)) {
			snprintf(err, errlen, PLUGIN_NAME ": couldn't get the batch script's path");
			goto fail;
		}
		strcpy(job->batch_script, argv[0]);
	}
	rc = 0;
fail:
	return rc;
}

/*
 * The container's environment (enroot: the image's environment files,
 * enroot's environ.d, its hooks; either runtime: what the image's entrypoint
 * exported) is laid over the job's, as pyxis does: except what belongs to the
 * shell that reported it, the variables --container-env keeps from the job (those
 * the job sets: a listed name the job leaves unset or empty keeps the image's value),
 * and with bwrap the PATH and HOME the stub itself gave it. LANG, LANGUAGE and
 * LC_ALL of the job are dropped first (the image may lack that locale), unless
 * --container-env keeps them.
 */
/* The job sets NAME to a non-empty value (a 1-byte buffer holds only the empty one). */
static int job_sets(spank_t sp, const char *name)
{
	char buf[1];
	spank_err_t rc = spank_getenv(sp, name, buf, sizeof(buf));

	return rc == ESPANK_NOSPACE;
}

/* What the container's environment lays over the job's: kept for the steps that attach to it (attach.c). */
static void keep_for_attach(spank_t sp, struct container *c, const char *var, const char *value)
{
	size_t vlen = strlen(value), len = strlen(var) + 1 + vlen + 1;
	char *grown, *current;
	spank_err_t rc;

	current = malloc(vlen + 2);
	if (current == NULL)
		return;
	/* A variable the container has from the job (SLURM_*, ...) is the attaching step's own there. */
	rc = spank_getenv(sp, var, current, (int)vlen + 2);
	if (rc == ESPANK_SUCCESS && strcmp(current, value) == 0) {
		free(current);
		return;
	}
	free(current);
	grown = realloc(c->run_env, c->run_env_len + len);
	if (grown == NULL)
		return;
	c->run_env = grown;
	snprintf(c->run_env + c->run_env_len, len, "%s=%s", var, value);
	c->run_env_len += len;
}

/* pyxis drops the job's locale variables unless --container-env lists them. */
static void drop_job_locale(spank_t sp)
{
	static const char *const locale_vars[] = { "LANG", "LANGUAGE", "LC_ALL", NULL };
	int j;

	for (j = 0; locale_vars[j] != NULL; ++j)
		if (!pyxis_args_env_listed(locale_vars[j], strlen(locale_vars[j])))
			spank_unsetenv(sp, locale_vars[j]);
}

/*
 * Each "K=V" of env (len bytes, NUL-separated) laid over the job's environment, but a
 * variable --container-env lists and the job sets, and those skip() says to leave.
 */
static void lay_environ(spank_t sp, struct container *c, char *env, size_t len,
			int (*skip)(const char *var, const char *value, const struct runtime_task *task),
			const struct runtime_task *task)
{
	char *var, *value;
	size_t i;

	drop_job_locale(sp);
	for (i = 0; i < len; i += strlen(env + i) + 1) {
		var = env + i;
		value = strchr(var, '=');
		if (value == NULL || value == var)
			continue;
		*value = '\0';
		if (!(pyxis_args_env_listed(var, strlen(var)) && job_sets(sp, var)) &&
		    (skip == NULL || !skip(var, value + 1, task))) {
			if (task != NULL)
				keep_for_attach(sp, c, var, value + 1);
			if (spank_setenv(sp, var, value + 1, 1) != ESPANK_SUCCESS)
				pyxis_info(PLUGIN_NAME ": couldn't set %s", var);
		}
		*value = '=';
	}
}

/* What the runtime's own start put in the container's environment, not the image's. */
static int runtime_own(const char *var, const char *value, const struct runtime_task *task)
{
	static const char *const shell_vars[] = { "PWD", "OLDPWD", "SHLVL", "_", NULL };
	int j;

	for (j = 0; shell_vars[j] != NULL; ++j)
		if (strcmp(var, shell_vars[j]) == 0)
			return 1;
	return task->runtime == RUNTIME_BWRAP && ((strcmp(var, "PATH") == 0 && strcmp(value, task->search_path) == 0) ||
						 (strcmp(var, "HOME") == 0 && strcmp(value, task->job->home) == 0));
}

/* An attached step's environment: what the running container's laid over the job's, as set_environ does. */
static void attach_environ(spank_t sp, struct container *c)
{
	lay_environ(sp, c, c->run_env, c->run_env_len, NULL, NULL);
}

static void set_environ(spank_t sp, struct container *c, const struct runtime_task *task)
{
	lay_environ(sp, c, c->environ, c->environ_len, runtime_own, task);
}

/*
 * A running container of the name: the step attaches to it (attach.c), as pyxis
 * does: no runtime and no mount of its own; the options that shape a new
 * container cannot change the running one.
 */
static int attach_start(spank_t sp, struct plugin_context *ctx)
{
	pyxis_info(PLUGIN_NAME ": reusing existing container namespaces: %s", container_args.name);
	if (container_args.mounts_len > 0)
		snprintf(ctx->warning, sizeof(ctx->warning),
			 PLUGIN_NAME ": ignoring --container-mounts when attaching to a running container");
	else if (container_args.save != NULL)
		snprintf(ctx->warning, sizeof(ctx->warning),
			 PLUGIN_NAME ": ignoring --container-save when attaching to a running container");
	attach_environ(sp, &ctx->container);
	return 0;
}

/*
 * Start the step's container once. enroot's own paths go into the tmpfs of a
 * cache-mode step's mount, else into the step's directory, which "<cli> step"
 * makes (in cache mode without an image, where the layer could not be made:
 * the stub makes no directory of its own in the user's).
 */
static int start_container(spank_t sp, struct plugin_context *ctx, const char *search_path, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	struct runtime_task task;
	char step_paths[PATH_MAX + 8];
	const char *enroot_paths = c->root.enroot_paths;
	char **job_env = NULL;

	/* A step's mount (its layer, a cold step's image) has a tmpfs of the step's own for them: no step directory. */
	if (enroot_paths[0] == '\0') {
		if (ctx->cfg.runtime == RUNTIME_ENROOT && c->step_name[0] == '\0' && cli_step(ctx, NULL, err, errlen) < 0)
			return -1;
		snprintf(step_paths, sizeof(step_paths), "%s/enroot", c->step_dir);
		enroot_paths = step_paths;
	}
	if (spank_get_item(sp, S_JOB_ENV, &job_env) != ESPANK_SUCCESS)
		job_env = NULL;
	task = (struct runtime_task){
		.runtime = ctx->cfg.runtime,
		.runtime_bin = c->runtime_bin,
		.search_path = search_path,
		.root = &c->root,
		.enroot_paths = enroot_paths,
		.job_env = job_env,
		.job = &ctx->job,
		.batch_script = ctx->job.batch_script[0] != '\0' ? ctx->job.batch_script : NULL,
		.args = &container_args,
		.writable = container_args.writable,
		.mount_home = pyxis_args_mount_home() && runtime_home_is_dir(ctx->job.home),
		.remap_root = pyxis_args_remap_root(),
		/* --[no-]container-entrypoint, else pyxis's execute_entrypoint key (default off). */
		.entrypoint = pyxis_args_entrypoint(ctx->cfg.pyxis.execute_entrypoint),
	};
	if (task.runtime == RUNTIME_ENROOT) {
		/* enroot's front end: the stub's when it knows this enroot (enroot_fe.h), else enroot start's. */
		static struct enroot_fe fe;
		char why[PATH_MAX + 128];

		if (enroot_fe_recognise(c->runtime_bin, &fe, why, sizeof(why)) == 0)
			pyxis_debug(PLUGIN_NAME ": enroot's front end: the stub's (%s)", c->runtime_bin);
		else
			pyxis_debug(PLUGIN_NAME ": enroot's front end: enroot start's: %s", why);
		task.enroot_fe = &fe;
	}
	pyxis_stamp("runtime");
	if (runtime_check(&task, err, errlen) < 0 || container_start(&task, c, err, errlen) < 0)
		return -1;
	pyxis_stamp("started");
	set_environ(sp, c, &task);
	return 0;
}

int step_setup(spank_t sp, struct plugin_context *ctx, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	const char *search_path;
	int rc, found;

	if (get_job(sp, &ctx->job, err, errlen) < 0 ||
	    runtime_find(ctx->cfg.runtime, c->runtime_bin, sizeof(c->runtime_bin), &search_path, err, errlen) < 0)
		return -1;
	if (access(ctx->cfg.cli, X_OK) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": container_cache_cli: %.900s: %m", ctx->cfg.cli);
		return -1;
	}
	if (cli_user_dir(ctx, err, errlen) < 0 || cli_prepare(ctx, err, errlen) < 0)
		return -1;
	/* pyxis's flags: "no_exec" never attaches, "exec" only attaches, "create" refuses a running one. */
	if (container_args.name != NULL && strcmp(container_args.name_flags, "no_exec") != 0) {
		found = attach_find(ctx, err, errlen);
		if (found < 0)
			return -1;
		if (found && strcmp(container_args.name_flags, "create") == 0) {
			snprintf(err, errlen,
				 PLUGIN_NAME ": error: \"create\" flag was passed to --container-name but the container "
					     "already exists");
			return -1;
		}
		if (found)
			return attach_start(sp, ctx);
		if (strcmp(container_args.name_flags, "exec") == 0) {
			snprintf(err, errlen,
				 PLUGIN_NAME ": error: \"exec\" flag was passed to --container-name but the container is "
					     "not running");
			return -1;
		}
	}
	/* An image of a local daemon has no digest to cache it by: a step of its own, as without the cache. */
	if (container_args.name != NULL)
		rc = named_start(ctx, err, errlen);
	else if (container_args.cache && !pyxis_args_daemon_image())
		rc = cold_start(ctx, container_args.image, search_path, err, errlen);
	else
		rc = cli_step(ctx, container_args.image, err, errlen);
	if (rc < 0)
		return -1;
	/* An unnamed cache-mode step can be attached to as "<job>.<step>", as pyxis names it. */
	if (container_args.name == NULL && container_args.cache && attach_record_dir(ctx, err, errlen) < 0)
		return -1;
	rc = start_container(sp, ctx, search_path, err, errlen);
	cold_start_creator(ctx);
	return rc;
}

void step_teardown(struct plugin_context *ctx)
{
	attach_release(ctx);
	container_release(&ctx->container);
	/* The mount goes with its last user; the daemon then ends by itself (fuse.c). */
	fuse_release(&ctx->container.fuse);
	cli_release(ctx);
	/* After the layer's namespace: the next step of the name may mount it. */
	named_release(&ctx->container);
}
