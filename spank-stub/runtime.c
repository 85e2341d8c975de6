/*
 * The runtimes that put a step in a rootfs: bwrap (an unprivileged user
 * namespace mapping the user to itself) or enroot (start of a named container
 * under ENROOT_DATA_PATH). Either one runs "sh -c 'kill -STOP $$; exit 0'" in
 * the container (container.c waits for that stop). See docs/srun.md,
 * "Running the task in the rootfs".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common.h"
#include "runtime.h"


int runtime_find(enum container_runtime runtime, char *buf, size_t len, const char **search_path, char *err,
		 size_t errlen)
{
	const char *name = pyxis_config_runtime_name(runtime);
	const char *path = child_search_path();

	*search_path = path;
	if (child_find_executable(name, path, buf, len) == 0)
		return 0;
	snprintf(err, errlen, PLUGIN_NAME ": container_cache_runtime: %s: not found in slurmd's PATH (%.800s)", name,
		 path);
	return -1;
}

int runtime_home_is_dir(const char *home)
{
	struct stat st;

	return strcmp(home, "/") != 0 && stat(home, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A --container-mounts source that is a path, made absolute against the job's working directory. */
static int mount_source(const struct container_mount *m, const struct pyxis_job *job, char *buf, size_t len)
{
	int n;

	if (m->source[0] == '/')
		n = snprintf(buf, len, "%s", m->source);
	else
		n = snprintf(buf, len, "%s/%s", job->cwd, m->source);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A target relative to the container's / (pyxis accepts "./data" as enroot reads it). */
static void mount_target(const struct container_mount *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", m->target[0] == '/' ? "" : "/", m->target);
}

static int is_path(const char *source)
{
	return source[0] == '/' || source[0] == '.';
}

/*
 * The flags bwrap's mounts have anyway, or that change nothing a task can see through them.
 * Not the other propagation types: bwrap's binds are private (findmnt -o PROPAGATION), so
 * shared, slave and unbindable are refused by name like any flag bwrap cannot honour.
 */
static int bwrap_flag_implied(const char *flag)
{
	static const char *const implied[] = { "bind", "rbind", "x-create=auto", "x-create=dir", "x-create=file",
		"nosuid", "nodev", "private", "rprivate", "rw", NULL };
	int i;

	for (i = 0; implied[i] != NULL; ++i)
		if (strcmp(flag, implied[i]) == 0)
			return 1;
	return 0;
}

/* A tmpfs size= value in bytes (k, m, g suffixes as mount(8)'s), or -1. */
static long long tmpfs_size(const char *value)
{
	char *end;
	long long n = strtoll(value, &end, 10);

	if (end == value || n < 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		n <<= 10, ++end;
	else if (*end == 'm' || *end == 'M')
		n <<= 20, ++end;
	else if (*end == 'g' || *end == 'G')
		n <<= 30, ++end;
	return *end == '\0' ? n : -1;
}

/*
 * What bwrap makes of one mount's flags: ro, a tmpfs's mode and size. 0, or -1
 * with the flag bwrap cannot honour in err (naming it rather than dropping it).
 */
struct bwrap_mount {
	int ro;
	char perms[16];
	char size[32];
};

static int bwrap_mount_flags(const struct container_mount *m, struct bwrap_mount *b, char *err, size_t errlen)
{
	char flags[1024], *rest = flags, *flag;
	int tmpfs = strcmp(m->source, "tmpfs") == 0;
	char *end;
	long long size;

	*b = (struct bwrap_mount){ 0 };
	if (!tmpfs && !is_path(m->source)) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-mounts: %s: not supported with container_cache_runtime=bwrap",
			 m->source);
		return -1;
	}
	snprintf(flags, sizeof(flags), "%s", m->flags);
	while ((flag = strsep(&rest, ",")) != NULL) {
		if (flag[0] == '\0' || bwrap_flag_implied(flag))
			continue;
		if (strcmp(flag, "ro") == 0) {
			b->ro = 1;
			continue;
		}
		if (tmpfs && strncmp(flag, "mode=", 5) == 0 && flag[5] != '\0' && strtol(flag + 5, &end, 8) >= 0 &&
		    *end == '\0' && strlen(flag + 5) < sizeof(b->perms)) {
			snprintf(b->perms, sizeof(b->perms), "%s", flag + 5);
			continue;
		}
		if (tmpfs && strncmp(flag, "size=", 5) == 0 && (size = tmpfs_size(flag + 5)) >= 0) {
			snprintf(b->size, sizeof(b->size), "%lld", size);
			continue;
		}
		snprintf(err, errlen,
			 PLUGIN_NAME ": --container-mounts: mount flag '%s' is not supported with container_cache_runtime=bwrap",
			 flag);
		return -1;
	}
	return 0;
}

int runtime_check(const struct runtime_task *task, char *err, size_t errlen)
{
	const struct container_args *args = task->args;
	struct bwrap_mount b;
	char source[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < args->mounts_len; ++i) {
		if (task->runtime == RUNTIME_BWRAP && bwrap_mount_flags(&args->mounts[i], &b, err, errlen) < 0)
			return -1;
		if (!is_path(args->mounts[i].source))
			continue;
		if (mount_source(&args->mounts[i], task->job, source, sizeof(source)) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-mounts: path too long: %.200s", args->mounts[i].source);
			return -1;
		}
		/* As pyxis: a missing source is the user's mistake; another error is the runtime's to report. */
		if (stat(source, &st) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-mounts: source path does not exist: %s",
				 args->mounts[i].source);
			return -1;
		}
	}
	return 0;
}

/*
 * The batch script lives in slurmd's spool (<spool>/job<id>/slurm_script); it
 * is bound into the container at the same path, read-only, as pyxis binds it,
 * under a tmpfs on <spool>, so that the job's own directory is made in that
 * tmpfs (and not in the rootfs, a cached entry: one per job) and no other
 * job's directory shows. 0 with <spool> in buf, -1 when the script is not at
 * least two directories deep (then it is bound alone).
 */
static int batch_spool(const char *script, char *buf, size_t len)
{
	char *slash;
	int i;

	if (snprintf(buf, len, "%s", script) >= (int)len)
		return -1;
	for (i = 0; i < 2; ++i) {
		slash = strrchr(buf, '/');
		if (slash == NULL || slash == buf)
			return -1;
		*slash = '\0';
	}
	return 0;
}

/* The job's value of name, or NULL. */
static const char *job_env(const struct runtime_task *task, const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 0; task->job_env != NULL && task->job_env[i] != NULL; ++i)
		if (strncmp(task->job_env[i], name, len) == 0 && task->job_env[i][len] == '=')
			return task->job_env[i] + len + 1;
	return NULL;
}

/* A growing argv for bwrap (the child's own memory, gone with its exec). */
struct argv_builder {
	const char **argv;
	size_t n, cap;
};

static void push(struct argv_builder *a, const char *arg)
{
	const char **grown;

	if (a->n + 2 > a->cap) {
		grown = realloc(a->argv, sizeof(*grown) * (a->cap * 2 + 16));
		if (grown == NULL) {
			dprintf(STDERR_FILENO, "out of memory\n");
			_exit(126);
		}
		a->argv = grown;
		a->cap = a->cap * 2 + 16;
	}
	a->argv[a->n++] = arg;
	a->argv[a->n] = NULL;
}

static const char *dup_or_die(const char *s)
{
	char *d = strdup(s);

	if (d == NULL) {
		dprintf(STDERR_FILENO, "out of memory\n");
		_exit(126);
	}
	return d;
}

/*
 * The image's environment as enroot applies it: <rootfs>/etc/environment (the
 * image's Env, written there by enroot import), read as enroot's envfmt reads it:
 * leading blanks, comments, lines that are not NAME=value and ENROOT_* dropped,
 * surrounding quotes removed. No ${VAR} substitution (an imported image's values
 * are already expanded). HOME stays the stub's. The child reads it as the job user.
 */
static void image_environ(const char *rootfs, struct child_env *env)
{
	char path[PATH_MAX], line[8192], *p, *end;
	size_t len;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/etc/environment", rootfs) >= (int)sizeof(path) ||
	    (f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		for (p = line; *p == ' ' || *p == '\t'; ++p)
			;
		if (!(isalpha((unsigned char)*p) || *p == '_'))
			continue;
		for (end = p + 1; isalnum((unsigned char)*end) || *end == '_'; ++end)
			;
		if (*end != '=' || strncmp(p, "ENROOT_", 7) == 0 || (end - p == 4 && strncmp(p, "HOME", 4) == 0))
			continue;
		len = strlen(end + 1);
		while (len > 0 && (end[len] == ' ' || end[len] == '\t'))
			--len;
		/* NAME="value" or NAME='value': the quotes go (envfmt's rule: any quote at either end). */
		if (len >= 2 && (end[1] == '"' || end[1] == '\'') && (end[len] == '"' || end[len] == '\'')) {
			memmove(end + 1, end + 2, len - 2);
			end[len - 1] = '\0';
		} else
			end[len + 1] = '\0';
		child_env_put(env, "%s", p);
	}
	fclose(f);
}

/* child_fn, as the job user: exec bwrap around the stopping shell. */
static int bwrap_exec(void *arg)
{
	const struct runtime_task *task = arg;
	const struct pyxis_job *job = task->job;
	const struct container_args *args = task->args;
	struct argv_builder a = { NULL, 0, 0 };
	struct bwrap_mount b;
	char info[16], buf[PATH_MAX + 8], source[PATH_MAX], err[ERROR_MAX];
	struct child_env env = CHILD_ENV_INIT;
	const char *value;
	size_t i;

	snprintf(info, sizeof(info), "%d", RUNTIME_INFO_FD);
	push(&a, task->runtime_bin);
	push(&a, "--die-with-parent");
	push(&a, "--info-fd");
	push(&a, info);
	/* --container-remap-root: the user namespace maps 0 to the user, as enroot's --remap-root. */
	if (task->remap_root && job->uid != 0) {
		push(&a, "--unshare-user");
		push(&a, "--uid");
		push(&a, "0");
		push(&a, "--gid");
		push(&a, "0");
	}
	if (args->unshare_net == 1)
		push(&a, "--unshare-net");
	if (args->unshare_ipc == 1)
		push(&a, "--unshare-ipc");
	if (args->unshare_uts == 1)
		push(&a, "--unshare-uts");
	push(&a, "--bind");
	push(&a, task->rootfs);
	push(&a, "/");
	push(&a, "--proc");
	push(&a, "/proc");
	/*
	 * The node's /dev, as enroot binds it. bwrap's own --dev needs root in the
	 * namespace for its devpts, so it would map the user to 0 and nest a second
	 * namespace that maps back: uid_map "uid 0 1" rather than pyxis's "uid uid 1",
	 * and namespaces (--container-unshare) the task could not join.
	 */
	push(&a, "--dev-bind");
	push(&a, "/dev");
	push(&a, "/dev");
	push(&a, "--tmpfs");
	push(&a, "/tmp");
	/* The batch script first: a home or working directory under the spool is then made in its tmpfs, not hidden. */
	if (task->batch_script != NULL) {
		if (batch_spool(task->batch_script, source, sizeof(source)) == 0) {
			push(&a, "--perms");
			push(&a, "0755");
			push(&a, "--tmpfs");
			push(&a, dup_or_die(source));
		}
		push(&a, "--ro-bind");
		push(&a, task->batch_script);
		push(&a, task->batch_script);
	}
	/* As enroot's home hook: at the same path, or at /root for a user remapped to root. */
	if (task->mount_home) {
		push(&a, "--bind");
		push(&a, job->home);
		push(&a, task->remap_root ? "/root" : job->home);
	}
	if (strcmp(job->cwd, "/") != 0) {
		push(&a, "--bind");
		push(&a, job->cwd);
		push(&a, job->cwd);
	}
	/* --container-mounts, after the runtime's own, as enroot applies them. */
	for (i = 0; i < args->mounts_len; ++i) {
		if (bwrap_mount_flags(&args->mounts[i], &b, err, sizeof(err)) < 0) {
			dprintf(STDERR_FILENO, "%s\n", err);
			return 126;
		}
		mount_target(&args->mounts[i], buf, sizeof(buf));
		if (strcmp(args->mounts[i].source, "tmpfs") == 0) {
			if (b.perms[0] != '\0') {
				push(&a, "--perms");
				push(&a, dup_or_die(b.perms));
			}
			if (b.size[0] != '\0') {
				push(&a, "--size");
				push(&a, dup_or_die(b.size));
			}
			push(&a, "--tmpfs");
			push(&a, dup_or_die(buf));
		} else {
			push(&a, b.ro ? "--ro-bind" : "--bind");
			mount_source(&args->mounts[i], job, source, sizeof(source));
			push(&a, dup_or_die(source));
			push(&a, dup_or_die(buf));
		}
		if (b.ro && strcmp(args->mounts[i].source, "tmpfs") == 0) {
			push(&a, "--remount-ro");
			push(&a, dup_or_die(buf));
		}
	}
	if (!task->writable) {
		push(&a, "--remount-ro");
		push(&a, "/");
	}
	push(&a, "--");
	push(&a, "/bin/sh");
	/* The image's entrypoint, as enroot runs it: its /etc/rc around the command. */
	if (task->entrypoint) {
		snprintf(buf, sizeof(buf), "%s/etc/rc", task->rootfs);
		if (access(buf, F_OK) == 0) {
			push(&a, "/etc/rc");
			push(&a, "sh");
		}
	}
	push(&a, "-c");
	push(&a, RUNTIME_STOP_COMMAND);

	/*
	 * PATH and HOME; the image's environment (its PATH wins, as with enroot); then
	 * --container-env's variables, which the entrypoint sees (as with enroot).
	 */
	child_env_path(&env, CHILD_PATH_SLURMD, NULL);
	child_env_put(&env, "HOME=%s", task->remap_root && task->mount_home ? "/root" : job->home);
	image_environ(task->rootfs, &env);
	for (i = 0; i < args->env_vars_len; ++i)
		if ((value = job_env(task, args->env_vars[i])) != NULL && value[0] != '\0' &&
		    strcmp(args->env_vars[i], "PATH") != 0 && strcmp(args->env_vars[i], "HOME") != 0)
			child_env_put(&env, "%s=%s", args->env_vars[i], value);
	execve(task->runtime_bin, (char **)a.argv, env.envp);
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

/*
 * One fstab field in a single-quoted shell word: fstab's octal escapes for
 * blanks and backslashes (enroot-mount reads them back), '\'' for quotes.
 */
static void put_field(FILE *f, const char *s)
{
	for (; *s != '\0'; ++s) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
			fprintf(f, "\\%03o", (unsigned char)*s);
		else if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
}

static void put_mount(FILE *f, const char *source, const char *target, const char *flags)
{
	fputs("\techo '", f);
	put_field(f, source);
	fputc(' ', f);
	put_field(f, target);
	fputc(' ', f);
	put_field(f, flags);
	fputs("'\n", f);
}

/*
 * enroot's start configuration (a bash script enroot sources, as pyxis writes
 * one): mounts() with the working directory and --container-mounts, rc() that
 * execs the command itself unless the image's entrypoint is wanted (pyxis
 * writes the same into the rootfs's /etc/rc.local; an rc leaves the rootfs, a
 * cached entry, alone), environ() with --container-env's variables.
 */
static int write_enroot_config(const struct runtime_task *task, const char *path)
{
	const struct container_args *args = task->args;
	const struct pyxis_job *job = task->job;
	char source[PATH_MAX], target[PATH_MAX + 8];
	FILE *f;
	size_t i;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		dprintf(STDERR_FILENO, "%s: %m\n", path);
		return -1;
	}
	fputs("mounts() {\n", f);
	/* The batch script first, as for bwrap. */
	if (task->batch_script != NULL) {
		if (batch_spool(task->batch_script, source, sizeof(source)) == 0)
			put_mount(f, "tmpfs", source, "x-create=dir,mode=755,nosuid,nodev");
		put_mount(f, task->batch_script, task->batch_script, "x-create=file,bind,ro,nosuid,nodev,private");
	}
	if (strcmp(job->cwd, "/") != 0)
		put_mount(f, job->cwd, job->cwd, "x-create=dir,rbind,rw,nosuid");
	for (i = 0; i < args->mounts_len; ++i) {
		if (is_path(args->mounts[i].source))
			mount_source(&args->mounts[i], job, source, sizeof(source));
		else
			snprintf(source, sizeof(source), "%s", args->mounts[i].source);
		mount_target(&args->mounts[i], target, sizeof(target));
		put_mount(f, source, target, args->mounts[i].flags);
	}
	fputs("\t:\n}\n", f);
	if (!task->entrypoint)
		fputs("rc() {\n\texec \"$@\"\n}\n", f);
	if (args->env_vars_len > 0) {
		fputs("environ() {\n", f);
		/* Names are checked identifiers (args.c). */
		for (i = 0; i < args->env_vars_len; ++i)
			fprintf(f, "\t[ -n \"${%1$s-}\" ] && echo \"%1$s=${%1$s}\" || :\n", args->env_vars[i]);
		fputs("\t:\n}\n", f);
	}
	if (fclose(f) != 0) {
		dprintf(STDERR_FILENO, "%s: %m\n", path);
		return -1;
	}
	return 0;
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
	const struct container_args *args = task->args;
	char bin[PATH_MAX];
	char conf[PATH_MAX + 16];
	struct child_env env = CHILD_ENV_INIT;
	const char *argv[16];
	const char *value;
	size_t k;
	int n = 0;
	int i;

	/* The step's directory is the user's, made for this step; enroot makes the rest of it. */
	if (mkdir(task->enroot_paths, 0700) < 0 && errno != EEXIST) {
		dprintf(STDERR_FILENO, "%s: %m\n", task->enroot_paths);
		return 126;
	}
	snprintf(conf, sizeof(conf), "%s/start.conf", task->enroot_paths);
	if (write_enroot_config(task, conf) < 0)
		return 126;

	snprintf(bin, sizeof(bin), "%s", task->runtime_bin);
	child_env_path(&env, CHILD_PATH_SLURMD, dirname(bin));
	child_env_put(&env, "HOME=%s", job->home);
	child_env_put(&env, "ENROOT_DATA_PATH=%s", task->enroot_data);
	child_env_put(&env, "ENROOT_RUNTIME_PATH=%s/runtime", task->enroot_paths);
	child_env_put(&env, "ENROOT_CACHE_PATH=%s/cache", task->enroot_paths);
	child_env_put(&env, "ENROOT_CONFIG_PATH=%s/config", task->enroot_paths);
	child_env_put(&env, "ENROOT_TEMP_PATH=%s/temp", task->enroot_paths);
	child_env_put(&env, "ENROOT_ROOTFS_WRITABLE=%s", task->writable ? "y" : "n");
	child_env_put(&env, "ENROOT_MOUNT_HOME=%s", task->mount_home ? "y" : "n");
	child_env_put(&env, "ENROOT_REMAP_ROOT=%s", task->remap_root ? "y" : "n");
	/* enroot 4.2's; 4.1 ignores them, and container.c then says the namespace is not separate (as pyxis). */
	if (args->unshare_net == 1)
		child_env_put(&env, "ENROOT_UNSHARE_NET=y");
	if (args->unshare_ipc == 1)
		child_env_put(&env, "ENROOT_UNSHARE_IPC=y");
	if (args->unshare_uts == 1)
		child_env_put(&env, "ENROOT_UNSHARE_UTS=y");
	for (i = 0; task->job_env != NULL && task->job_env[i] != NULL; ++i)
		if (passed_to_enroot(task->job_env[i]))
			child_env_put(&env, "%s", task->job_env[i]);
	/* --container-env's variables, for environ() (and so the entrypoint) to see. */
	for (k = 0; k < args->env_vars_len; ++k)
		if (strncmp(args->env_vars[k], "ENROOT_", 7) != 0 && strcmp(args->env_vars[k], "PATH") != 0 &&
		    strcmp(args->env_vars[k], "HOME") != 0 && (value = job_env(task, args->env_vars[k])) != NULL)
			child_env_put(&env, "%s=%s", args->env_vars[k], value);

	argv[n++] = task->runtime_bin;
	argv[n++] = "start";
	argv[n++] = "--conf";
	argv[n++] = conf;
	argv[n++] = task->enroot_name;
	argv[n++] = "sh";
	argv[n++] = "-c";
	argv[n++] = RUNTIME_STOP_COMMAND;
	argv[n] = NULL;
	execve(task->runtime_bin, (char **)argv, env.envp);
	dprintf(STDERR_FILENO, "%s: %m\n", task->runtime_bin);
	return 127;
}

int runtime_exec(void *arg)
{
	const struct runtime_task *task = arg;

	return task->runtime == RUNTIME_BWRAP ? bwrap_exec(arg) : enroot_exec(arg);
}
