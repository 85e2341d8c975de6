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
#include "cold.h"
#include "common.h"
#include "context.h"
#include "runtime.h"
#include "slurmstepd.h"

/* Slurm >= 23.11; NULL at run time on older versions (weak). */
extern spank_err_t spank_prepend_task_argv(spank_t spank, int argc, const char *argv[]) __attribute__((weak));

static struct plugin_context context = {
	.container = { .lock_fd = -1, .step_lock_fd = -1, .fuse = FUSE_MOUNT_INIT },
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
 * slurm_spank_user_init, S_CTX_REMOTE: in slurmstepd, as root (effective uid
 * may already be the job user's, real uid is 0), once per step before the
 * tasks are forked. Never fails: errors are recorded for task_init.
 */
int pyxis_slurmstepd_user_init(spank_t sp, int ac, char **av)
{
	struct container *c = &context.container;
	char err[ERROR_MAX];
	const char *runtime;
	const char *search_path;

	(void)ac;
	(void)av;
	if (!context.active || context.error[0] != '\0')
		goto done;

	slurm_debug(PLUGIN_NAME ": user_init: uid %u euid %u", (unsigned)getuid(), (unsigned)geteuid());

	if (get_job(sp, &context.job, err, sizeof(err)) < 0)
		goto fail;

	runtime = pyxis_config_runtime_name(context.cfg.runtime);
	if (child_find_executable(runtime, c->runtime_bin, sizeof(c->runtime_bin)) < 0) {
		snprintf(err, sizeof(err), PLUGIN_NAME ": container_cache_runtime: %s: not found in " PYXIS_CACHE_PATH,
			 runtime);
		goto fail;
	}
	if (access(context.cfg.cli, X_OK) < 0) {
		snprintf(err, sizeof(err), PLUGIN_NAME ": container_cache_cli: %.900s: %m", context.cfg.cli);
		goto fail;
	}
	if (cli_prepare(&context, err, sizeof(err)) < 0)
		goto fail;
	if (container_args.cache) {
		search_path = getenv("PATH");
		if (search_path == NULL || search_path[0] == '\0')
			search_path = PYXIS_CACHE_PATH;
		if (cold_start(&context, container_args.image, search_path, err, sizeof(err)) < 0)
			goto fail;
	} else if (cli_step(&context, container_args.image, err, sizeof(err)) < 0) {
		goto fail;
	}
	goto done;

fail:
	record_error(err);
done:
	return 0;
}

/* Slurm < 23.11: argv[0] becomes a script that execs the prefix (runtime.c). */
static int rewrite_argv(spank_t sp, const struct runtime_argv *prefix, char *err, size_t errlen)
{
	char path[64];
	char **argv;
	int argc;
	int rc = -1;

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv[0] == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": couldn't get the task's argv");
		goto fail;
	}
	if (runtime_script(prefix, argv[0], path, sizeof(path), err, errlen) < 0)
		goto fail;
	argv[0] = strdup(path);
	if (argv[0] == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": out of memory");
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

/*
 * slurm_spank_task_init, S_CTX_REMOTE: in the task's own process (forked by
 * slurmstepd), as the job user, just before Slurm execs the task. This is where
 * a recorded error fails the step: the message reaches srun's stderr and srun
 * exits non-zero, and the node stays up.
 */
int pyxis_slurmstepd_task_init(spank_t sp, int ac, char **av)
{
	const struct container *c = &context.container;
	struct runtime_argv prefix;
	struct runtime_task task;
	char cwd[PATH_MAX];
	char err[ERROR_MAX];
	int rc = -1;

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
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		strcpy(cwd, context.job.cwd);

	task = (struct runtime_task){
		.runtime = context.cfg.runtime,
		.runtime_bin = c->runtime_bin,
		.rootfs = c->rootfs,
		.enroot_data = c->enroot_data,
		.enroot_name = c->enroot_name,
		.home = context.job.home,
		.cwd = cwd,
		.writable = !container_args.cache && container_args.writable,
	};
	if (runtime_prefix(&task, &prefix, err, sizeof(err)) < 0)
		goto fail;
	if (spank_prepend_task_argv != NULL) {
		if (spank_prepend_task_argv(sp, prefix.argc, prefix.argv) != ESPANK_SUCCESS) {
			snprintf(err, sizeof(err), PLUGIN_NAME ": spank_prepend_task_argv failed");
			goto fail;
		}
	} else if (rewrite_argv(sp, &prefix, err, sizeof(err)) < 0) {
		goto fail;
	}
	rc = 0;
	goto done;

fail:
	slurm_error("%s", err);
done:
	return rc;
}

/*
 * slurm_spank_exit, S_CTX_REMOTE: in slurmstepd, as root, after every task of
 * the step has exited (also after a failed step).
 */
/*
 * slurm_spank_task_init_privileged, S_CTX_REMOTE: in the task's own process,
 * as root. A step started from a FUSE mount enters the mount's namespace here:
 * the runtime the task execs then finds the rootfs there.
 */
int pyxis_slurmstepd_task_init_privileged(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];

	(void)sp;
	(void)ac;
	(void)av;
	if (context.active && context.error[0] == '\0' && context.container.fuse.mntns_fd >= 0 &&
	    fuse_enter(&context.container.fuse) < 0) {
		snprintf(err, sizeof(err), PLUGIN_NAME ": couldn't enter the FUSE mount's namespace: %m");
		record_error(err);
	}
	return 0;
}

int pyxis_slurmstepd_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	/* The mount goes with its last user; the daemon then ends by itself (fuse.c). */
	fuse_release(&context.container.fuse);
	cli_release(&context);
	return 0;
}
