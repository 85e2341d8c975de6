/*
 * The client side: srun (S_CTX_LOCAL), and sbatch and salloc
 * (S_CTX_ALLOCATOR) with pyxis's sbatch_support: reject a bad request before
 * the job step (or the job) is even launched. The options themselves live in
 * args.c.
 */
#include <stdio.h>

#include <slurm/spank.h>

#include "args.h"
#include "common.h"
#include "config.h"
#include "log.h"
#include "srun.h"

/*
 * slurm_spank_init, S_CTX_LOCAL: in srun, as the user who runs srun.
 */
int pyxis_srun_init(spank_t sp, int ac, char **av)
{
	(void)ac; (void)av;
	return pyxis_args_register(sp);
}

/*
 * slurm_spank_init_post_opt, S_CTX_LOCAL: in srun, as the user who runs srun,
 * after option parsing. A non-zero return makes srun print the error and exit
 * non-zero before anything is launched.
 */
int pyxis_srun_post_opt(spank_t sp, int ac, char **av)
{
	struct plugin_config cfg;
	char err[ERROR_MAX];
	int env_rc;
	int rc = -1;

	/* PYXIS_CONTAINER_IMAGE is read first: the other variables matter only to a step with a container. */
	env_rc = pyxis_args_apply_env(sp, 0, err, sizeof(err));
	if (!pyxis_args_active()) {
		rc = 0;
		goto done;
	}
	if (env_rc < 0)
		goto fail;

	if (pyxis_args_check(err, sizeof(err)) < 0)
		goto fail;

	if (pyxis_config_parse(&cfg, ac, av, err, sizeof(err)) < 0)
		goto fail;

	rc = 0;
	goto done;

fail:
	pyxis_error("%s", err);
done:
	return rc;
}

/* The options were registered in sbatch or salloc. */
static int alloc_registered;

/*
 * slurm_spank_init, S_CTX_ALLOCATOR: in sbatch or salloc, as the user. With
 * pyxis's sbatch_support (the default) the options are registered: Slurm puts
 * their values in the job's environment, where slurmstepd finds them for the
 * batch script and for every step of a salloc. A configuration that does not
 * parse registers them too: the error is the job's only if it asks for a
 * container (pyxis_srun_post_opt).
 */
int pyxis_alloc_init(spank_t sp, int ac, char **av)
{
	struct plugin_config cfg;
	char err[ERROR_MAX];

	if (pyxis_config_parse(&cfg, ac, av, err, sizeof(err)) == 0 && !cfg.pyxis.sbatch_support)
		return 0;
	if (pyxis_args_register(sp) < 0)
		return -1;
	alloc_registered = 1;
	return 0;
}

/* slurm_spank_init_post_opt, S_CTX_ALLOCATOR: srun's checks, before the job is submitted. */
int pyxis_alloc_post_opt(spank_t sp, int ac, char **av)
{
	return alloc_registered ? pyxis_srun_post_opt(sp, ac, av) : 0;
}
