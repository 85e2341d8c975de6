/*
 * Child processes of slurmstepd, pyxis enroot.c style: stdin at /dev/null,
 * stdout and stderr in memfds, privileges dropped completely before the
 * child's code runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

int child_find_executable(const char *name, const char *path, char *buf, size_t len)
{
	const char *dir = path;
	size_t n;
	int rc = -1;

	while (*dir != '\0') {
		n = strcspn(dir, ":");
		if (snprintf(buf, len, "%.*s/%s", (int)n, dir, name) < (int)len && access(buf, X_OK) == 0) {
			rc = 0;
			goto done;
		}
		dir += n;
		dir += strspn(dir, ":");
	}
	buf[0] = '\0';
done:
	return rc;
}

/* Read what a child wrote into a memfd: NUL-terminated, trailing newlines cut. */
void child_read_capture(int fd, char *buf, size_t len)
{
	ssize_t n;

	n = pread(fd, buf, len - 1, 0);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
}

/*
 * In the child: become who it should be. Children of user_init otherwise keep
 * the real uid 0 of slurmstepd, so privileges are dropped completely
 * (setgroups/setresgid/setresuid); root's children first regain euid 0.
 */
static int become(const struct pyxis_job *user)
{
	if (geteuid() != 0 && seteuid(0) < 0) {
		dprintf(STDERR_FILENO, "seteuid: %m\n");
		return -1;
	}
	if (user != NULL) {
		if (setgroups(user->ngids, user->gids) < 0 || setresgid(user->gid, user->gid, user->gid) < 0 ||
		    setresuid(user->uid, user->uid, user->uid) < 0) {
			dprintf(STDERR_FILENO, "couldn't drop privileges: %m\n");
			return -1;
		}
	} else if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		dprintf(STDERR_FILENO, "couldn't become root: %m\n");
		return -1;
	}
	return 0;
}

pid_t child_spawn(child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, int out_fd, int err_fd)
{
	int null_fd;
	sigset_t mask;
	pid_t pid;

	pid = fork();
	if (pid != 0)
		return pid;

	sigemptyset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0)
		_exit(126);
	if (become(user) < 0)
		_exit(126);
	if (chdir(cwd) < 0) {
		dprintf(STDERR_FILENO, "%s: %m\n", cwd);
		_exit(1);
	}
	_exit(fn(arg));
}

int child_run(child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, struct child_output *output)
{
	int out_fd = -1;
	int err_fd = -1;
	int status;
	pid_t pid;
	int rc = -1;

	output->out[0] = output->err[0] = '\0';

	out_fd = memfd_create("pyxis-cache-stdout", MFD_CLOEXEC);
	err_fd = memfd_create("pyxis-cache-stderr", MFD_CLOEXEC);
	if (out_fd < 0 || err_fd < 0) {
		snprintf(output->err, sizeof(output->err), "memfd_create: %m");
		goto fail;
	}

	pid = child_spawn(fn, arg, user, cwd, out_fd, err_fd);
	if (pid < 0) {
		snprintf(output->err, sizeof(output->err), "fork: %m");
		goto fail;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(output->err, sizeof(output->err), "waitpid: %m");
			goto fail;
		}
	}

	child_read_capture(out_fd, output->out, sizeof(output->out));
	child_read_capture(err_fd, output->err, sizeof(output->err));
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

fail:
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	return rc;
}

struct exec_args {
	char *const *argv;
	const char *home;
};

/* child_fn: execve an absolute path with a small fixed environment. */
static int exec_fn(void *arg)
{
	const struct exec_args *exec = arg;
	char path_env[] = "PATH=" PYXIS_CACHE_PATH;
	char home_env[PATH_MAX + 8];
	char *envp[] = { path_env, home_env, NULL };

	snprintf(home_env, sizeof(home_env), "HOME=%s", exec->home);
	execve(exec->argv[0], exec->argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", exec->argv[0]);
	return 127;
}

int child_exec(char *const argv[], const struct pyxis_job *user, const char *cwd, struct child_output *output)
{
	/* As before the split: a child whose uid is 0 gets /root. */
	struct exec_args exec = { .argv = argv, .home = user != NULL && user->uid != 0 ? user->home : "/root" };

	return child_run(exec_fn, &exec, user, cwd, output);
}

void child_error(const char *what, int status, const struct child_output *output, char *err, size_t errlen)
{
	int n = (int)strcspn(output->err, "\n");

	if (n == 0)
		snprintf(err, errlen, PLUGIN_NAME ": %s failed (exit status %d)", what, status);
	else if (strncmp(output->err, PLUGIN_NAME ":", strlen(PLUGIN_NAME ":")) == 0)
		snprintf(err, errlen, "%.*s", n, output->err);
	else
		snprintf(err, errlen, PLUGIN_NAME ": %s: %.*s", what, n, output->err);
}
