/*
 * enroot's front end, done by the stub (issue 22): for an enroot whose files
 * it recognises (enroot_fe_recognise, in slurmstepd before the runtime's
 * child starts), the child execs enroot-nsenter with exactly the argv and the
 * environment `enroot start [--rc RC] NAME sh -c CMD` would give it
 * (bin/enroot's configuration section, enroot.conf and enroot.conf.d read as
 * it reads them, enroot::start and runtime::start), skipping the front end's
 * bash, its ~2000 lines of libraries and its processes (bash -n, nproc,
 * mkdir, readlink). Anything the stub cannot say exactly (another version or
 * a patched file, a value in enroot.conf with an expansion, a file it cannot
 * read, a check that would fail) leaves the step to `enroot start` itself.
 * docs/srun.md, "enroot's front end", says what is read and why it is the same.
 */
#ifndef PYXIS_CACHE_ENROOT_FE_H
#define PYXIS_CACHE_ENROOT_FE_H

#include <limits.h>

#include "child.h"

struct enroot_fe {
	int ok;                      /* recognised: the fields below are set */
	char conf[PATH_MAX];         /* enroot.conf as bin/enroot names it */
	char libdir[PATH_MAX];       /* ENROOT_LIBRARY_PATH's default */
	char sysconfdir[PATH_MAX];   /* ENROOT_SYSCONF_PATH's default */
	char interp[PATH_MAX];       /* the program of its #! line (env) */
};

/*
 * Whether bin/enroot (enroot, an absolute path) and the libraries it sources are
 * enroot 4.1.2's, byte for byte once bin/enroot's install paths are put back as
 * enroot.in had them (any prefix). Fills fe.
 * 0 when recognised, or -1 with the reason in why.
 */
int enroot_fe_recognise(const char *enroot, struct enroot_fe *fe, char *why, size_t whylen);

/*
 * In the runtime's child, as the job user: env is the environment the stub
 * gives `enroot start` (its PATH first in it), rc its --rc ("" for none), name
 * the container's name, cmd what runs in it (NULL-terminated). Execs
 * enroot-nsenter as the front end would; returns only when it cannot say the
 * same (then nothing the front end would not do was done), with the reason in why.
 */
void enroot_fe_exec(const struct enroot_fe *fe, struct child_env *env, const char *rc, const char *name,
		    const char *const cmd[], char *why, size_t whylen);

#endif /* PYXIS_CACHE_ENROOT_FE_H */
