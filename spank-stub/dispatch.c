/*
 * Entry points: hand each SPANK callback to the file for the context it runs
 * in. srun.c is the client side (srun's S_CTX_LOCAL; sbatch's and salloc's
 * S_CTX_ALLOCATOR, with pyxis's sbatch_support), slurmstepd.c the node side
 * (S_CTX_REMOTE). slurmd's job epilog removes a job's named containers
 * (named.c, never failing); every other context (slurmd, the prolog) is left
 * alone, so a misconfiguration can never fail slurmd or drain a node.
 */
#include <slurm/spank.h>

#include "named.h"
#include "srun.h"
#include "slurmstepd.h"

SPANK_PLUGIN(pyxis_cache, 1)

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	switch (spank_context()) {
	case S_CTX_LOCAL:
		return pyxis_srun_init(sp, ac, av);
	case S_CTX_ALLOCATOR:
		return pyxis_alloc_init(sp, ac, av);
	case S_CTX_REMOTE:
		return pyxis_slurmstepd_init(sp, ac, av);
	default:
		return 0;
	}
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	switch (spank_context()) {
	case S_CTX_LOCAL:
		return pyxis_srun_post_opt(sp, ac, av);
	case S_CTX_ALLOCATOR:
		return pyxis_alloc_post_opt(sp, ac, av);
	case S_CTX_REMOTE:
		return pyxis_slurmstepd_post_opt(sp, ac, av);
	default:
		return 0;
	}
}

int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	return pyxis_slurmstepd_user_init(sp, ac, av);
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	return pyxis_slurmstepd_task_init_privileged(sp, ac, av);
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	return pyxis_slurmstepd_task_init(sp, ac, av);
}

int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	return pyxis_slurmstepd_task_exit(sp, ac, av);
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	return pyxis_slurmstepd_exit(sp, ac, av);
}

/* slurmd's job epilog (root): a job's named containers go with it (container_scope=job). */
int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_JOB_SCRIPT)
		return 0;
	return named_job_epilog(sp, ac, av);
}
