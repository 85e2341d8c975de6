/*
 * The runtimes that put a step in a rootfs: bwrap (an unprivileged user
 * namespace mapping the user to itself) or enroot (start of a named container
 * under ENROOT_DATA_PATH). Either one runs "sh -c 'kill -STOP $$'" in the
 * container; once that process is stopped, its namespaces are all set up and
 * the stub opens them, then kills it. See docs/srun.md, "Running the task in
 * the rootfs".
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "common.h"
#include "runtime.h"

/* What runs in the container until the stub has its namespaces. */
#define STOP_COMMAND "kill -STOP $$; exit 0"

#define ENV_MAX 512

int runtime_find(enum container_runtime runtime, char *buf, size_t len, const char **search_path, char *err,
		 size_t errlen)
{
	const char *name = pyxis_config_runtime_name(runtime);
	const char *path = getenv("PATH");

	if (path == NULL || path[0] == '\0')
		path = PYXIS_CACHE_PATH;
	*search_path = path;
	if (child_find_executable(name, path, buf, len) == 0)
		return 0;
	snprintf(err, errlen, PLUGIN_NAME ": container_cache_runtime: %s: not found in slurmd's PATH (%.800s)", name,
		 path);
	return -1;
}

static int home_is_dir(const char *home)
{
	struct stat st;

	return strcmp(home, "/") != 0 && stat(home, &st) == 0 && S_ISDIR(st.st_mode);
}

struct start {
	const struct runtime_task *task;
	int info_fd; /* bwrap: where it writes its sandbox's pid */
};

/* child_fn, as the job user: exec bwrap around the stopping shell. */
static int bwrap_exec(void *arg)
{
	const struct start *start = arg;
	const struct runtime_task *task = start->task;
	const struct pyxis_job *job = task->job;
	char info[16], path_env[PATH_MAX + 8], home_env[PATH_MAX + 8];
	char *envp[] = { path_env, home_env, NULL };
	const char *argv[40];
	int n = 0;

	snprintf(info, sizeof(info), "%d", start->info_fd);
	fcntl(start->info_fd, F_SETFD, 0);
	argv[n++] = task->runtime_bin;
	argv[n++] = "--die-with-parent";
	argv[n++] = "--info-fd";
	argv[n++] = info;
	argv[n++] = "--bind";
	argv[n++] = task->rootfs;
	argv[n++] = "/";
	argv[n++] = "--proc";
	argv[n++] = "/proc";
	argv[n++] = "--dev";
	argv[n++] = "/dev";
	argv[n++] = "--tmpfs";
	argv[n++] = "/tmp";
	if (home_is_dir(job->home)) {
		argv[n++] = "--bind";
		argv[n++] = job->home;
		argv[n++] = job->home;
	}
	if (strcmp(job->cwd, "/") != 0) {
		argv[n++] = "--bind";
		argv[n++] = job->cwd;
		argv[n++] = job->cwd;
	}
	if (!task->writable) {
		argv[n++] = "--remount-ro";
		argv[n++] = "/";
	}
	argv[n++] = "--";
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = STOP_COMMAND;
	argv[n] = NULL;
	snprintf(path_env, sizeof(path_env), "PATH=%s", task->search_path);
	snprintf(home_env, sizeof(home_env), "HOME=%s", job->home);
	execve(task->runtime_bin, (char **)argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", task->runtime_bin);
	return 127;
}

/* The job's variables enroot's hooks may use (as pyxis passes them). */
static int passed_to_enroot(const char *var)
{
	static const char *const prefixes[] = { "TERM=", "SLURM_", "NVIDIA_", "MELLANOX_", "PMIX_", NULL };
	int i;

	for (i = 0; prefixes[i] != NULL; ++i)
		if (strncmp(var, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Append "NAME=<fmt...>" to envp (NULL-terminated; allocations live until exec). */
static void add_env(char **envp, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_env(char **envp, int *n, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (*n >= ENV_MAX - 1)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		envp[(*n)++] = s;
	va_end(ap);
	envp[*n] = NULL;
}

/*
 * child_fn, as the job user: exec "enroot start" with every path enroot
 * writes to in the step's own directory, so that neither /run/enroot nor the
 * user's home has to exist.
 */
static int enroot_exec(void *arg)
{
	const struct start *start = arg;
	const struct runtime_task *task = start->task;
	const struct pyxis_job *job = task->job;
	char bin[PATH_MAX];
	char mount[2 * PATH_MAX + 64];
	char *envp[ENV_MAX];
	const char *argv[16];
	int n = 0;
	int i;

	snprintf(bin, sizeof(bin), "%s", task->runtime_bin);
	envp[0] = NULL;
	add_env(envp, &n, "PATH=%s:%s", dirname(bin), task->search_path);
	add_env(envp, &n, "HOME=%s", job->home);
	add_env(envp, &n, "ENROOT_DATA_PATH=%s", task->enroot_data);
	add_env(envp, &n, "ENROOT_RUNTIME_PATH=%s/runtime", task->enroot_paths);
	add_env(envp, &n, "ENROOT_CACHE_PATH=%s/cache", task->enroot_paths);
	add_env(envp, &n, "ENROOT_CONFIG_PATH=%s/config", task->enroot_paths);
	add_env(envp, &n, "ENROOT_TEMP_PATH=%s/temp", task->enroot_paths);
	add_env(envp, &n, "ENROOT_ROOTFS_WRITABLE=%s", task->writable ? "y" : "n");
	add_env(envp, &n, "ENROOT_MOUNT_HOME=%s", home_is_dir(job->home) ? "y" : "n");
	for (i = 0; task->job_env != NULL && task->job_env[i] != NULL; ++i)
		if (passed_to_enroot(task->job_env[i]))
			add_env(envp, &n, "%s", task->job_env[i]);

	n = 0;
	argv[n++] = task->runtime_bin;
	argv[n++] = "start";
	if (strcmp(job->cwd, "/") != 0) {
		snprintf(mount, sizeof(mount), "%s:%s:none:x-create=dir,rbind,rw,nosuid", job->cwd, job->cwd);
		argv[n++] = "--mount";
		argv[n++] = mount;
	}
	argv[n++] = task->enroot_name;
	argv[n++] = "sh";
	argv[n++] = "-c";
	argv[n++] = STOP_COMMAND;
	argv[n] = NULL;
	execve(task->runtime_bin, (char **)argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", task->runtime_bin);
	return 127;
}

/* bwrap's sandbox pid, from its --info-fd JSON ({"child-pid": N, ...}); -1 if it wrote none. */
static pid_t read_info_pid(int fd)
{
	char buf[512];
	size_t len = 0;
	ssize_t n;
	const char *p;
	char *end;
	long pid;

	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		p = strstr(buf, "\"child-pid\"");
		if (p == NULL || (p = strchr(p, ':')) == NULL)
			continue;
		pid = strtol(p + 1, &end, 10);
		if (*end != '\0' && pid > 0)
			return (pid_t)pid;
	}
	return -1;
}

/* 1 once pid is stopped, 0 while it runs, -1 when it is gone. */
static int is_stopped(pid_t pid)
{
	char path[64], buf[512];
	const char *state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	state = strrchr(buf, ')');
	if (state == NULL || state[1] == '\0')
		return -1;
	return state[2] == 'T' || state[2] == 't' ? 1 : state[2] == 'Z' || state[2] == 'X' ? -1 : 0;
}

/* Wait until target has stopped itself; -1 if runtime (our child) ends first. */
static int wait_stopped(pid_t runtime, pid_t target, int *status)
{
	const struct timespec tick = { .tv_nsec = 2 * 1000 * 1000 };
	int stopped;

	for (;;) {
		if (waitpid(runtime, status, WNOHANG) == runtime)
			return -1;
		stopped = is_stopped(target);
		if (stopped != 0)
			return stopped > 0 ? 0 : -1;
		nanosleep(&tick, NULL);
	}
}

static char *read_environ(pid_t pid, size_t *len)
{
	char path[64];
	char *buf = NULL, *grown;
	size_t size = 0, cap = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (cap - size < 4096) {
			grown = realloc(buf, cap + 65536);
			if (grown == NULL)
				break;
			buf = grown;
			cap += 65536;
		}
		n = read(fd, buf + size, cap - size - 1);
		if (n <= 0)
			break;
		size += (size_t)n;
	}
	close(fd);
	if (buf != NULL) {
		buf[size] = '\0';
		*len = size;
	}
	return buf;
}

static int open_ns(pid_t pid, const char *ns)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int runtime_start(const struct runtime_task *task, struct container *c, char *err, size_t errlen)
{
	const char *name = pyxis_config_runtime_name(task->runtime);
	struct start start = { .task = task, .info_fd = -1 };
	struct child_output output;
	int info[2] = { -1, -1 };
	int log_fd;
	int status = 0;
	pid_t pid, target = -1;
	int rc = -1;

	log_fd = memfd_create("pyxis-cache-runtime", MFD_CLOEXEC);
	if (log_fd < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": memfd_create: %m");
		goto fail;
	}
	if (task->runtime == RUNTIME_BWRAP) {
		if (pipe2(info, O_CLOEXEC) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": pipe: %m");
			goto fail;
		}
		start.info_fd = info[1];
	}
	pid = child_spawn(task->runtime == RUNTIME_BWRAP ? bwrap_exec : enroot_exec, &start, task->job, "/", log_fd,
			  log_fd);
	if (pid < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": fork: %m");
		goto fail;
	}
	if (task->runtime == RUNTIME_BWRAP) {
		close(info[1]);
		info[1] = -1;
		target = read_info_pid(info[0]);
	} else {
		target = pid;
	}

	if (target < 0 || wait_stopped(pid, target, &status) < 0) {
		if (target >= 0)
			kill(target, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		child_read_capture(log_fd, output.err, sizeof(output.err));
		child_error(name, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), &output, err,
			    errlen);
		goto fail;
	}

	c->userns_fd = open_ns(target, "user");
	c->mntns_fd = open_ns(target, "mnt");
	if (c->userns_fd < 0 || c->mntns_fd < 0)
		snprintf(err, errlen, PLUGIN_NAME ": %s: couldn't open the container's namespaces: %m", name);
	else if (task->runtime == RUNTIME_ENROOT && (c->environ = read_environ(target, &c->environ_len)) == NULL)
		snprintf(err, errlen, PLUGIN_NAME ": %s: couldn't read the container's environment: %m", name);
	else
		rc = 0;
	kill(target, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;

fail:
	if (info[0] >= 0)
		close(info[0]);
	if (info[1] >= 0)
		close(info[1]);
	if (log_fd >= 0)
		close(log_fd);
	return rc;
}

int runtime_join_mounts(const struct container *c, const char *cwd, char *err, size_t errlen)
{
	if (setns(c->mntns_fd, CLONE_NEWNS) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": couldn't join the container's mount namespace: %m");
		return -1;
	}
	/* The working directory is bound at the same path; "/" when it could not be. */
	if (chdir(cwd) < 0 && chdir("/") < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": chdir %s: %m", cwd);
		return -1;
	}
	return 0;
}

int runtime_join_user(const struct container *c, char *err, size_t errlen)
{
	struct stat ns, self;

	/* bwrap run by root makes no user namespace, and joining one's own fails. */
	if (fstat(c->userns_fd, &ns) == 0 && stat("/proc/self/ns/user", &self) == 0 && ns.st_dev == self.st_dev &&
	    ns.st_ino == self.st_ino)
		return 0;
	if (setns(c->userns_fd, CLONE_NEWUSER) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": couldn't join the container's user namespace: %m");
		return -1;
	}
	return 0;
}

void runtime_release(struct container *c)
{
	if (c->userns_fd >= 0)
		close(c->userns_fd);
	if (c->mntns_fd >= 0)
		close(c->mntns_fd);
	c->userns_fd = c->mntns_fd = -1;
	free(c->environ);
	c->environ = NULL;
	c->environ_len = 0;
}
