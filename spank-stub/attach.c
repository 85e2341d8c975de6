/*
 * Attaching to a running container (see attach.h and docs/pyxis.md,
 * "Attaching to a running container").
 *
 * The record, <named dir>/running, written by the running step's local task 0
 * (as the job user) and removed at its step's exit:
 *   pyxis-cache-running 1
 *   <pid> <device> <inode>     the task, and its mount namespace (the container's)
 *   <entry>                    the entry its step holds (pyxis_cache_u<uid>_<hex>), or "-"
 *   K=V\0K=V\0...              what the container's environment lays over the job's
 * It is the user's file, so nothing in it is trusted: slurmstepd only reads
 * it (O_NOFOLLOW, a regular file of the user's, bounded), checks that the
 * process it names is alive, is the job user's in every uid, and is in the
 * recorded mount namespace, and the tasks open and join that process's
 * namespaces with the job user's credentials, checking again.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "attach.h"
#include "child.h"
#include "cli.h"
#include "common.h"
#include "lock.h"
#include "log.h"
#include "named.h"

#define RECORD_MAGIC "pyxis-cache-running 1"
#define RECORD_NEW ATTACH_RECORD ".new"
#define RECORD_MAX (1024 * 1024)
/* How long a step that mounts a named container's layer waits for the steps attached to the previous one. */
#define DETACH_WAIT_SECONDS 60

/* 1 when every uid of pid (real, effective, saved, filesystem) is uid, 0 when not, -1 when it cannot be read. */
static int process_is_users(pid_t pid, uid_t uid)
{
	char name[24], buf[4096];
	unsigned long ids[4];
	const char *line;
	int i;

	snprintf(name, sizeof(name), "%d", (int)pid);
	if (child_read_proc(name, "status", buf, sizeof(buf)) < 0)
		return -1;
	line = strstr(buf, "\nUid:");
	if (line == NULL || sscanf(line + 5, "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3]) != 4)
		return -1;
	for (i = 0; i < 4; ++i)
		if (ids[i] != (unsigned long)uid)
			return 0;
	return 1;
}

/* The container's name for its directory: --container-name's, or "<job>.<step>" for an unnamed step. */
static int record_dir_path(struct plugin_context *ctx, const char *name, char *buf, size_t len)
{
	char dir[NAME_MAX + 1];

	return named_dir_name(ctx, name, dir, sizeof(dir)) < 0 || cli_user_path(ctx, dir, NULL, buf, len) < 0 ? -1 : 0;
}

/* The record's fields, parsed from buf (NUL-terminated at len); 0, or -1 when it is not a record. */
struct record {
	long pid;
	unsigned long long dev, ino;
	const char *entry;
	const char *env;
	size_t env_len;
};

static char *next_line(char **p, const char *end)
{
	char *line = *p, *nl;

	if (line >= end || (nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

static int parse_record(char *buf, size_t len, struct record *r)
{
	const char *end = buf + len;
	char *p = buf, *line, *tail;

	line = next_line(&p, end);
	if (line == NULL || strcmp(line, RECORD_MAGIC) != 0)
		return -1;
	line = next_line(&p, end);
	if (line == NULL)
		return -1;
	errno = 0;
	r->pid = strtol(line, &tail, 10);
	if (errno != 0 || r->pid <= 1 || r->pid > 4194304 || *tail != ' ')
		return -1;
	r->dev = strtoull(tail + 1, &tail, 10);
	if (errno != 0 || *tail != ' ')
		return -1;
	r->ino = strtoull(tail + 1, &tail, 10);
	if (errno != 0 || *tail != '\0')
		return -1;
	r->entry = next_line(&p, end);
	if (r->entry == NULL)
		return -1;
	r->env = p;
	r->env_len = (size_t)(end - p);
	return 0;
}

/* The record's text (NUL-terminated), from the user's directory dfd: NULL when there is none. */
static char *read_record(int dfd, uid_t uid, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t size = 0;
	ssize_t n;
	int fd;

	fd = openat(dfd, ATTACH_RECORD, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid || st.st_size > RECORD_MAX ||
	    (buf = malloc(RECORD_MAX + 1)) == NULL)
		goto fail;
	while (size < RECORD_MAX && (n = read(fd, buf + size, RECORD_MAX - size)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		size += (size_t)n;
	}
	buf[size] = '\0';
	*len = size;
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* LOCK_SH on the container's ATTACH_LOCK (made as the job user): the next step of the name waits for it. */
static int lock_attached(int dfd, uid_t uid)
{
	struct stat st;
	int fd = openat(dfd, ATTACH_LOCK, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid || flock(fd, LOCK_SH | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int attach_find(struct plugin_context *ctx, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	const char *name = container_args.name;
	char path[PATH_MAX], lock[PATH_MAX];
	struct record r;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int dfd = -1, afd = -1, pidfd = -1, mine, locked;
	int rc = 0;

	if (record_dir_path(ctx, name, path, sizeof(path)) < 0)
		return 0; /* named_start says why */
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (dfd < 0 || fstat(dfd, &st) < 0 || st.st_uid != ctx->job.uid)
		goto done;
	buf = read_record(dfd, ctx->job.uid, &len);
	if (buf == NULL)
		goto done;
	if (parse_record(buf, len, &r) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s: %s/" ATTACH_RECORD " is not a record of a running "
					  "container: not attaching",
			 name, path);
		rc = -1;
		goto done;
	}
	/*
	 * First the lock that the next step of the name waits for: once it is held, the
	 * container found below is the one whose layer is mounted (attach_wait_detached).
	 */
	afd = lock_attached(dfd, ctx->job.uid);
	if (afd < 0)
		goto done;
	pidfd = child_pidfd_open((pid_t)r.pid);
	if (pidfd < 0)
		goto done; /* a record left by a step that ended */
	mine = process_is_users((pid_t)r.pid, ctx->job.uid);
	if (mine == 0) {
		snprintf(err, errlen,
			 PLUGIN_NAME ": --container-name: %s: its record names process %ld, which is not the job user's: "
				     "not attaching",
			 name, r.pid);
		rc = -1;
		goto done;
	}
	snprintf(lock, sizeof(lock), "/proc/%ld/ns/mnt", r.pid);
	if (mine < 0 || stat(lock, &st) < 0 || (unsigned long long)st.st_dev != r.dev ||
	    (unsigned long long)st.st_ino != r.ino || !child_pidfd_alive(pidfd))
		goto done; /* gone, or another process under the pid: not running */
	/* The entry under the container stays while the step is attached (its own step may end first). */
	if (strcmp(r.entry, "-") != 0) {
		if (!cli_entry_name_ok(r.entry, ctx->job.uid) ||
		    cli_user_path(ctx, r.entry, LOCK_FILE, lock, sizeof(lock)) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s: its record names no entry of the cache: "
						  "not attaching",
				 name);
			rc = -1;
			goto done;
		}
		locked = lock_shared(lock, 0, ctx->job.uid, &c->lock_fd, err, errlen);
		if (locked < 0) {
			rc = -1;
			goto done;
		}
		if (locked == 0)
			goto done;
		snprintf(c->entry, sizeof(c->entry), "%s", r.entry);
	}
	if (r.env_len > 0) {
		c->run_env = malloc(r.env_len + 1);
		if (c->run_env == NULL) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-name: out of memory");
			rc = -1;
			goto done;
		}
		memcpy(c->run_env, r.env, r.env_len);
		c->run_env[r.env_len] = '\0';
		c->run_env_len = r.env_len;
	}
	c->attach = 1;
	c->attach_pid = (int)r.pid;
	c->attach_pidfd = pidfd;
	c->attach_mnt_dev = r.dev;
	c->attach_mnt_ino = r.ino;
	c->attached_fd = afd;
	pidfd = afd = -1;
	rc = 1;
done:
	if (pidfd >= 0)
		close(pidfd);
	if (afd >= 0)
		close(afd);
	if (dfd >= 0)
		close(dfd);
	free(buf);
	return rc;
}

int attach_record_dir(struct plugin_context *ctx, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char name[32];
	struct stat st;
	int fd;

	snprintf(name, sizeof(name), "%u.%u", (unsigned)ctx->job.jobid, (unsigned)ctx->job.stepid);
	if (record_dir_path(ctx, name, c->run_dir, sizeof(c->run_dir)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": the step's record: path too long");
		return -1;
	}
	/* Made as the job user (user_init's effective ids); one that exists (a name of the user's) is left as it is. */
	if (mkdir(c->run_dir, 0700) < 0) {
		c->run_dir[0] = '\0';
		return 0;
	}
	fd = open(c->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != ctx->job.uid) {
		if (fd >= 0)
			close(fd);
		c->run_dir[0] = '\0';
		return 0;
	}
	c->run_fd = fd;
	return 0;
}

/* write(2) all of it. */
static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void attach_record(const struct plugin_context *ctx)
{
	const struct container *c = &ctx->container;
	int dfd = c->named_fd >= 0 ? c->named_fd : c->run_fd;
	char head[NAME_MAX + 128];
	struct stat ns;
	int fd, n;

	if (dfd < 0 || c->attach || fstat(c->mntns_fd, &ns) < 0)
		return;
	n = snprintf(head, sizeof(head), RECORD_MAGIC "\n%d %llu %llu\n%s\n", (int)getpid(),
		     (unsigned long long)ns.st_dev, (unsigned long long)ns.st_ino, c->lock_fd >= 0 && c->entry[0] != '\0' ? c->entry : "-");
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	unlinkat(dfd, RECORD_NEW, 0);
	fd = openat(dfd, RECORD_NEW, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0) {
		pyxis_info(PLUGIN_NAME ": the container's record: %m");
		return;
	}
	if (write_all(fd, head, (size_t)n) < 0 || (c->run_env_len > 0 && write_all(fd, c->run_env, c->run_env_len) < 0) ||
	    renameat(dfd, RECORD_NEW, dfd, ATTACH_RECORD) < 0) {
		pyxis_info(PLUGIN_NAME ": the container's record: %m");
		unlinkat(dfd, RECORD_NEW, 0);
	}
	close(fd);
}

int attach_join(const struct plugin_context *ctx, char *err, size_t errlen)
{
	static const char *const names[] = { "user", "cgroup", "mnt", "ipc", "uts", "net" };
	static const char *const what[] = { "user", "cgroup", "mount", "IPC", "UTS", "network" };
	static const int types[] = { CLONE_NEWUSER, CLONE_NEWCGROUP, CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET };
	const struct container *c = &ctx->container;
	const int asked[] = { 0, 0, 0, container_args.unshare_ipc == 1, container_args.unshare_uts == 1,
			      container_args.unshare_net == 1 };
	int fds[6] = { -1, -1, -1, -1, -1, -1 }, same[6] = { 0 };
	pid_t pid = (pid_t)c->attach_pid;
	struct stat mnt;
	int i, rc = -1;

	/* Opened with the job user's credentials: the kernel lets the user open only what they may trace. */
	for (i = 0; i < 6; ++i) {
		fds[i] = child_open_ns(pid, names[i], &same[i]); /* one that is the task's own is not joined */
		if (fds[i] < 0 && !(i == 1 && errno == ENOENT)) {
			snprintf(err, errlen, PLUGIN_NAME ": couldn't open the running container's %s namespace: %m",
				 what[i]);
			goto fail;
		}
	}
	/* Still the recorded process (the pidfd outlived no reuse of its pid), still the user's, still in the container. */
	if (fstat(fds[2], &mnt) < 0 || (unsigned long long)mnt.st_dev != c->attach_mnt_dev ||
	    (unsigned long long)mnt.st_ino != c->attach_mnt_ino || process_is_users(pid, ctx->job.uid) != 1 ||
	    !child_pidfd_alive(c->attach_pidfd)) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s: the running container ended", container_args.name);
		goto fail;
	}
	for (i = 3; i < 6; ++i) {
		if (asked[i] && same[i]) {
			snprintf(err, errlen,
				 PLUGIN_NAME ": error: --container-unshare=%s requested but the container is not in a "
					     "separate %s namespace",
				 names[i], what[i]);
			goto fail;
		}
	}
	/* As pyxis: the user namespace first (unless the job's user is root), then the others. */
	for (i = 0; i < 6; ++i) {
		if (fds[i] < 0 || same[i] || (i == 0 && ctx->job.uid == 0))
			continue;
		if (setns(fds[i], types[i]) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": couldn't join the running container's %s namespace: %m", what[i]);
			goto fail;
		}
	}
	rc = 0;
fail:
	for (i = 0; i < 6; ++i)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

void attach_release(struct plugin_context *ctx)
{
	struct container *c = &ctx->container;

	/* This step's record goes first: an attacher then finds no container, rather than a dead one. */
	if (!c->attach && c->named_fd >= 0) {
		unlinkat(c->named_fd, ATTACH_RECORD, 0);
		unlinkat(c->named_fd, RECORD_NEW, 0);
	}
	if (c->run_fd >= 0) {
		unlinkat(c->run_fd, ATTACH_RECORD, 0);
		unlinkat(c->run_fd, RECORD_NEW, 0);
		unlinkat(c->run_fd, ATTACH_LOCK, 0);
		close(c->run_fd);
		c->run_fd = -1;
		/* Only an empty directory goes (rmdir(2) follows no symlink): what the user put there stays. */
		rmdir(c->run_dir);
	}
	if (c->attached_fd >= 0)
		close(c->attached_fd);
	if (c->attach_pidfd >= 0)
		close(c->attach_pidfd);
	c->attached_fd = c->attach_pidfd = -1;
	free(c->run_env);
	c->run_env = NULL;
	c->run_env_len = 0;
}

int attach_wait_detached(int dirfd, const char *name, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, ATTACH_LOCK, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			pyxis_info(PLUGIN_NAME ": --container-name: %s: waiting for the steps attached to its previous step",
				   name);
		if (lock_wait(fd, LOCK_EX, DETACH_WAIT_SECONDS) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-name: %s: %s", name,
				 errno == EINTR || errno == ECANCELED ? "the step is cancelled"
								      : "a step attached to its previous step still runs");
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}
