/*
 * The runtimes that put a step in a rootfs: bwrap (an unprivileged user
 * namespace mapping the user to itself) or enroot (start of a named container
 * under ENROOT_DATA_PATH). Either one runs "sh -c 'kill -STOP $$; exit 0'" in
 * the container (container.c waits for that stop). See docs/srun.md,
 * "Running the task in the rootfs".
 */
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common.h"
#include "runtime.h"

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

/* child_fn, as the job user: exec bwrap around the stopping shell. */
static int bwrap_exec(void *arg)
{
	const struct runtime_task *task = arg;
	const struct pyxis_job *job = task->job;
	char info[16], path_env[PATH_MAX + 8], home_env[PATH_MAX + 8];
	char *envp[] = { path_env, home_env, NULL };
	const char *argv[40];
	int n = 0;

	snprintf(info, sizeof(info), "%d", RUNTIME_INFO_FD);
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
	argv[n++] = RUNTIME_STOP_COMMAND;
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
	const struct runtime_task *task = arg;
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
	argv[n++] = RUNTIME_STOP_COMMAND;
	argv[n] = NULL;
	execve(task->runtime_bin, (char **)argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", task->runtime_bin);
	return 127;
}

int runtime_exec(void *arg)
{
	const struct runtime_task *task = arg;

	return task->runtime == RUNTIME_BWRAP ? bwrap_exec(arg) : enroot_exec(arg);
}
