/*
 * The step's container: the runtime (runtime.c) starts it around a process
 * that stops itself; once that process is stopped inside the rootfs, every
 * mount is in place and the stub opens its namespaces, then kills it. See
 * docs/srun.md, "Running the task in the rootfs".
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common.h"
#include "container.h"

/* What container_start watches while the runtime sets the container up. */
struct watch {
	const struct step_root *root; /* known by its ids (its path may be in a mount namespace of its own) */
	int info_fd; /* bwrap: the read end of its --info-fd, non-blocking; -1 for enroot */
	char info[512];
	size_t len;
	pid_t target; /* the process that stops itself in the container; -1 until bwrap says */
};

/* bwrap's sandbox pid, once its --info-fd JSON ({"child-pid": N, ...}) has it. */
static void read_info_pid(struct watch *w)
{
	const char *p;
	char *end;
	ssize_t n;
	long pid;

	while (w->info_fd >= 0 && w->len < sizeof(w->info) - 1) {
		n = read(w->info_fd, w->info + w->len, sizeof(w->info) - 1 - w->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		w->len += (size_t)n;
	}
	w->info[w->len] = '\0';
	p = strstr(w->info, "\"child-pid\"");
	if (p == NULL || (p = strchr(p, ':')) == NULL)
		return;
	pid = strtol(p + 1, &end, 10);
	if (*end != '\0' && pid > 0)
		w->target = (pid_t)pid;
}

/* 1 once pid is stopped, 0 while it runs, -1 when it is gone. */
static int is_stopped(pid_t pid)
{
	char path[32], state;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (child_proc_stat(path, &state, NULL) < 0)
		return -1;
	return state == 'T' || state == 't' ? 1 : state == 'Z' || state == 'X' ? -1 : 0;
}

/* pid's root directory is rootfs: it has switched into the container. */
static int in_rootfs(pid_t pid, const struct watch *w)
{
	char path[64];
	struct stat root;

	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	if (stat(path, &root) < 0)
		return 0;
	return root.st_dev == w->root->dev && root.st_ino == w->root->ino;
}

/*
 * child_ready_fn. The one stop the stub expects is the target's own "kill -STOP
 * $$" inside the rootfs (with enroot the target is the runtime's own process,
 * so the runtime itself stops): that stop means ready. A stop anywhere else
 * (the user stopping bwrap, or enroot before it switched root) is an attack or
 * an accident, and child_wait kills the runtime for it, as any stopped child.
 */
static int container_stopped(void *arg)
{
	struct watch *w = arg;
	int stopped;

	if (w->target < 0)
		read_info_pid(w);
	if (w->target < 0)
		return 0;
	stopped = is_stopped(w->target);
	if (stopped <= 0)
		return 0; /* running, or gone: the runtime's exit tells why */
	return in_rootfs(w->target, w) ? 1 : -1;
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

/*
 * --container-unshare: the container's net, ipc and uts namespaces, when they
 * are not the node's; one that was asked for and is the node's is pyxis's
 * error (enroot 4.1 does not unshare them).
 */
static int open_unshared(pid_t pid, const struct container_args *args, struct container *c, char *err, size_t errlen)
{
	static const char *const names[] = { "net", "ipc", "uts" };
	static const char *const what[] = { "network", "IPC", "UTS" };
	const int asked[] = { args->unshare_net == 1, args->unshare_ipc == 1, args->unshare_uts == 1 };
	int *fds[] = { &c->netns_fd, &c->ipcns_fd, &c->utsns_fd };
	int i, fd, same;

	for (i = 0; i < 3; ++i) {
		if (!asked[i])
			continue;
		fd = child_open_ns(pid, names[i], &same);
		if (fd < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": couldn't open the container's %s namespace: %m", names[i]);
			return -1;
		}
		if (same) {
			close(fd);
			snprintf(err, errlen,
				 PLUGIN_NAME ": error: --container-unshare=%s requested but the container is not in a "
					     "separate %s namespace",
				 names[i], what[i]);
			return -1;
		}
		*fds[i] = fd;
	}
	return 0;
}

/* The runtime's stdout then stderr, NUL-terminated (NULL when empty). */
static char *read_log(const struct child *ch)
{
	const int fds[] = { ch->out_fd, ch->err_fd };
	char *buf = NULL, *grown;
	size_t len = 0;
	ssize_t n;
	off_t off;
	int i;

	for (i = 0; i < 2; ++i) {
		for (off = 0; fds[i] >= 0; off += n) {
			grown = realloc(buf, len + 65536 + 1);
			if (grown == NULL)
				break;
			buf = grown;
			n = pread(fds[i], buf + len, 65536, off);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	if (buf == NULL || len == 0) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* runtime_bwrap_after in a child as the job user, waited for. 0, or -1 with one line in err. */
static int bwrap_after(const struct runtime_task *task, pid_t target, char *err, size_t errlen)
{
	struct runtime_after after = { .pid = (int)target, .task = task };
	struct child ch = CHILD_INIT;
	struct child_output output = { .out = "", .err = "" };
	int status = -1;
	int rc = -1;

	if (child_start(&ch, runtime_bwrap_after, &after, task->job, "/", -1, -1, output.err, sizeof(output.err)) < 0) {
		child_error("bwrap", -1, &output, err, errlen);
		return -1;
	}
	if (child_wait(&ch, NULL, NULL, &status, output.err, sizeof(output.err)) == 0) {
		child_read_capture(ch.err_fd, output.err, sizeof(output.err));
		if (status == 0)
			rc = 0;
	}
	if (rc < 0)
		child_error("bwrap", status, &output, err, errlen);
	child_end(&ch);
	return rc;
}

int container_start(const struct runtime_task *task, struct container *c, char *err, size_t errlen)
{
	const char *name = pyxis_config_runtime_name(task->runtime);
	struct watch w = { .root = task->root, .info_fd = -1, .target = -1 };
	struct child ch = CHILD_INIT;
	struct child_output output = { .out = "", .err = "" };
	int info[2] = { -1, -1 };
	int status = -1;
	int ready;
	int rc = -1;

	if (task->runtime == RUNTIME_BWRAP &&
	    (pipe2(info, O_CLOEXEC) < 0 || fcntl(info[0], F_SETFL, O_NONBLOCK) < 0)) {
		snprintf(err, errlen, PLUGIN_NAME ": pipe: %m");
		goto fail;
	}
	/* A step's mount: the runtime starts in the mount's namespace. */
	if (child_start(&ch, runtime_exec, (void *)task, task->job, "/", info[1], task->root->mntns_fd, output.err,
			sizeof(output.err)) < 0) {
		child_error(name, -1, &output, err, errlen);
		goto fail;
	}
	ch.conn = c->fuse.conn; /* a request of the mount held by the user is aborted (child.h) */
	ch.point_name = c->fuse.point[0] != '\0' ? strrchr(c->fuse.point, '/') + 1 : NULL;
	if (info[1] >= 0)
		close(info[1]);
	info[1] = -1;
	w.info_fd = info[0];
	if (task->runtime == RUNTIME_ENROOT)
		w.target = ch.pid;

	ready = child_wait(&ch, container_stopped, &w, &status, output.err, sizeof(output.err));
	if (ready <= 0) {
		if (ready == 0)
			child_read_capture(ch.err_fd, output.err, sizeof(output.err));
		child_error(name, status, &output, err, errlen);
		goto fail;
	}

	/* bwrap: what it cannot do in --container-mounts, while the container's process is stopped. */
	if (task->runtime == RUNTIME_BWRAP && runtime_bwrap_after_needed(task->args) &&
	    bwrap_after(task, w.target, err, errlen) < 0) {
		kill(w.target, SIGKILL);
		goto fail;
	}
	c->userns_fd = child_open_ns(w.target, "user", NULL);
	c->mntns_fd = child_open_ns(w.target, "mnt", NULL);
	if (c->userns_fd < 0 || c->mntns_fd < 0)
		snprintf(err, errlen, PLUGIN_NAME ": %s: couldn't open the container's namespaces: %m", name);
	else if (open_unshared(w.target, task->args, c, err, errlen) < 0)
		;
	else if ((c->environ = read_environ(w.target, &c->environ_len)) == NULL)
		snprintf(err, errlen, PLUGIN_NAME ": %s: couldn't read the container's environment: %m", name);
	else
		rc = 0;
	/* What the entrypoint printed (with the runtime's own lines), as pyxis shows enroot's log. */
	if (rc == 0 && task->entrypoint && task->args->entrypoint_log == 1)
		c->entrypoint_log = read_log(&ch);
	kill(w.target, SIGKILL);

fail:
	child_end(&ch);
	if (info[0] >= 0)
		close(info[0]);
	if (info[1] >= 0)
		close(info[1]);
	return rc;
}

int container_join_mounts(const struct container *c, char *err, size_t errlen)
{
	/* setns leaves the task in the container's /: the working directory is the user's to walk (container_chdir). */
	if (setns(c->mntns_fd, CLONE_NEWNS) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": couldn't join the container's mount namespace: %m");
		return -1;
	}
	return 0;
}

int container_chdir(const char *cwd, char *err, size_t errlen)
{
	/* The working directory is bound at the same path; "/" when it could not be. */
	if (chdir(cwd) < 0 && chdir("/") < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": chdir %s: %m", cwd);
		return -1;
	}
	return 0;
}

/* --container-unshare's namespaces, once the task holds the capabilities of the container's user namespace. */
static int join_unshared(const struct container *c, char *err, size_t errlen)
{
	static const char *const names[] = { "network", "IPC", "UTS" };
	const int fds[] = { c->netns_fd, c->ipcns_fd, c->utsns_fd };
	const int types[] = { CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS };
	int i;

	for (i = 0; i < 3; ++i) {
		if (fds[i] >= 0 && setns(fds[i], types[i]) < 0) {
			snprintf(err, errlen, PLUGIN_NAME ": couldn't join the container's %s namespace: %m", names[i]);
			return -1;
		}
	}
	return 0;
}

int container_join_user(const struct container *c, char *err, size_t errlen)
{
	/* bwrap run by root makes no user namespace, and joining one's own fails. */
	if (child_ns_is_own(c->userns_fd, "user"))
		return join_unshared(c, err, errlen);
	if (setns(c->userns_fd, CLONE_NEWUSER) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": couldn't join the container's user namespace: %m");
		return -1;
	}
	return join_unshared(c, err, errlen);
}

void container_release(struct container *c)
{
	if (c->userns_fd >= 0)
		close(c->userns_fd);
	if (c->mntns_fd >= 0)
		close(c->mntns_fd);
	c->userns_fd = c->mntns_fd = -1;
	if (c->netns_fd >= 0)
		close(c->netns_fd);
	if (c->ipcns_fd >= 0)
		close(c->ipcns_fd);
	if (c->utsns_fd >= 0)
		close(c->utsns_fd);
	c->netns_fd = c->ipcns_fd = c->utsns_fd = -1;
	free(c->entrypoint_log);
	c->entrypoint_log = NULL;
	free(c->environ);
	c->environ = NULL;
	c->environ_len = 0;
}
