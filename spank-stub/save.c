/*
 * --container-save: at the step's end, what the step ran in saved as a squashfs, as
 * pyxis saves it with "enroot export": mksquashfs -all-root, as the job user. In
 * cache mode that is the step's merged view (its layer over the entry, or over a
 * cold step's FUSE mount), read in the step's mount namespace where <point>/root is
 * the overlay; without, the step's own unpacked rootfs. No Slurm calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "mounter.h"
#include "save.h"

struct save_task {
	const char *bin;    /* mksquashfs */
	const char *source; /* <point>/root in the step's mount namespace, or the step's rootfs */
	const char *path;   /* the squashfs, absolute */
	uid_t uid;
	gid_t gid;
};

/* mksquashfs of t->source into out, in this process's ids and namespaces: its exit status. */
static int run_mksquashfs(const struct save_task *t, const char *out, char *const envp[])
{
	char *argv[] = { "mksquashfs", (char *)t->source, (char *)out, "-noappend", "-all-root", "-no-progress",
			 "-quiet", "-e", LOCK_FILE, ".lock", NULL };
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0) {
		dprintf(STDERR_FILENO, "fork: %m\n");
		return 126;
	}
	if (pid == 0) {
		execve(t->bin, argv, envp);
		dprintf(STDERR_FILENO, "%s: %m\n", t->bin);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 126;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Where the squashfs is written before it is renamed over t->path: a name of its own in
 * the same directory (the target's, a symlink resolved), or "" when that directory is
 * not the user's to write (then the target is written in place, as enroot export does).
 */
static void temporary_beside(const struct save_task *t, char *target, size_t target_len, char *tmp, size_t tmp_len)
{
	char dir[PATH_MAX];
	const char *base;
	int n;

	tmp[0] = '\0';
	if (realpath(t->path, target) == NULL)
		snprintf(target, target_len, "%s", t->path);
	base = strrchr(target, '/');
	if (base == NULL || (size_t)(base - target) >= sizeof(dir))
		return;
	snprintf(dir, sizeof(dir), "%.*s", base == target ? 1 : (int)(base - target), target);
	if (access(dir, W_OK | X_OK) < 0)
		return;
	n = snprintf(tmp, tmp_len, "%s/.%s.pyxis-cache-save.%d", dir, base + 1, (int)getpid());
	if (n < 0 || (size_t)n >= tmp_len)
		tmp[0] = '\0';
}

/*
 * child_fn, as the job user in the step's mount namespace. Root of a user namespace
 * of its own that maps 0 to the user (as enroot export runs mksquashfs): the user's
 * files whatever their modes (the mount points a runtime made with mode 0), none else.
 * The squashfs is written beside the target and renamed over it once whole: the step
 * may be saving over the image it runs from (a cold step reads it through its mount
 * while mksquashfs writes), and a creator, or other steps and nodes, may be reading it.
 */
static int save_exec(void *arg)
{
	const struct save_task *t = arg;
	struct child_env env = CHILD_ENV_INIT;
	char map[64], target[PATH_MAX], tmp[PATH_MAX];
	int status;

	/* Its own /proc/self files are root's while it is not dumpable (it changed ids); it is the user's now. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0) {
		dprintf(STDERR_FILENO, "unshare a user namespace: %m\n");
		return 126;
	}
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)t->uid);
	if (write_whole("/proc/self/uid_map", map) < 0 || write_whole("/proc/self/setgroups", "deny") < 0) {
		dprintf(STDERR_FILENO, "the user namespace's ids: %m\n");
		return 126;
	}
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)t->gid);
	if (write_whole("/proc/self/gid_map", map) < 0) {
		dprintf(STDERR_FILENO, "the user namespace's ids: %m\n");
		return 126;
	}
	child_env_path(&env, CHILD_PATH_SYSTEM, NULL);
	temporary_beside(t, target, sizeof(target), tmp, sizeof(tmp));
	if (tmp[0] == '\0')
		return run_mksquashfs(t, t->path, env.envp);
	status = run_mksquashfs(t, tmp, env.envp);
	if (status == 0 && rename(tmp, target) < 0) {
		dprintf(STDERR_FILENO, "rename %s to %s: %m\n", tmp, target);
		status = 1;
	}
	if (status != 0)
		unlink(tmp);
	return status;
}

int save_container(const struct container *c, const struct pyxis_job *job, const char *save, char *err,
		   size_t errlen)
{
	struct save_task t = { .uid = job->uid, .gid = job->gid };
	struct child ch = CHILD_INIT;
	struct child_output output = { .out = "", .err = "" };
	char bin[PATH_MAX], path[PATH_MAX];
	int status = -1;
	int n;

	if (c->root.path[0] == '\0') {
		snprintf(err, errlen, PLUGIN_NAME ": --container-save: the step has no rootfs of its own to save");
		return -1;
	}
	/* A relative path is the job's working directory's, as pyxis reads it. */
	if (save[0] == '/')
		n = snprintf(path, sizeof(path), "%s", save);
	else
		n = snprintf(path, sizeof(path), "%s/%s", job->cwd, save);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-save: path too long");
		return -1;
	}
	if (child_find_executable("mksquashfs", child_search_path(), bin, sizeof(bin)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-save: mksquashfs: not found in slurmd's PATH");
		return -1;
	}
	t.bin = bin;
	t.source = c->root.path;
	t.path = path;
	if (child_start(&ch, save_exec, &t, job, job->cwd, -1, c->root.mntns_fd, output.err, sizeof(output.err)) < 0 ||
	    child_wait(&ch, NULL, NULL, &status, output.err, sizeof(output.err)) < 0) {
		child_error("--container-save", -1, &output, err, errlen);
		child_end(&ch);
		return -1;
	}
	if (status != 0)
		child_read_capture(ch.err_fd, output.err, sizeof(output.err));
	child_end(&ch);
	if (status != 0) {
		child_error("--container-save", status, &output, err, errlen);
		return -1;
	}
	return 0;
}
