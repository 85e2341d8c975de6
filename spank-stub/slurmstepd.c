/*
 * slurmstepd side (S_CTX_REMOTE): everything that happens on the compute node.
 *
 *   init_post_opt  root, slurmstepd    read the options, check them and the config
 *   user_init      root, slurmstepd    prepare <base>/<uid> (root), get the rootfs
 *                                      (as the user), hold the in-use lock
 *   task_init      job user, the task  put the runtime in front of the task argv,
 *                                      or fail the task with the recorded error
 *   exit           root, slurmstepd    release the lock, remove a per-step rootfs
 *
 * Errors found before task_init are only recorded: a failing user_init makes
 * srun exit 0 and drains the node for sbatch, while a failing task_init makes
 * srun exit non-zero with the message on its stderr and leaves the node alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "common.h"
#include "config.h"
#include "slurmstepd.h"
#include "srun.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define REUSE_ATTEMPTS 3

/* Slurm >= 23.11; NULL at run time on older versions (weak). */
extern spank_err_t spank_prepend_task_argv(spank_t spank, int argc, const char *argv[]) __attribute__((weak));

static struct {
	int active;                 /* this step asked for a container */
	char error[ERROR_MAX];      /* first error, reported by task_init */
	struct plugin_config cfg;
	int ac;                     /* plugstack arguments, passed on with --set */
	char **av;
	uid_t uid;
	gid_t gid;
	gid_t *gids;                /* supplementary groups of the job */
	int ngids;
	uint32_t jobid;
	uint32_t stepid;
	char cwd[PATH_MAX];         /* job working directory, for relative images */
	char home[PATH_MAX];
	char runtime_bin[PATH_MAX]; /* bwrap or enroot */
	char rootfs[PATH_MAX];      /* what the task runs in */
	char enroot_data[PATH_MAX]; /* enroot: ENROOT_DATA_PATH */
	char enroot_name[NAME_MAX + 1];
	int lock_fd;                /* LOCK_SH on <entry>/.pyxis_cache_lock */
	char step_dir[PATH_MAX];    /* without cache mode: removed at exit */
	int step_lock_fd;           /* LOCK_SH on step_dir: tells the collector the step is alive */
} context = { .lock_fd = -1, .step_lock_fd = -1 };

struct child_output {
	char out[8192];
	char err[ERROR_MAX];
};

static void record_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void record_error(const char *fmt, ...)
{
	va_list ap;

	if (context.error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(context.error, sizeof(context.error), fmt, ap);
	va_end(ap);
	/* Log only: task_init sends it to srun (once). */
	slurm_info("%s", context.error);
}

static int find_executable(const char *name, char *buf, size_t len)
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

typedef int (*child_fn)(void *arg);

/*
 * Fork a child with stdin at /dev/null and stdout/stderr captured, running fn
 * as the job user (as_user) or as root, with cwd as working directory.
 * Children of user_init otherwise keep the real uid 0 of slurmstepd, so
 * privileges are dropped completely (setgroups/setresgid/setresuid).
 * Returns the exit status (signals as 128+N) or -1.
 */
static int run_child(child_fn fn, void *arg, int as_user, const char *cwd, struct child_output *output)
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
		null_fd = open("/dev/null", O_RDONLY);
		if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
		    dup2(err_fd, STDERR_FILENO) < 0)
			_exit(126);
		if (geteuid() != 0 && seteuid(0) < 0) {
			dprintf(STDERR_FILENO, "seteuid: %m\n");
			_exit(126);
		}
		if (as_user) {
			if (setgroups(context.ngids, context.gids) < 0 ||
			    setresgid(context.gid, context.gid, context.gid) < 0 ||
			    setresuid(context.uid, context.uid, context.uid) < 0) {
				dprintf(STDERR_FILENO, "couldn't drop privileges: %m\n");
				_exit(126);
			}
		} else if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			dprintf(STDERR_FILENO, "couldn't become root: %m\n");
			_exit(126);
		}
		if (chdir(cwd) < 0) {
			dprintf(STDERR_FILENO, "%s: %m\n", cwd);
			_exit(1);
		}
		_exit(fn(arg));
	}

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(output->err, sizeof(output->err), "waitpid: %m");
			goto fail;
		}
	}

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

/* child_fn: execve an absolute path with a small fixed environment. */
static int child_execve(void *arg)
{
	char *const *argv = arg;
	char path_env[] = "PATH=" PYXIS_CACHE_PATH;
	char home_env[PATH_MAX + 8];
	char *envp[] = { path_env, home_env, NULL };

	snprintf(home_env, sizeof(home_env), "HOME=%s", getuid() == 0 ? "/root" : context.home);
	execve(argv[0], argv, envp);
	dprintf(STDERR_FILENO, "%s: %m\n", argv[0]);
	return 127;
}

/* Turn a failed child into one recorded line: its first stderr line, prefixed. */
static void record_child_error(const char *what, int status, const struct child_output *output)
{
	int n = (int)strcspn(output->err, "\n");

	if (n == 0)
		record_error(PLUGIN_NAME ": %s failed (exit status %d)", what, status);
	else if (strncmp(output->err, PLUGIN_NAME ":", strlen(PLUGIN_NAME ":")) == 0)
		record_error("%.*s", n, output->err);
	else
		record_error(PLUGIN_NAME ": %s: %.*s", what, n, output->err);
}

/* argv for "<cli> <sub> ... --set <key=value>..." (NULL-terminated, free()). */
static char **cli_argv(const char *sub, const char *const *args, int nargs)
{
	char **argv;
	int n = 0;
	int i;

	argv = calloc(3 + nargs + 2 * context.ac + 1, sizeof(*argv));
	if (argv == NULL)
		goto done;
	argv[n++] = context.cfg.cli;
	argv[n++] = (char *)sub;
	argv[n++] = "--no-plugstack";
	for (i = 0; i < nargs; ++i)
		argv[n++] = (char *)args[i];
	for (i = 0; i < context.ac; ++i) {
		argv[n++] = "--set";
		argv[n++] = context.av[i];
	}
done:
	return argv;
}

/* Copy the JSON string value of "key" (no escapes expected) into buf. */
static int json_string(const char *json, const char *key, char *buf, size_t len)
{
	char pattern[64];
	const char *p;
	size_t n;
	int rc = -1;

	snprintf(pattern, sizeof(pattern), "\"%s\"", key);
	p = strstr(json, pattern);
	if (p == NULL)
		goto fail;
	p += strlen(pattern);
	p += strspn(p, " \t");
	if (*p++ != ':')
		goto fail;
	p += strspn(p, " \t");
	if (*p++ != '"')
		goto fail;
	n = strcspn(p, "\"\\");
	if (p[n] != '"' || n == 0 || n >= len)
		goto fail;
	memcpy(buf, p, n);
	buf[n] = '\0';
	rc = 0;
fail:
	return rc;
}

/* <base> root-owned and not writable by others, <base>/<uid> 0700 uid:gid. */
static int user_dir_ready(void)
{
	char dir[PATH_MAX];
	struct stat st;

	if (lstat(context.cfg.data_path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/%u", context.cfg.data_path, (unsigned)context.uid) >= (int)sizeof(dir))
		return 0;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != context.uid || st.st_gid != context.gid ||
	    (st.st_mode & 07777) != 0700)
		return 0;
	return 1;
}

/*
 * "<cli> prepare" as root creates or repairs <base>/<uid>. When the directory
 * is already exactly right there is nothing to repair, and the step saves one
 * start of the command.
 */
static int cli_prepare(void)
{
	char uid[16], gid[16];
	const char *args[] = { "--uid", uid, "--gid", gid };
	struct child_output output;
	char **argv = NULL;
	int status;
	int rc = -1;

	if (user_dir_ready()) {
		rc = 0;
		goto fail;
	}
	snprintf(uid, sizeof(uid), "%u", (unsigned)context.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)context.gid);
	argv = cli_argv("prepare", args, 4);
	if (argv == NULL) {
		record_error(PLUGIN_NAME ": out of memory");
		goto fail;
	}
	status = run_child(child_execve, argv, 0, "/", &output);
	if (status != 0) {
		record_child_error("prepare", status, &output);
		goto fail;
	}
	rc = 0;
fail:
	free(argv);
	return rc;
}

/*
 * Cache mode: "<cli> reuse --json" as the job user, then LOCK_SH on the entry's
 * lock file, held by slurmstepd until the step ends. A collector may remove the
 * entry between the reuse and the lock: then the file we locked is no longer
 * the one at that path, and we ask again.
 */
static int cache_reuse(void)
{
	char uid[16], gid[16];
	const char *args[] = { "--image", container_args.image, "--uid", uid, "--gid", gid, "--json" };
	struct child_output output;
	char lock[PATH_MAX];
	struct stat locked, current;
	char **argv;
	int attempt;
	int status;
	int fd = -1;
	int rc = -1;

	snprintf(uid, sizeof(uid), "%u", (unsigned)context.uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)context.gid);
	argv = cli_argv("reuse", args, 7);
	if (argv == NULL) {
		record_error(PLUGIN_NAME ": out of memory");
		goto fail;
	}

	for (attempt = 0; attempt < REUSE_ATTEMPTS; ++attempt) {
		status = run_child(child_execve, argv, 1, context.cwd, &output);
		if (status != 0) {
			record_child_error("reuse", status, &output);
			goto fail;
		}
		if (json_string(output.out, "path", context.rootfs, sizeof(context.rootfs)) < 0 ||
		    json_string(output.out, "lock", lock, sizeof(lock)) < 0 ||
		    json_string(output.out, "name", context.enroot_name, sizeof(context.enroot_name)) < 0) {
			record_error(PLUGIN_NAME ": reuse: unexpected output: %.200s", output.out);
			goto fail;
		}

		fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT) {
			slurm_info(PLUGIN_NAME ": %s was removed before it was locked, retrying", lock);
			continue;
		}
		if (fd < 0) {
			record_error(PLUGIN_NAME ": %s: %m", lock);
			goto fail;
		}
		while (flock(fd, LOCK_SH) < 0) {
			if (errno != EINTR) {
				record_error(PLUGIN_NAME ": flock %s: %m", lock);
				goto fail;
			}
		}
		if (fstat(fd, &locked) == 0 && stat(lock, &current) == 0 && locked.st_dev == current.st_dev &&
		    locked.st_ino == current.st_ino)
			break;
		slurm_info(PLUGIN_NAME ": %s was removed before it was locked, retrying", lock);
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		record_error(PLUGIN_NAME ": %s: removed by a collector %d times in a row, giving up", container_args.image,
			     REUSE_ATTEMPTS);
		goto fail;
	}

	/* ENROOT_DATA_PATH is the entry's parent, <base>/<uid>. */
	snprintf(context.enroot_data, sizeof(context.enroot_data), "%s", context.rootfs);
	*strrchr(context.enroot_data, '/') = '\0';
	context.lock_fd = fd;
	fd = -1;
	rc = 0;
fail:
	if (fd >= 0)
		close(fd);
	free(argv);
	return rc;
}

/*
 * Without cache mode: unpack the image for this step only, as the job user,
 * into <base>/<uid>/.pyxis_cache_step_<job>.<step>.XXXXXX/rootfs; exit removes it.
 * The directory stays locked (LOCK_SH) while the step runs, so that the
 * collector removes only the leftovers of steps that died.
 */
static int step_unpack(void)
{
	char unsquashfs[PATH_MAX];
	char *argv[] = { unsquashfs, "-no-progress", "-no-xattrs", "-d", context.rootfs, container_args.image, NULL };
	struct child_output output;
	char dir[PATH_MAX];
	int status;
	int rc = -1;

	if (find_executable("unsquashfs", unsquashfs, sizeof(unsquashfs)) < 0) {
		record_error(PLUGIN_NAME ": unsquashfs: not found in " PYXIS_CACHE_PATH);
		goto fail;
	}
	if (snprintf(dir, sizeof(dir), "%s/%u/.pyxis_cache_step_%u.%u.XXXXXX", context.cfg.data_path,
		     (unsigned)context.uid, context.jobid, context.stepid) >= (int)sizeof(dir) - 8) {
		record_error(PLUGIN_NAME ": container_cache_data_path: path too long");
		goto fail;
	}
	if (mkdtemp(dir) == NULL) {
		record_error(PLUGIN_NAME ": mkdtemp %s: %m", dir);
		goto fail;
	}
	strcpy(context.step_dir, dir);
	if (lchown(dir, context.uid, context.gid) < 0) {
		record_error(PLUGIN_NAME ": chown %s: %m", dir);
		goto fail;
	}
	context.step_lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (context.step_lock_fd < 0 || flock(context.step_lock_fd, LOCK_SH) < 0) {
		record_error(PLUGIN_NAME ": lock %s: %m", dir);
		goto fail;
	}
	strcpy(context.rootfs, dir);
	strcat(context.rootfs, "/rootfs");
	strcpy(context.enroot_data, dir);
	strcpy(context.enroot_name, "rootfs");

	status = run_child(child_execve, argv, 1, context.cwd, &output);
	if (status != 0) {
		record_child_error("unsquashfs", status, &output);
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st; (void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* child_fn, as the job user: rm -rf that never follows symlinks or crosses mounts. */
static int child_remove_tree(void *arg)
{
	const char *dir = arg;

	nftw(dir, make_writable, 64, FTW_PHYS | FTW_MOUNT);
	nftw(dir, remove_one, 64, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
	if (access(dir, F_OK) == 0) {
		dprintf(STDERR_FILENO, "%s: couldn't remove everything\n", dir);
		return 1;
	}
	return 0;
}

/*
 * slurm_spank_init, S_CTX_REMOTE: in slurmstepd, as root, before the options
 * are known. Registering the options here is what makes srun's values arrive.
 */
int pyxis_slurmstepd_init(spank_t sp, int ac, char **av)
{
	(void)ac; (void)av;
	return pyxis_args_register(sp);
}

/*
 * slurm_spank_init_post_opt, S_CTX_REMOTE: in slurmstepd, as root, with the
 * options from srun. Only job steps launched by srun are handled (not the
 * batch script, the extern or the interactive step).
 */
int pyxis_slurmstepd_post_opt(spank_t sp, int ac, char **av)
{
	char err[ERROR_MAX];

	if (spank_get_item(sp, S_JOB_STEPID, &context.stepid) != ESPANK_SUCCESS ||
	    context.stepid >= SLURM_MAX_NORMAL_STEP_ID)
		goto done;
	if (pyxis_args_apply_env(sp, 1) < 0) {
		record_error(PLUGIN_NAME ": out of memory");
		goto done;
	}
	if (!pyxis_args_active())
		goto done;

	context.active = 1;
	context.ac = ac;
	context.av = av;
	if (pyxis_args_check(err, sizeof(err)) < 0)
		record_error("%s", err);
	else if (pyxis_config_parse(&context.cfg, ac, av, err, sizeof(err)) < 0)
		record_error("%s", err);

done:
	return 0;
}

/*
 * slurm_spank_user_init, S_CTX_REMOTE: in slurmstepd, as root (effective uid
 * may already be the job user's, real uid is 0), once per step before the
 * tasks are forked. Never fails: errors are recorded for task_init.
 */
int pyxis_slurmstepd_user_init(spank_t sp, int ac, char **av)
{
	const char *runtime;
	struct passwd *pw;

	(void)ac; (void)av;
	if (!context.active || context.error[0] != '\0')
		goto done;

	slurm_debug(PLUGIN_NAME ": user_init: uid %u euid %u", (unsigned)getuid(), (unsigned)geteuid());

	if (spank_get_item(sp, S_JOB_UID, &context.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &context.gid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_ID, &context.jobid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &context.gids, &context.ngids) != ESPANK_SUCCESS) {
		record_error(PLUGIN_NAME ": couldn't get the job's user");
		goto done;
	}
	if (spank_getenv(sp, "PWD", context.cwd, sizeof(context.cwd)) != ESPANK_SUCCESS || context.cwd[0] != '/') {
		if (getcwd(context.cwd, sizeof(context.cwd)) == NULL)
			strcpy(context.cwd, "/");
	}
	if (spank_getenv(sp, "HOME", context.home, sizeof(context.home)) != ESPANK_SUCCESS) {
		pw = getpwuid(context.uid);
		snprintf(context.home, sizeof(context.home), "%s", pw != NULL ? pw->pw_dir : "/");
	}

	runtime = pyxis_config_runtime_name(context.cfg.runtime);
	if (find_executable(runtime, context.runtime_bin, sizeof(context.runtime_bin)) < 0) {
		record_error(PLUGIN_NAME ": container_cache_runtime: %s: not found in " PYXIS_CACHE_PATH, runtime);
		goto done;
	}

	if (access(context.cfg.cli, X_OK) < 0) {
		record_error(PLUGIN_NAME ": container_cache_cli: %s: %m", context.cfg.cli);
		goto done;
	}

	if (cli_prepare() < 0)
		goto done;

	if (container_args.cache)
		cache_reuse();
	else
		step_unpack();

done:
	return 0;
}

/* Append s to the script, single-quoted for /bin/sh. */
static void write_quoted(int fd, const char *s)
{
	dprintf(fd, " '");
	for (; *s != '\0'; ++s) {
		if (*s == '\'')
			dprintf(fd, "'\\''");
		else
			dprintf(fd, "%c", *s);
	}
	dprintf(fd, "'");
}

/*
 * Slurm < 23.11 has no spank_prepend_task_argv. S_JOB_ARGV gives us the task's
 * argv array, which we may modify in place but cannot grow, so argv[0] becomes
 * a /bin/sh script in a memfd (inherited across exec, read by the shell through
 * /proc/self/fd/N) that closes itself and execs "<prefix...> <argv[0]> $@".
 * Slurm's own exec path (task prolog, TMPDIR, limits, execve) still runs.
 */
static int rewrite_argv(spank_t sp, int n, const char *prefix[])
{
	char path[64];
	char **argv;
	int argc;
	int fd;
	int i;
	int rc = -1;

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv[0] == NULL) {
		slurm_error(PLUGIN_NAME ": couldn't get the task's argv");
		goto fail;
	}
	fd = memfd_create("pyxis-cache-task", MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("pyxis-cache-task", 0);
	if (fd < 0) {
		slurm_error(PLUGIN_NAME ": memfd_create: %m");
		goto fail;
	}
	/* dash closes single-digit descriptors only; bash closes any. */
	if (fd <= 9 || access("/bin/bash", X_OK) < 0)
		dprintf(fd, "#!/bin/sh\n");
	else
		dprintf(fd, "#!/bin/bash\n");
	if (fd <= 9 || access("/bin/bash", X_OK) == 0)
		dprintf(fd, "exec %d<&-\n", fd);
	dprintf(fd, "exec");
	for (i = 0; i < n; ++i)
		write_quoted(fd, prefix[i]);
	write_quoted(fd, argv[0]);
	dprintf(fd, " \"$@\"\n");

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[0] = strdup(path);
	if (argv[0] == NULL) {
		slurm_error(PLUGIN_NAME ": out of memory");
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

/*
 * slurm_spank_task_init, S_CTX_REMOTE: in the task's own process (forked by
 * slurmstepd), as the job user, just before Slurm execs the task. This is where
 * a recorded error fails the step: the message reaches srun's stderr and srun
 * exits non-zero, and the node stays up.
 */
int pyxis_slurmstepd_task_init(spank_t sp, int ac, char **av)
{
	const char *prefix[40];
	char cwd[PATH_MAX];
	char env_bin[PATH_MAX];
	char data[PATH_MAX + 32], mount[2 * PATH_MAX + 2];
	int writable = !container_args.cache && container_args.writable;
	struct stat st;
	int n = 0;
	int rc = -1;

	(void)ac; (void)av;
	if (context.error[0] != '\0') {
		slurm_error("%s", context.error);
		goto fail;
	}
	if (!context.active) {
		rc = 0;
		goto fail;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		strcpy(cwd, context.cwd);

	if (context.cfg.runtime == RUNTIME_BWRAP) {
		prefix[n++] = context.runtime_bin;
		prefix[n++] = "--die-with-parent";
		prefix[n++] = "--bind";
		prefix[n++] = context.rootfs;
		prefix[n++] = "/";
		prefix[n++] = "--proc";
		prefix[n++] = "/proc";
		prefix[n++] = "--dev";
		prefix[n++] = "/dev";
		prefix[n++] = "--tmpfs";
		prefix[n++] = "/tmp";
		if (strcmp(context.home, "/") != 0 && stat(context.home, &st) == 0 && S_ISDIR(st.st_mode)) {
			prefix[n++] = "--bind";
			prefix[n++] = context.home;
			prefix[n++] = context.home;
		}
		if (strcmp(cwd, "/") != 0) {
			prefix[n++] = "--bind";
			prefix[n++] = cwd;
			prefix[n++] = cwd;
		}
		if (!writable) {
			prefix[n++] = "--remount-ro";
			prefix[n++] = "/";
		}
		prefix[n++] = "--chdir";
		prefix[n++] = cwd;
		prefix[n++] = "--";
	} else {
		if (find_executable("env", env_bin, sizeof(env_bin)) < 0) {
			slurm_error(PLUGIN_NAME ": env: not found in " PYXIS_CACHE_PATH);
			goto fail;
		}
		snprintf(data, sizeof(data), "ENROOT_DATA_PATH=%s", context.enroot_data);
		snprintf(mount, sizeof(mount), "%s:%s", cwd, cwd);
		prefix[n++] = env_bin;
		prefix[n++] = data;
		prefix[n++] = writable ? "ENROOT_ROOTFS_WRITABLE=y" : "ENROOT_ROOTFS_WRITABLE=n";
		prefix[n++] = "ENROOT_MOUNT_HOME=y";
		prefix[n++] = context.runtime_bin;
		prefix[n++] = "start";
		if (strcmp(cwd, "/") != 0) {
			prefix[n++] = "--mount";
			prefix[n++] = mount;
		}
		prefix[n++] = context.enroot_name;
	}

	if (spank_prepend_task_argv != NULL) {
		if (spank_prepend_task_argv(sp, n, prefix) != ESPANK_SUCCESS) {
			slurm_error(PLUGIN_NAME ": spank_prepend_task_argv failed");
			goto fail;
		}
	} else if (rewrite_argv(sp, n, prefix) < 0) {
		goto fail;
	}
	rc = 0;
fail:
	return rc;
}

/*
 * slurm_spank_exit, S_CTX_REMOTE: in slurmstepd, as root, after every task of
 * the step has exited (also after a failed step).
 */
int pyxis_slurmstepd_exit(spank_t sp, int ac, char **av)
{
	struct child_output output;
	int status;

	(void)sp; (void)ac; (void)av;
	if (context.lock_fd >= 0) {
		close(context.lock_fd);
		context.lock_fd = -1;
	}
	if (context.step_dir[0] != '\0') {
		status = run_child(child_remove_tree, context.step_dir, 1, "/", &output);
		if (status != 0)
			slurm_error(PLUGIN_NAME ": couldn't remove %s: %s", context.step_dir, output.err);
		context.step_dir[0] = '\0';
	}
	if (context.step_lock_fd >= 0) {
		close(context.step_lock_fd);
		context.step_lock_fd = -1;
	}
	return 0;
}
