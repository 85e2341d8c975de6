/*
 * fuse.c (with child.c and lock.c) on its own, without Slurm: mounts IMG as
 * slurmstepd would for a cold step of USER (effective uid the user's, as in
 * user_init), runs CMD as the user in the mount's namespace with the rootfs as
 * its argument, then releases.
 *
 *   fuse_mount USER_DIR NAME UID GID IMG CMD...
 *
 * Prints "rootfs <path>", CMD's output, "mount <ms> ms", and after release
 * "daemon gone" once squashfuse_ll has exited. Used by tests/e2e/70-fuse.bats.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../child.h"
#include "../fuse.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct fuse_mount m;
	struct pyxis_job user = { .jobid = 7, .stepid = 0 };
	char daemon_bin[4096], why[512], err[1024];
	double started;
	pid_t pid;
	int status;

	if (argc < 7) {
		fprintf(stderr, "usage: %s USER_DIR NAME UID GID IMG CMD...\n", argv[0]);
		return 2;
	}
	if (getcwd(user.cwd, sizeof(user.cwd)) == NULL)
		strcpy(user.cwd, "/");
	user.uid = (uid_t)atoi(argv[3]);
	user.gid = (gid_t)atoi(argv[4]);
	if (fuse_available("/usr/local/bin:/usr/bin:/bin", daemon_bin, sizeof(daemon_bin), why, sizeof(why)) < 0) {
		printf("unavailable: %s\n", why);
		return 3;
	}
	/* As in user_init: real uid 0, effective ids the job user's. */
	if (setegid(user.gid) < 0 || seteuid(user.uid) < 0)
		return 1;
	started = now_ms();
	if (fuse_mount_image(daemon_bin, argv[5], NULL, argv[1], argv[2], &user, &m, err, sizeof(err)) < 0) {
		printf("error: %s\n", err);
		return 1;
	}
	printf("mount %.0f ms\nrootfs %s\n", now_ms() - started, m.rootfs);
	fflush(stdout);
	if (seteuid(0) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		if (setns(m.mntns_fd, CLONE_NEWNS) < 0 || child_become(&user) < 0) {
			perror("enter");
			_exit(126);
		}
		execvp(argv[6], argv + 6);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	fuse_release(&m);
	printf(m.daemon < 0 ? "daemon gone\n" : "daemon still running\n");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
