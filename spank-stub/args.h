/*
 * The --container-* options, registered in srun and in slurmstepd, their
 * environment equivalents and their checks.
 */
#ifndef PYXIS_CACHE_ARGS_H
#define PYXIS_CACHE_ARGS_H

#include <stddef.h>

#include <slurm/spank.h>

struct container_args {
	int cache;      /* --container-cache, or PYXIS_CONTAINER_CACHE true on a step with an image */
	int cache_flag; /* --container-cache on the command line: an error without an image */
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

/* pyxis's boolean words: 1, true, yes, y and 0, false, no, n; -1 for anything else. */
int pyxis_parse_bool(const char *s);

/*
 * 1 when the step asks for a container: it has an image, or --container-cache
 * was given on the command line (which the check then refuses without one).
 * PYXIS_CONTAINER_CACHE alone changes nothing.
 */
int pyxis_args_active(void);

/* Returns 0, or -1 with the contract's message in err. */
int pyxis_args_check(char *err, size_t errlen);

#endif /* PYXIS_CACHE_ARGS_H */
