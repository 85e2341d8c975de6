/*
 * Child processes of slurmstepd, pyxis enroot.c style: stdin at /dev/null,
 * stdout and stderr in memfds, privileges dropped completely before the
 * child's code runs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

int child_find_executable(const char *name, char *buf, size_t len)
{
	const char *dir = PYXIS_CACHE_PATH;
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
static void read_capture(int fd, char *buf, size_t len)
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

/*
 * In the child: close every descriptor above stderr. slurmstepd holds some
 * without O_CLOEXEC (its sockets, other plugins' files), and the child runs as
 * the job user, who may ptrace it. close_range(2) since Linux 5.9; else by
 * the list in /proc/self/fd.
 */
static void close_inherited(void)
{
	struct dirent *d;
	DIR *dir;
	int fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	dir = opendir("/proc/self/fd");
	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		fd = atoi(d->d_name);
		if (fd > STDERR_FILENO && fd != dirfd(dir))
			close(fd);
	}
	closedir(dir);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Wait for the child, but never for ever: the child runs as the job user, who
 * can SIGSTOP it (or a process it waits for). A stopped child is killed at
 * once; one still running after CHILD_TIMEOUT_SECONDS is killed too. Killing
 * its process group takes what it started (unsquashfs) with it. The pidfd
 * wakes us the moment it exits; without one (Linux < 5.3) we poll.
 */
static int wait_child(pid_t pid, int *status, char *err, size_t errlen)
{
	long long deadline = now_ms() + CHILD_TIMEOUT_SECONDS * 1000LL;
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	const char *why = NULL;
	pid_t done;
	int rc = -1;

#ifdef SYS_pidfd_open
	pfd.fd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	for (;;) {
		done = waitpid(pid, status, WNOHANG | WUNTRACED);
		if (done < 0 && errno != EINTR) {
			snprintf(err, errlen, "waitpid: %m");
			goto fail;
		}
		if (done == pid && !WIFSTOPPED(*status))
			break;
		if (done == pid)
			why = "was stopped (SIGSTOP or the like)";
		else if (now_ms() >= deadline)
			why = "did not finish in " CHILD_TIMEOUT_TEXT;
		if (why != NULL) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			snprintf(err, errlen, "%s, killed", why);
			goto fail;
		}
		if (pfd.fd >= 0)
			poll(&pfd, 1, 200);
		else
			usleep(10000);
	}
	rc = 0;
fail:
	if (pfd.fd >= 0)
		close(pfd.fd);
	return rc;
}

typedef int (*child_fn)(void *arg);

/* fn(arg) in a child, as child_exec says; the exit status, or -1 with the reason in output->err. */
static int child_run(child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, struct child_output *output)
{
	int out_fd = -1;
	int err_fd = -1;
	int null_fd;
	int status;
	sigset_t mask;
	pid_t pid;
	int rc = -1;

	output->out[0] = output->err[0] = '\0';

	out_fd = memfd_create("pyxis-cache-stdout", MFD_CLOEXEC);
	err_fd = memfd_create("pyxis-cache-stderr", MFD_CLOEXEC);
	if (out_fd < 0 || err_fd < 0) {
		snprintf(output->err, sizeof(output->err), "memfd_create: %m");
		goto fail;
	}

	pid = fork();
	if (pid < 0) {
		snprintf(output->err, sizeof(output->err), "fork: %m");
		goto fail;
	}

	if (pid == 0) {
		sigemptyset(&mask);
		sigprocmask(SIG_SETMASK, &mask, NULL);
		setpgid(0, 0);
		null_fd = open("/dev/null", O_RDONLY);
		if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
		    dup2(err_fd, STDERR_FILENO) < 0)
			_exit(126);
		close_inherited();
		if (become(user) < 0)
			_exit(126);
		if (chdir(cwd) < 0) {
			dprintf(STDERR_FILENO, "%s: %m\n", cwd);
			_exit(1);
		}
		_exit(fn(arg));
	}

	/* Before the wait: a stopped child's stdout is not read (the user may be rewriting it). */
	if (wait_child(pid, &status, output->err, sizeof(output->err)) < 0)
		goto fail;

	read_capture(out_fd, output->out, sizeof(output->out));
	read_capture(err_fd, output->err, sizeof(output->err));
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
	unsigned flags;
};

/* child_fn: execve an absolute path with a small fixed environment. */
static int exec_fn(void *arg)
{
	const struct exec_args *exec = arg;
	char path_env[] = "PATH=" PYXIS_CACHE_PATH;
	char home_env[PATH_MAX + 8];
	char *envp[] = { path_env, home_env, NULL };

	snprintf(home_env, sizeof(home_env), "HOME=%s", exec->home);
	if (exec->flags & CHILD_IGNORE_SIGTERM)
		signal(SIGTERM, SIG_IGN);
	execve(exec->argv[0], exec->argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", exec->argv[0]);
	return 127;
}

int child_exec(char *const argv[], const struct pyxis_job *user, const char *cwd, unsigned flags,
	       struct child_output *output)
{
	/* As before the split: a child whose uid is 0 gets /root. */
	struct exec_args exec = { .argv = argv, .home = user != NULL && user->uid != 0 ? user->home : "/root",
				  .flags = flags };

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
