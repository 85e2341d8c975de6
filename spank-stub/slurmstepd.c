/*
 * slurmstepd side (S_CTX_REMOTE): the callbacks and nothing else.
 *
 *   init_post_opt  root, slurmstepd    read the options, check them and the config
 *   user_init      root, slurmstepd    prepare <base>/<uid> (root), get the rootfs
 *                                      (as the user), hold the in-use lock  (cli.c)
 *   task_init      job user, the task  put the runtime in front of the task argv
 *                                      (runtime.c), or fail the task with the
 *                                      recorded error
 *   exit           root, slurmstepd    release the lock, remove a per-step rootfs
 *
 * Errors found before task_init are only recorded: a failing user_init makes
 * srun exit 0 and drains the node for sbatch, while a failing task_init makes
 * srun exit non-zero with the message on its stderr and leaves the node alone.
 */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "args.h"
#include "child.h"
#include "cli.h"
#include "common.h"
#include "context.h"
#include "runtime.h"
#include "slurmstepd.h"

static struct plugin_context context = {
	.container = { .lock_fd = -1, .step_lock_fd = -1, .userns_fd = -1, .mntns_fd = -1 },
};

/* Keep the first error for task_init; log only (task_init sends it to srun, once). */
static void record_error(const char *err)
{
	if (context.error[0] != '\0')
		return;
	snprintf(context.error, sizeof(context.error), "%s", err);
	slurm_info("%s", context.error);
}

/*
 * slurm_spank_init, S_CTX_REMOTE: in slurmstepd, as root, before the options
 * are known. Registering the options here is what makes srun's values arrive.
 */
int pyxis_slurmstepd_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return pyxis_args_register(sp);
}

/*
 * slurm_spank_init_post_opt, S_CTX_REMOTE: in slurmstepd, as root, with the
 * options from srun. Only job steps launched by srun are handled (not the
 * batch script, the extern or the interactive step).
 */
int pyxis_slurmstepd_post_opt(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];

	if (spank_get_item(sp, S_JOB_STEPID, &context.job.stepid) != ESPANK_SUCCESS ||
	    context.job.stepid >= SLURM_MAX_NORMAL_STEP_ID)
		goto done;
	if (pyxis_args_apply_env(sp, 1) < 0) {
		record_error(PLUGIN_NAME ": out of memory");
		goto done;
	}
	if (!pyxis_args_active())
		goto done;

	context.active = 1;
	context.ac = ac;
	context.av = av;
	if (pyxis_args_check(err, sizeof(err)) < 0)
		record_error(err);
	else if (pyxis_config_parse(&context.cfg, ac, av, err, sizeof(err)) < 0)
		record_error(err);

done:
	return 0;
}

/* The job's user and places, from Slurm. */
static int get_job(spank_t sp, struct pyxis_job *job, char *err, size_t errlen)
{
	struct passwd *pw;
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
	if (spank_getenv(sp, "HOME", job->home, sizeof(job->home)) != ESPANK_SUCCESS) {
		pw = getpwuid(job->uid);
		snprintf(job->home, sizeof(job->home), "%s", pw != NULL ? pw->pw_dir : "/");
	}
	rc = 0;
fail:
	return rc;
}

/*
 * Start the step's container once; enroot's paths go into a directory of the
 * step's own. The container's environment (enroot: the image's environment
 * files, enroot's environ.d, its hooks) is laid over the job's, as pyxis does,
 * except what belongs to the shell that reported it.
 */
static int start_container(spank_t sp, const char *search_path, char *err, size_t errlen)
{
	static const char *const shell_vars[] = { "PWD", "OLDPWD", "SHLVL", "_", NULL };
	struct container *c = &context.container;
	struct runtime_task task;
	char enroot_paths[PATH_MAX + 8];
	char **job_env = NULL;
	char *var, *value;
	size_t i;
	int j;

	if (context.cfg.runtime == RUNTIME_ENROOT && cli_step_dir(&context, err, errlen) < 0)
		return -1;
	snprintf(enroot_paths, sizeof(enroot_paths), "%s/enroot", c->step_dir);
	if (spank_get_item(sp, S_JOB_ENV, &job_env) != ESPANK_SUCCESS)
		job_env = NULL;
	task = (struct runtime_task){
		.runtime = context.cfg.runtime,
		.runtime_bin = c->runtime_bin,
		.search_path = search_path,
		.rootfs = c->rootfs,
		.enroot_data = c->enroot_data,
		.enroot_name = c->enroot_name,
		.enroot_paths = enroot_paths,
		.job_env = job_env,
		.job = &context.job,
		.writable = !container_args.cache && container_args.writable,
	};
	if (runtime_start(&task, c, err, errlen) < 0)
		return -1;
	for (i = 0; i < c->environ_len; i += strlen(c->environ + i) + 1) {
		var = c->environ + i;
		value = strchr(var, '=');
		if (value == NULL)
			continue;
		*value = '\0';
		for (j = 0; shell_vars[j] != NULL && strcmp(var, shell_vars[j]) != 0; ++j)
			;
		if (shell_vars[j] == NULL && spank_setenv(sp, var, value + 1, 1) != ESPANK_SUCCESS)
			slurm_info(PLUGIN_NAME ": couldn't set %s", var);
		*value = '=';
	}
	return 0;
}

/*
 * slurm_spank_user_init, S_CTX_REMOTE: in slurmstepd, as root (effective uid
 * may already be the job user's, real uid is 0), once per step before the
 * tasks are forked. Never fails: errors are recorded for task_init.
 */
int pyxis_slurmstepd_user_init(spank_t sp, int ac, char **av)
{
	struct container *c = &context.container;
	const char *search_path;
	char err[ERROR_MAX];

	(void)ac;
	(void)av;
	if (!context.active || context.error[0] != '\0')
		goto done;

	slurm_debug(PLUGIN_NAME ": user_init: uid %u euid %u", (unsigned)getuid(), (unsigned)geteuid());

	if (get_job(sp, &context.job, err, sizeof(err)) < 0)
		goto fail;

	if (runtime_find(context.cfg.runtime, c->runtime_bin, sizeof(c->runtime_bin), &search_path, err,
			 sizeof(err)) < 0)
		goto fail;
	if (access(context.cfg.cli, X_OK) < 0) {
		snprintf(err, sizeof(err), PLUGIN_NAME ": container_cache_cli: %.900s: %m", context.cfg.cli);
		goto fail;
	}
	if (cli_prepare(&context, err, sizeof(err)) < 0)
		goto fail;
	if (container_args.cache) {
		if (cli_reuse(&context, container_args.image, err, sizeof(err)) < 0)
			goto fail;
	} else if (cli_step(&context, container_args.image, err, sizeof(err)) < 0) {
		goto fail;
	}
	if (start_container(sp, search_path, err, sizeof(err)) < 0)
		goto fail;
	goto done;

fail:
	record_error(err);
done:
	return 0;
}

/*
 * slurm_spank_task_init_privileged, S_CTX_REMOTE: in the task's own process,
 * as root, before Slurm drops privileges and resolves the task's command (so
 * that it is looked up inside the container, as in pyxis). Errors are
 * recorded: task_init reports them.
 */
int pyxis_slurmstepd_task_init_privileged(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];

	(void)sp;
	(void)ac;
	(void)av;
	if (context.active && context.error[0] == '\0' &&
	    runtime_join_mounts(&context.container, context.job.cwd, err, sizeof(err)) < 0)
		record_error(err);
	return 0;
}

/*
 * slurm_spank_task_init, S_CTX_REMOTE: in the task's own process (forked by
 * slurmstepd), as the job user, just before Slurm execs the task. This is where
 * a recorded error fails the step: the message reaches srun's stderr and srun
 * exits non-zero, and the node stays up. Otherwise the task joins the
 * container's user namespace; Slurm then execs it with the job's environment.
 */
int pyxis_slurmstepd_task_init(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];
	int rc = -1;

	(void)sp;
	(void)ac;
	(void)av;
	if (context.error[0] != '\0') {
		slurm_error("%s", context.error);
		goto done;
	}
	if (!context.active) {
		rc = 0;
		goto done;
	}
	if (runtime_join_user(&context.container, err, sizeof(err)) < 0) {
		slurm_error("%s", err);
		goto done;
	}
	rc = 0;
done:
	return rc;
}

/*
 * slurm_spank_exit, S_CTX_REMOTE: in slurmstepd, as root, after every task of
 * the step has exited (also after a failed step).
 */
int pyxis_slurmstepd_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	runtime_release(&context.container);
	cli_release(&context);
	return 0;
}
