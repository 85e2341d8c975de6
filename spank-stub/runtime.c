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
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "child.h"
#include "common.h"
#include "runtime.h"
#include "enroot_fe.h"


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
 * The flags bwrap's mounts have anyway, or that change nothing a task can see through them
 * (bwrap's binds are private already).
 */
static int bwrap_flag_implied(const char *flag)
{
	static const char *const implied[] = { "bind", "rbind", "x-create=auto", "x-create=dir", "x-create=file",
		"x-detach", "nosuid", "nodev", "private", "rprivate", "rw", NULL };
	int i;

	for (i = 0; implied[i] != NULL; ++i)
		if (strcmp(flag, implied[i]) == 0)
			return 1;
	return 0;
}

/* A propagation flag (enroot-mount's names), or 0. */
static unsigned long propagation_flag(const char *flag)
{
	static const struct {
		const char *name;
		unsigned long flags;
	} types[] = { { "shared", MS_SHARED },		 { "rshared", MS_SHARED | MS_REC },
		      { "slave", MS_SLAVE },		 { "rslave", MS_SLAVE | MS_REC },
		      { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC } };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); ++i)
		if (strcmp(flag, types[i].name) == 0)
			return types[i].flags;
	return 0;
}

/* A tmpfs option bwrap's --tmpfs cannot give (it has --size and --perms): set by a remount once it is made. */
static int tmpfs_option(const char *flag)
{
	static const char *const keys[] = { "huge=", "nr_inodes=", "nr_blocks=", "mpol=", NULL };
	int i;

	for (i = 0; keys[i] != NULL; ++i)
		if (strncmp(flag, keys[i], strlen(keys[i])) == 0 && flag[strlen(keys[i])] != '\0')
			return 1;
	return strcmp(flag, "noswap") == 0 || strcmp(flag, "inode32") == 0 || strcmp(flag, "inode64") == 0;
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
 * What bwrap makes of one mount's flags: ro, a tmpfs's mode and size; and what the stub
 * does once bwrap has built the container (runtime_bwrap_after): a propagation type, a
 * tmpfs's other options, umount. 0, or -1 with the flag neither can honour in err
 * (naming it rather than dropping it).
 */
struct bwrap_mount {
	int ro;
	int umount;
	unsigned long propagation;
	char perms[16];
	char size[32];
	char tmpfs_data[512]; /* for a remount of the tmpfs: huge=..., nr_inodes=... */
};

static int bwrap_mount_flags(const struct container_mount *m, struct bwrap_mount *b, char *err, size_t errlen)
{
	char flags[1024], *rest = flags, *flag;
	int tmpfs = strcmp(m->source, "tmpfs") == 0;
	char *end;
	long long size;
	size_t len;

	*b = (struct bwrap_mount){ 0 };
	b->umount = strcmp(m->source, "umount") == 0;
	if (!tmpfs && !b->umount && !is_path(m->source)) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-mounts: %s: not supported with container_cache_runtime=bwrap",
			 m->source);
		return -1;
	}
	snprintf(flags, sizeof(flags), "%s", m->flags);
	while ((flag = strsep(&rest, ",")) != NULL) {
		if (flag[0] == '\0' || bwrap_flag_implied(flag))
			continue;
		if (strcmp(flag, "ro") == 0 && !b->umount) {
			b->ro = 1;
			continue;
		}
		if (propagation_flag(flag) != 0 && !b->umount) {
			b->propagation = propagation_flag(flag);
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
		len = strlen(b->tmpfs_data);
		if (tmpfs && tmpfs_option(flag) && len + strlen(flag) + 2 < sizeof(b->tmpfs_data)) {
			snprintf(b->tmpfs_data + len, sizeof(b->tmpfs_data) - len, "%s%s", len > 0 ? "," : "", flag);
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
	return child_env_get(task->job_env, name);
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

/*
 * enroot's apt hook (10-aptfix.sh), for bwrap: with --container-remap-root and a
 * Debian-like rootfs (a regular /etc/debian_version), apt's sandbox user is root,
 * so that apt does not try to switch to _apt, a uid the one-uid user namespace
 * lacks ("Could not switch group"). enroot writes the file into the container's
 * rootfs; here bwrap writes it (--file) into the step's own rootfs, resolved
 * inside the container, never into a cached entry. A descriptor for --file, or -1.
 */
#define APT_SANDBOX_CONF "/etc/apt/apt.conf.d/enroot"
#define APT_SANDBOX_LINE "APT::Sandbox::User \"root\";\n"

static int apt_sandbox_fd(const struct runtime_task *task)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (!task->remap_root || !task->root->own ||
	    snprintf(path, sizeof(path), "%s/etc/debian_version", task->root->path) >= (int)sizeof(path) ||
	    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	fd = memfd_create("apt-sandbox", 0);
	if (fd < 0)
		return -1;
	if (write(fd, APT_SANDBOX_LINE, strlen(APT_SANDBOX_LINE)) != (ssize_t)strlen(APT_SANDBOX_LINE) ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* child_fn, as the job user: exec bwrap around the stopping shell. */
static int bwrap_exec(void *arg)
{
	const struct runtime_task *task = arg;
	const struct pyxis_job *job = task->job;
	const struct container_args *args = task->args;
	struct argv_builder a = { NULL, 0, 0 };
	struct bwrap_mount b;
	char info[16], apt_fd[16], buf[PATH_MAX + 8], source[PATH_MAX], err[ERROR_MAX];
	struct child_env env = CHILD_ENV_INIT;
	const char *value;
	size_t i;
	int apt;

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
	push(&a, task->root->path);
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
		if (b.umount)
			continue; /* runtime_bwrap_after's */
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
	if ((apt = apt_sandbox_fd(task)) >= 0) {
		snprintf(apt_fd, sizeof(apt_fd), "%d", apt);
		push(&a, "--perms");
		push(&a, "0644");
		push(&a, "--file");
		push(&a, apt_fd);
		push(&a, APT_SANDBOX_CONF);
	}
	if (task->writable != 1) {
		push(&a, "--remount-ro");
		push(&a, "/");
	}
	push(&a, "--");
	push(&a, "/bin/sh");
	/* The image's entrypoint, as enroot runs it: its /etc/rc around the command. */
	if (task->entrypoint) {
		snprintf(buf, sizeof(buf), "%s/etc/rc", task->root->path);
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
	image_environ(task->root->path, &env);
	for (i = 0; i < args->env_vars_len; ++i)
		if ((value = job_env(task, args->env_vars[i])) != NULL && value[0] != '\0' &&
		    strcmp(args->env_vars[i], "PATH") != 0 && strcmp(args->env_vars[i], "HOME") != 0)
			child_env_put(&env, "%s=%s", args->env_vars[i], value);
	execve(task->runtime_bin, (char **)a.argv, env.envp);
	dprintf(STDERR_FILENO, "%s: %m\n", task->runtime_bin);
	return 127;
}

int runtime_bwrap_after_needed(const struct container_args *args)
{
	struct bwrap_mount b;
	char err[ERROR_MAX];
	size_t i;

	for (i = 0; i < args->mounts_len; ++i)
		if (bwrap_mount_flags(&args->mounts[i], &b, err, sizeof(err)) == 0 &&
		    (b.umount || b.propagation != 0 || b.tmpfs_data[0] != '\0'))
			return 1;
	return 0;
}

/* The per-mount flags a remount must keep (enroot-mount's rule: a user namespace's locked ones included). */
static unsigned long kept_flags(const char *target)
{
	static const struct {
		unsigned long st, ms;
	} map[] = { { ST_NOSUID, MS_NOSUID },	  { ST_NODEV, MS_NODEV },	  { ST_NOEXEC, MS_NOEXEC },
		    { ST_RDONLY, MS_RDONLY },	  { ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
		    { ST_RELATIME, MS_RELATIME } };
	struct statvfs sv;
	unsigned long flags = 0;
	size_t i;

	if (statvfs(target, &sv) < 0)
		return 0;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); ++i)
		if (sv.f_flag & map[i].st)
			flags |= map[i].ms;
	return flags;
}

/* Join pid's namespace of type (the user's own, as the task joins it), unless it is ours already. */
static int join_ns(pid_t pid, const char *name, int type)
{
	int fd, same, rc;

	fd = child_open_ns(pid, name, &same);
	if (fd < 0)
		return -1;
	rc = same ? 0 : setns(fd, type);
	close(fd);
	return rc;
}

int runtime_bwrap_after(void *arg)
{
	const struct runtime_after *after = arg;
	const struct container_args *args = after->task->args;
	char target[PATH_MAX + 8], err[ERROR_MAX];
	struct bwrap_mount b;
	size_t i;

	if (join_ns(after->pid, "user", CLONE_NEWUSER) < 0 || join_ns(after->pid, "mnt", CLONE_NEWNS) < 0) {
		dprintf(STDERR_FILENO, PLUGIN_NAME ": --container-mounts: couldn't join the container's namespaces: %m\n");
		return 126;
	}
	/* In --container-mounts' order, as enroot applies them; paths are resolved in the container. */
	for (i = 0; i < args->mounts_len; ++i) {
		if (bwrap_mount_flags(&args->mounts[i], &b, err, sizeof(err)) < 0)
			continue; /* refused before bwrap ran */
		mount_target(&args->mounts[i], target, sizeof(target));
		if (b.umount && umount2(target, MNT_DETACH) < 0) {
			dprintf(STDERR_FILENO, PLUGIN_NAME ": --container-mounts: umount %s: %m\n", target);
			return 1;
		}
		if (b.tmpfs_data[0] != '\0' && mount(NULL, target, NULL, MS_REMOUNT | kept_flags(target), b.tmpfs_data) < 0) {
			dprintf(STDERR_FILENO, PLUGIN_NAME ": --container-mounts: tmpfs %s: %s: %m\n", target, b.tmpfs_data);
			return 1;
		}
		if (b.propagation != 0 && mount(NULL, target, NULL, b.propagation, NULL) < 0) {
			dprintf(STDERR_FILENO, PLUGIN_NAME ": --container-mounts: %s: propagation: %m\n", target);
			return 1;
		}
	}
	return 0;
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
 * One fstab field: fstab's octal escapes for blanks and backslashes (enroot-mount
 * reads them back); in a single-quoted shell word (quoted), '\'' for quotes.
 */
static void put_field(FILE *f, const char *s, int quoted)
{
	for (; *s != '\0'; ++s) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
			fprintf(f, "\\%03o", (unsigned char)*s);
		else if (*s == '\'' && quoted)
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
}

/* One mount: an fstab line, or (quoted) mounts()'s echo of one. */
static void put_mount(FILE *f, const char *source, const char *target, const char *flags, int quoted)
{
	fputs(quoted ? "\techo '" : "", f);
	put_field(f, source, quoted);
	fputc(' ', f);
	put_field(f, target, quoted);
	fputc(' ', f);
	put_field(f, flags, quoted);
	fputs(quoted ? "'\n" : "\n", f);
}

/* One of the step's mounts, in enroot's order: the batch script (as for bwrap), the working directory, the rest. */
struct enroot_mount {
	char source[PATH_MAX], target[PATH_MAX + 8];
	const char *flags;
};

/* The i-th mount (from 0) into m; 0, or -1 past the last. */
static int enroot_mount(const struct runtime_task *task, size_t i, struct enroot_mount *m)
{
	const struct container_args *args = task->args;
	const struct pyxis_job *job = task->job;
	char spool[PATH_MAX];
	const struct container_mount *cm;

	if (task->batch_script != NULL) {
		if (batch_spool(task->batch_script, spool, sizeof(spool)) == 0 && i-- == 0) {
			snprintf(m->source, sizeof(m->source), "tmpfs");
			snprintf(m->target, sizeof(m->target), "%s", spool);
			m->flags = "x-create=dir,mode=755,nosuid,nodev";
			return 0;
		}
		if (i-- == 0) {
			snprintf(m->source, sizeof(m->source), "%s", task->batch_script);
			snprintf(m->target, sizeof(m->target), "%s", task->batch_script);
			m->flags = "x-create=file,bind,ro,nosuid,nodev,private";
			return 0;
		}
	}
	if (strcmp(job->cwd, "/") != 0 && i-- == 0) {
		snprintf(m->source, sizeof(m->source), "%s", job->cwd);
		snprintf(m->target, sizeof(m->target), "%s", job->cwd);
		m->flags = "x-create=dir,rbind,rw,nosuid";
		return 0;
	}
	if (i >= args->mounts_len)
		return -1;
	cm = &args->mounts[i];
	if (is_path(cm->source))
		mount_source(cm, job, m->source, sizeof(m->source));
	else
		snprintf(m->source, sizeof(m->source), "%s", cm->source);
	mount_target(cm, m->target, sizeof(m->target));
	m->flags = cm->flags;
	return 0;
}

/*
 * enroot's start configuration (a bash script enroot sources, as pyxis writes
 * one): mounts() with the working directory and --container-mounts, rc() that
 * execs the command itself unless the image's entrypoint is wanted (pyxis
 * writes the same into the rootfs's /etc/rc.local; an rc leaves the rootfs, a
 * cached entry, alone), environ() with --container-env's variables. Only when
 * the files of write_enroot_files cannot say the same.
 */
static int write_enroot_config(const struct runtime_task *task, const char *path)
{
	const struct container_args *args = task->args;
	struct enroot_mount m;
	FILE *f;
	size_t i;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		dprintf(STDERR_FILENO, "%s: %m\n", path);
		return -1;
	}
	fputs("mounts() {\n", f);
	for (i = 0; enroot_mount(task, i, &m) == 0; ++i)
		put_mount(f, m.source, m.target, m.flags, 1);
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

/* Write text to a new file path (0600, as the user); 0 or -1 with the reason on stderr. */
static int write_new(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) < 0) {
		dprintf(STDERR_FILENO, "%s: %m\n", path);
		return -1;
	}
	return 0;
}

/* mkdir that accepts an existing directory; 0 or -1 with the reason on stderr. */
static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		dprintf(STDERR_FILENO, "%s: %m\n", path);
		return -1;
	}
	return 0;
}

/*
 * Whether the container may have an /etc/rc for enroot-switchroot to run: unless
 * the rootfs has no /etc, or an /etc directory without one, and no mount's target
 * names an "etc". Without, switchroot execs the command itself, as an rc of `exec "$@"`
 * would (an --rc costs enroot a readlink and a cp).
 */
static int image_may_have_rc(const struct runtime_task *task)
{
	char path[PATH_MAX + 16];
	struct enroot_mount m;
	struct stat st;
	size_t i;

	for (i = 0; enroot_mount(task, i, &m) == 0; ++i)
		if (strstr(m.target, "etc") != NULL)
			return 1;
	snprintf(path, sizeof(path), "%s/etc", task->root->path);
	if (lstat(path, &st) < 0)
		return errno != ENOENT;
	if (!S_ISDIR(st.st_mode))
		return 1;
	snprintf(path, sizeof(path), "%s/etc/rc", task->root->path);
	return !(lstat(path, &st) < 0 && errno == ENOENT);
}

/*
 * The same configuration without --conf, which costs enroot three processes per
 * start (sed for its #ENROOT lines, readlink, bash -n): the mounts in
 * <dir>/config/mounts.d/50-pyxis-cache.fstab (the lines mounts() echoed, at the
 * same place in enroot's fstab: after the site's mounts.d), and <dir>/rc with
 * `exec "$@"` (--rc) unless --container-entrypoint or the image has no /etc/rc.
 * enroot runs the fstab through its envsubst (awk), which would fill in a
 * "${NAME}" in a path; and environ()
 * reads --container-env's variables in enroot's own environment (its
 * configuration's defaults, bash's own variables), which no file can: with
 * either, start.conf as before (1). 0 when the files are written, -1 on an error
 * (said on stderr). rc and conf: the paths to give enroot, or "".
 */
static int write_enroot_files(const struct runtime_task *task, char *rc, size_t rclen, char *conf, size_t conflen)
{
	char path[PATH_MAX + 128];
	struct enroot_mount m;
	int conf_needed = task->args->env_vars_len > 0;
	FILE *f;
	size_t i;
	int fd;

	rc[0] = conf[0] = '\0';
	for (i = 0; !conf_needed && enroot_mount(task, i, &m) == 0; ++i)
		conf_needed = strstr(m.source, "${") != NULL || strstr(m.target, "${") != NULL ||
			      strstr(m.flags, "${") != NULL;
	if (conf_needed) {
		snprintf(conf, conflen, "%s/start.conf", task->enroot_paths);
		return write_enroot_config(task, conf) < 0 ? -1 : 1;
	}
	if (enroot_mount(task, 0, &m) == 0) {
		snprintf(path, sizeof(path), "%s/config", task->enroot_paths);
		if (make_dir(path) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s/config/mounts.d", task->enroot_paths);
		if (make_dir(path) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s/config/mounts.d/50-pyxis-cache.fstab", task->enroot_paths);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
			dprintf(STDERR_FILENO, "%s: %m\n", path);
			return -1;
		}
		for (i = 0; enroot_mount(task, i, &m) == 0; ++i)
			put_mount(f, m.source, m.target, m.flags, 0);
		if (fclose(f) != 0) {
			dprintf(STDERR_FILENO, "%s: %m\n", path);
			return -1;
		}
	}
	if (!task->entrypoint && image_may_have_rc(task)) {
		snprintf(rc, rclen, "%s/rc", task->enroot_paths);
		if (write_new(rc, "exec \"$@\"\n") < 0)
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
	char conf[PATH_MAX + 16], rc[PATH_MAX + 16];
	struct child_env env = CHILD_ENV_INIT;
	const char *argv[16];
	const char *value;
	size_t k;
	int n = 0;
	int i;

	/* The step's directory is the user's, made for this step; enroot makes the rest of it. */
	if (make_dir(task->enroot_paths) < 0 || write_enroot_files(task, rc, sizeof(rc), conf, sizeof(conf)) < 0)
		return 126;

	snprintf(bin, sizeof(bin), "%s", task->runtime_bin);
	child_env_path(&env, CHILD_PATH_SLURMD, dirname(bin));
	child_env_put(&env, "HOME=%s", job->home);
	child_env_put(&env, "ENROOT_DATA_PATH=%s", task->root->enroot_data);
	child_env_put(&env, "ENROOT_RUNTIME_PATH=%s/runtime", task->enroot_paths);
	child_env_put(&env, "ENROOT_CACHE_PATH=%s/cache", task->enroot_paths);
	child_env_put(&env, "ENROOT_CONFIG_PATH=%s/config", task->enroot_paths);
	child_env_put(&env, "ENROOT_TEMP_PATH=%s/temp", task->enroot_paths);
	/*
	 * Neither --container-writable nor --container-readonly: the site's enroot.conf
	 * decides, as with pyxis (stock enroot: read-only), on a rootfs of the step's own;
	 * a step that runs on a cached entry itself is read-only whatever enroot says.
	 */
	if (task->writable == 1 || task->writable == 0 || !task->root->own)
		child_env_put(&env, "ENROOT_ROOTFS_WRITABLE=%s", task->writable == 1 ? "y" : "n");
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

	/* enroot's front end done here when the stub knows it (enroot_fe.h); else enroot start. */
	if (conf[0] == '\0' && task->enroot_fe != NULL && task->enroot_fe->ok) {
		static const char *const cmd[] = { "sh", "-c", RUNTIME_STOP_COMMAND, NULL };
		struct child_env fe_env = env;
		char why[256];

		enroot_fe_exec(task->enroot_fe, &fe_env, rc, task->root->enroot_name, cmd, why, sizeof(why));
	}
	argv[n++] = task->runtime_bin;
	argv[n++] = "start";
	if (conf[0] != '\0') {
		argv[n++] = "--conf";
		argv[n++] = conf;
	}
	if (rc[0] != '\0') {
		argv[n++] = "--rc";
		argv[n++] = rc;
	}
	argv[n++] = task->root->enroot_name;
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
