/*
 * seccomp.c's filter on its own, without Slurm or a container: run as a user other
 * than root, sets no_new_privs (the task has CAP_SYS_ADMIN in its user namespace
 * instead), installs the filter unless given "none", then makes each call the filter
 * fakes and one it leaves alone, and prints one line per call:
 *
 *   seccomp_check FILE [none]
 *
 * FILE is one of the user's own. Each line is "NAME rc=R errno=E" (E is 0 when R
 * is not -1); "ids U G fsuid F" at the end shows that nothing changed. Used by
 * tests/e2e/57-pyxis-options.bats.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../seccomp.h"

static void show(const char *name, long rc)
{
	printf("%s rc=%ld errno=%d\n", name, rc, rc == -1 ? errno : 0);
}

int main(int argc, char **argv)
{
	char err[1024];
	struct stat st;

	if (argc < 2 || getuid() == 0) {
		fprintf(stderr, "usage: seccomp_check FILE [none], as a user other than root\n");
		return 2;
	}
	if (argc < 3 || strcmp(argv[2], "none") != 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_fake_ids(err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}
	errno = 0;
	show("chown", chown(argv[1], 12345, 12345));
	show("lchown", lchown(argv[1], 12345, 12345));
	show("setgroups", setgroups(0, NULL));
	show("setresgid", setresgid(12345, 12345, 12345));
	show("setresuid", setresuid(12345, 12345, 12345));
	show("setuid", setuid(12345));
	/* setfsuid returns the previous fsuid (never -1): the filter's 0, or the real one. */
	show("setfsuid", setfsuid(12345));
	show("setfsuid-query", setfsuid(-1));
	show("setfsgid-query", setfsgid(-1));
	/* Not a faked call: the kernel still refuses it. */
	show("chmod-root", chmod("/", 0755));
	if (stat(argv[1], &st) == 0)
		printf("file %u:%u\n", (unsigned)st.st_uid, (unsigned)st.st_gid);
	printf("ids %u %u fsuid %d\n", (unsigned)getuid(), (unsigned)getgid(), setfsuid(-1));
	return 0;
}
