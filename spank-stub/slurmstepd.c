/*
 * slurmstepd side (S_CTX_REMOTE): the callbacks and nothing else.
 *
 *   init_post_opt        root, slurmstepd  read the options, check them and the config
 *   user_init            root, slurmstepd  the rootfs and the step's directory through
 *                                          the command, their locks, the container
 *                                          started once (step.c)
 *   task_init_privileged root, the task    join the container's mounts (container.c)
 *   task_init            job user, the task  join its user namespace, chdir to the
 *                                          working directory and, for a job user
 *                                          other than root, install pyxis's
 *                                          seccomp filter (seccomp.c); or fail
 *                                          the task with the recorded error
 *   task_exit            root, slurmstepd  after the last task: --container-save (save.c)
 *   exit                 root, slurmstepd  close namespaces and locks, remove the
 *                                          step's directory (step.c)
 *
 * Errors found before task_init are only recorded: a failing user_init makes
 * srun exit 0 and drains the node for sbatch, while a failing task_init makes
 * srun exit non-zero with the message on its stderr and leaves the node alone.
 */
#include <stdio.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "args.h"
#include "attach.h"
#include "cancel.h"
#include "common.h"
#include "container.h"
#include "context.h"
#include "log.h"
#include "save.h"
#include "seccomp.h"
#include "slurmstepd.h"
#include "step.h"

static struct plugin_context context = {
	.container = { .root = STEP_ROOT_INIT, .lock_fd = -1, .step_lock_fd = -1, .userns_fd = -1, .mntns_fd = -1, .netns_fd = -1,
		       .ipcns_fd = -1, .utsns_fd = -1, .fuse = FUSE_MOUNT_INIT, .named_fd = -1,
		       .run_fd = -1, .attach_pidfd = -1, .attached_fd = -1 },
};

/* Keep the first error for task_init; log only (task_init sends it to srun, once). */
static void record_error(const char *err)
{
	if (context.error[0] != '\0')
		return;
	snprintf(context.error, sizeof(context.error), "%s", err);
	pyxis_info("%s", context.error);
}

/*
 * slurm_spank_init, S_CTX_REMOTE: in slurmstepd, as root, before the options
 * are known. Registering the options here is what makes srun's values arrive.
 */
int pyxis_slurmstepd_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	pyxis_stamp("init");
	return pyxis_args_register(sp);
}

/*
 * slurm_spank_init_post_opt, S_CTX_REMOTE: in slurmstepd, as root, with the
 * options from srun (or, through the job's environment, from sbatch or
 * salloc). Job steps are handled, and with pyxis's sbatch_support the batch
 * script and salloc's interactive step too (as pyxis does); the extern step
 * never.
 */
int pyxis_slurmstepd_post_opt(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX], cfg_err[ERROR_MAX];
	int env_rc, cfg_rc;
	int job_step;

	if (spank_get_item(sp, S_JOB_STEPID, &context.job.stepid) != ESPANK_SUCCESS)
		goto done;
	job_step = context.job.stepid < SLURM_MAX_NORMAL_STEP_ID;
	if (!job_step && context.job.stepid != SLURM_BATCH_SCRIPT && context.job.stepid != SLURM_INTERACTIVE_STEP)
		goto done;
	/* PYXIS_CONTAINER_IMAGE is read first: the other variables matter only to a step with a container. */
	env_rc = pyxis_args_apply_env(sp, 1, err, sizeof(err));
	if (!pyxis_args_active())
		goto done;
	cfg_rc = pyxis_config_parse(&context.cfg, ac, av, cfg_err, sizeof(cfg_err));
	/* sbatch_support=0: the batch script and the interactive step run outside, whatever their environment says. */
	if (!job_step && cfg_rc == 0 && !context.cfg.pyxis.sbatch_support)
		goto done;
	if (env_rc < 0) {
		record_error(err);
		goto done;
	}

	context.active = 1;
	context.ac = ac;
	context.av = av;
	if (pyxis_args_check(err, sizeof(err)) < 0)
		record_error(err);
	else if (cfg_rc < 0)
		record_error(cfg_err);
	else if (pyxis_args_check_runtime(context.cfg.runtime == RUNTIME_BWRAP, err, sizeof(err)) < 0)
		record_error(err);
	pyxis_stamp("post_opt");

done:
	return 0;
}

/*
 * slurm_spank_user_init, S_CTX_REMOTE: in slurmstepd, as root (effective uid
 * may already be the job user's, real uid is 0), once per step before the
 * tasks are forked. Never fails: errors are recorded for task_init.
 */
int pyxis_slurmstepd_user_init(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];

	(void)ac;
	(void)av;
	if (!context.active || context.error[0] != '\0')
		return 0;
	pyxis_stamp("user_init");
	pyxis_debug(PLUGIN_NAME ": user_init: uid %u euid %u", (unsigned)getuid(), (unsigned)geteuid());
	/* Slurm signals nothing of ours until user_init returns: its waits ask whether the step is cancelled. */
	cancel_watch(&context.job);
	if (step_setup(sp, &context, err, sizeof(err)) < 0)
		record_error(err);
	cancel_watch(NULL);
	pyxis_stamp("user_init_end");
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
	if (context.active)
		pyxis_stamp("join");
	/* An attached step joins every namespace in task_init, as the job user (attach.c). */
	if (context.active && context.error[0] == '\0' && !context.container.attach &&
	    container_join_mounts(&context.container, err, sizeof(err)) < 0)
		record_error(err);
	return 0;
}

/*
 * slurm_spank_task_init, S_CTX_REMOTE: in the task's own process (forked by
 * slurmstepd), as the job user, just before Slurm execs the task. This is where
 * a recorded error fails the step: every task fails, the node's first one puts
 * the message on srun's stderr (once per node, as pyxis), srun exits non-zero,
 * and the node stays up. Otherwise the task joins the
 * container's user namespace and goes to the working directory as the user
 * (root walks no path in the container: a cold step's lower layer is a FUSE
 * mount the user can serve); a job user other than root gets pyxis's seccomp
 * filter (seccomp.h); Slurm then execs it with the job's environment.
 */
int pyxis_slurmstepd_task_init(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];
	uint32_t task_id;
	int local_id = 0;
	int rc = -1;

	(void)ac;
	(void)av;
	/* Once per node, as pyxis's user_init says it: by the node's first task; the others only fail. */
	if (context.error[0] != '\0') {
		if (spank_get_item(sp, S_TASK_ID, &local_id) != ESPANK_SUCCESS || local_id == 0)
			pyxis_error("%s", context.error);
		goto done;
	}
	if (!context.active) {
		rc = 0;
		goto done;
	}
	/* Once per step (task 0), on the task's stderr, which srun shows. */
	if (spank_get_item(sp, S_TASK_GLOBAL_ID, &task_id) == ESPANK_SUCCESS && task_id == 0) {
		if (context.warning[0] != '\0')
			pyxis_print(stderr, "%s", context.warning);
		if (context.container.entrypoint_log != NULL)
			pyxis_print_lines(stderr, context.container.entrypoint_log);
	}
	if (context.container.attach) {
		/* An attached step starts in the container's / (pyxis: where a new process of it starts), then --container-workdir. */
		if (attach_join(&context, err, sizeof(err)) < 0 || container_chdir("/", err, sizeof(err)) < 0) {
			pyxis_error("%s", err);
			goto done;
		}
	} else {
		/* The node's first task records the container for the steps that attach to it, before it joins it. */
		if (spank_get_item(sp, S_TASK_ID, &local_id) == ESPANK_SUCCESS && local_id == 0)
			attach_record(&context);
		/* With --container-workdir, from the container's / (pyxis: a relative one is the container's). */
		if (container_join_user(&context.container, err, sizeof(err)) < 0 ||
		    container_chdir(container_args.workdir != NULL ? "/" : context.job.cwd, err, sizeof(err)) < 0) {
			pyxis_error("%s", err);
			goto done;
		}
	}
	/* --container-workdir, as the user inside, as pyxis does (relative: to the container's /). */
	if (container_args.workdir != NULL && chdir(container_args.workdir) < 0) {
		pyxis_error(PLUGIN_NAME ": couldn't chdir to %s: %m", container_args.workdir);
		goto done;
	}
	/* As pyxis: chown and set*id succeed in an unprivileged job's container (apt, dpkg). */
	if (context.job.uid != 0 && seccomp_fake_ids(err, sizeof(err)) < 0) {
		pyxis_error("%s", err);
		goto done;
	}
	pyxis_stamp("joined");
	rc = 0;
done:
	return rc;
}

/*
 * slurm_spank_task_exit, S_CTX_REMOTE: in slurmstepd, as root, as each task's exit
 * is collected, before srun hears of it. After the node's last task,
 * --container-save saves the step's merged view (as pyxis's last task exports it).
 */
int pyxis_slurmstepd_task_exit(spank_t sp, int ac, char **av)
{
	static uint32_t exited;
	uint32_t tasks = 0;
	char err[ERROR_MAX];

	(void)ac;
	(void)av;
	if (!context.active || context.error[0] != '\0' || container_args.save == NULL || context.container.attach)
		return 0;
	if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &tasks) != ESPANK_SUCCESS || ++exited != tasks)
		return 0;
	pyxis_info(PLUGIN_NAME ": saving the container's filesystem at %s", container_args.save);
	if (save_container(&context.container, &context.job, container_args.save, err, sizeof(err)) < 0) {
		pyxis_error("%s", err);
		return -1;
	}
	return 0;
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
	if (context.active)
		pyxis_stamp("exit");
	step_teardown(&context);
	if (context.active)
		pyxis_stamp("exit_end");
	return 0;
}
