/*
 * enroot_fe.c on its own (tests/e2e/56-enroot.bats, bench): run as the job user with the
 * environment the stub gives `enroot start` (env -i ...), it does what the runtime's child
 * does: enroot_fe_exec, or, when that returns, says why on stderr and exits 3.
 *   enroot_fe_check ENROOT RC NAME CMD...
 */
#include <stdio.h>
#include <string.h>

#include "../enroot_fe.h"

extern char **environ;

int main(int argc, char *argv[])
{
	struct child_env env = CHILD_ENV_INIT;
	struct enroot_fe fe;
	char why[PATH_MAX + 128];
	char **e;

	if (argc < 5) {
		fprintf(stderr, "usage: enroot_fe_check ENROOT RC NAME CMD...\n");
		return 2;
	}
	for (e = environ; *e != NULL; ++e)
		child_env_put(&env, "%s", *e);
	if (enroot_fe_recognise(argv[1], &fe, why, sizeof(why)) == 0)
		enroot_fe_exec(&fe, &env, argv[2], argv[3], (const char *const *)argv + 4, why, sizeof(why));
	fprintf(stderr, "enroot_fe_check: %s\n", why);
	return 3;
}
