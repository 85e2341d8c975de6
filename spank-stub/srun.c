/*
 * srun side (S_CTX_LOCAL): reject a bad request before the job step is even
 * launched. The options themselves live in args.c.
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
	int rc = -1;

	if (pyxis_args_apply_env(sp, 0) < 0) {
		snprintf(err, sizeof(err), PLUGIN_NAME ": out of memory");
		goto fail;
	}

	if (!pyxis_args_active()) {
		rc = 0;
		goto done;
	}

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
