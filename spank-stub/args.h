/*
 * The --container-* options, registered in srun and in slurmstepd, their
 * environment equivalents and their checks.
 */
#ifndef PYXIS_CACHE_ARGS_H
#define PYXIS_CACHE_ARGS_H

#include <stddef.h>

#include <slurm/spank.h>

struct container_args {
	int cache;    /* --container-cache or PYXIS_CONTAINER_CACHE=1 */
	char *image;  /* --container-image or PYXIS_CONTAINER_IMAGE */
	int writable; /* --container-writable */
	char *save;   /* --container-save */
	char *name;   /* --container-name, ignored in cache mode */
};

extern struct container_args container_args;

/* Register the --container-* options (srun and slurmstepd). */
int pyxis_args_register(spank_t sp);

/*
 * Fill what the command line left unset from PYXIS_CONTAINER_CACHE and
 * PYXIS_CONTAINER_IMAGE: the process environment in srun, the job's
 * environment in slurmstepd. The command line wins.
 */
int pyxis_args_apply_env(spank_t sp, int remote);

/* 1 when the step asks for a container at all. */
int pyxis_args_active(void);

/* Returns 0, or -1 with the contract's message in err. */
int pyxis_args_check(char *err, size_t errlen);

#endif /* PYXIS_CACHE_ARGS_H */
