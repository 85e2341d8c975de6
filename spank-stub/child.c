/*
 * Child processes of slurmstepd, pyxis enroot.c style: stdin at /dev/null,
 * stdout and stderr in memfds, privileges dropped completely before the
 * child's code runs (child_prepare, for every child of the stub). One is not
 * waited for: the entry's creator (child_spawn_detached), stdio at /dev/null.
 */
#include <stdarg.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "child.h"

#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

int child_find_executable(const char *name, const char *path, char *buf, size_t len)
{
	const char *dir = path;
	size_t n;

	while (*dir != '\0') {
		n = strcspn(dir, ":");
		if (n > 0 && snprintf(buf, len, "%.*s/%s", (int)n, dir, name) < (int)len && access(buf, X_OK) == 0)
			return 0;
		dir += n;
		dir += strspn(dir, ":");
	}
	buf[0] = '\0';
	return -1;
}

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
 * Children of user_init otherwise keep the real uid 0 of slurmstepd, so
 * privileges are dropped completely (setgroups/setresgid/setresuid); root's
 * children first regain euid 0.
 */
int child_become(const struct pyxis_job *user)
{
	uid_t uid = user != NULL ? user->uid : 0;
	gid_t gid = user != NULL ? user->gid : 0;

	if ((geteuid() != 0 && seteuid(0) < 0) ||
	    setgroups(user != NULL ? user->ngids : 0, user != NULL ? user->gids : NULL) < 0 ||
	    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;
	return 0;
}

/*
 * slurmstepd holds some descriptors without O_CLOEXEC (its sockets, other
 * plugins' files), and the child runs as the job user, who may ptrace it.
 * close_range(2) since Linux 5.9; else by the list in /proc/self/fd.
 */
static void close_from(int first)
{
	struct dirent *d;
	DIR *dir;
	int fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0U) == 0)
		return;
#endif
	dir = opendir("/proc/self/fd");
	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		fd = atoi(d->d_name);
		if (fd >= first && fd != dirfd(dir))
			close(fd);
	}
	closedir(dir);
}

/* The signal mask survives fork and exec: slurmstepd's (it blocks some) is not the child's. */
static int reset_stdio(int out_fd, int err_fd)
{
	sigset_t mask;
	int null_fd;

	sigemptyset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO) < 0)
		return -1;
	if (null_fd > STDERR_FILENO)
		close(null_fd);
	return 0;
}

/*
 * Slurm sends a step's signals to every process of the step (proctrack), and a child
 * out of the step's tree (fuse.c's daemon) may still be in its cgroup: every signal a
 * step may be sent is ignored (SIG_IGN survives execve, and libfuse sets its
 * INT/TERM/HUP handlers only over SIG_DFL). Faults (SEGV, BUS, ...), SIGCHLD and
 * SIGCONT keep their defaults.
 */
static void ignore_step_signals(void)
{
	static const int kept[] = { SIGKILL, SIGSTOP, SIGCHLD, SIGCONT, SIGSEGV, SIGBUS,
				    SIGFPE,  SIGILL,  SIGTRAP, SIGABRT, SIGSYS };
	size_t i;
	int sig;

	for (sig = 1; sig < NSIG; ++sig) {
		for (i = 0; i < sizeof(kept) / sizeof(kept[0]) && kept[i] != sig; ++i)
			;
		/* glibc's own real-time signals (32, 33) refuse, which is fine. */
		if (i == sizeof(kept) / sizeof(kept[0]))
			signal(sig, SIG_IGN);
	}
}

int child_prepare(const struct child_setup *s)
{
	int pass[2] = { -1, -1 }, mntns = -1, n = 0;

	if (s->flags & CHILD_OWN_GROUP)
		setpgid(0, 0);
	if (s->flags & CHILD_IDLE) {
		setpriority(PRIO_PROCESS, 0, 19);
		syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
	}
	/* Above 9 first: any of them may be 3 or 4. */
	for (int i = 0; i < 2; ++i)
		if (s->pass[i] >= 0 && (pass[i] = fcntl(s->pass[i], F_DUPFD_CLOEXEC, 10)) < 0)
			return 126;
	if (s->mntns_fd >= 0 && (mntns = fcntl(s->mntns_fd, F_DUPFD_CLOEXEC, 10)) < 0)
		return 126;
	if (reset_stdio(s->out_fd, s->err_fd) < 0)
		return 126;
	for (int i = 0; i < 2; ++i)
		if (pass[i] >= 0 && dup2(pass[i], 3 + n++) < 0)
			return 126;
	if (s->flags & CHILD_IGNORE_STEP_SIGNALS)
		ignore_step_signals();
	if (s->flags & CHILD_DEFAULT_SIGNALS)
		for (int sig = 1; sig < NSIG; ++sig)
			signal(sig, SIG_DFL);
	/* As root (user_init leaves the effective uid the job user's). */
	if (mntns >= 0 && ((geteuid() != 0 && seteuid(0) < 0) || setns(mntns, CLONE_NEWNS) < 0)) {
		dprintf(STDERR_FILENO, "couldn't enter the FUSE mount's namespace: %m\n");
		return 126;
	}
	close_from(3 + n);
	if (!(s->flags & CHILD_KEEP_IDS) && child_become(s->user) < 0) {
		dprintf(STDERR_FILENO, "couldn't %s: %m\n", s->user != NULL ? "drop privileges" : "become root");
		return 126;
	}
	if (chdir(s->cwd != NULL ? s->cwd : "/") < 0 && (!(s->flags & CHILD_CWD_OR_ROOT) || chdir("/") < 0)) {
		dprintf(STDERR_FILENO, "%s: %m\n", s->cwd != NULL ? s->cwd : "/");
		return s->flags & CHILD_CWD_OR_ROOT ? 126 : 1;
	}
	return 0;
}

const char *child_env_get(char *const envp[], const char *name)
{
	size_t len = strlen(name), i;

	for (i = 0; envp != NULL && envp[i] != NULL; ++i)
		if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
			return envp[i] + len + 1;
	return NULL;
}

void child_env_put(struct child_env *env, const char *fmt, ...)
{
	size_t len, i;
	va_list ap;
	char *entry;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&entry, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return;
	len = strcspn(entry, "=");
	for (i = 0; i < env->n; ++i)
		if (strncmp(env->envp[i], entry, len + 1) == 0) {
			env->envp[i] = entry;
			return;
		}
	if (env->n < CHILD_ENV_MAX - 1)
		env->envp[env->n++] = entry;
	env->envp[env->n] = NULL;
}

const char *child_search_path(void)
{
	const char *path = getenv("PATH");

	return path != NULL && path[0] != '\0' ? path : PYXIS_CACHE_PATH;
}

void child_env_path(struct child_env *env, enum child_path which, const char *first)
{
	const char *slurmd = getenv("PATH"), *path = PYXIS_CACHE_PATH, *then = "";

	if (which == CHILD_PATH_SLURMD)
		path = child_search_path();
	else if (which == CHILD_PATH_COMMAND && slurmd != NULL)
		then = slurmd;
	child_env_put(env, "PATH=%s%s%s%s%s", first != NULL ? first : "", first != NULL ? ":" : "", path,
		      then[0] != '\0' ? ":" : "", then);
}

long long child_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int child_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

int child_pidfd_alive(int pidfd)
{
#ifdef SYS_pidfd_send_signal
	return pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
#else
	(void)pidfd;
	return 0;
#endif
}

int child_ns_is_own(int fd, const char *ns)
{
	char path[64];
	struct stat theirs, ours;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	return fstat(fd, &theirs) == 0 && stat(path, &ours) == 0 && theirs.st_dev == ours.st_dev &&
	       theirs.st_ino == ours.st_ino;
}

int child_open_ns(pid_t pid, const char *ns, int *same)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && same != NULL)
		*same = child_ns_is_own(fd, ns);
	return fd;
}

int child_start(struct child *ch, child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, int keep_fd,
		int mntns_fd, char *err, size_t errlen)
{
	struct child_setup s = { .pass = { keep_fd, -1 }, .mntns_fd = mntns_fd, .user = user, .cwd = cwd,
				 .flags = CHILD_OWN_GROUP };
	int status;

	ch->pid = ch->pidfd = -1;
	ch->uid = user != NULL ? user->uid : 0;
	ch->conn = 0;
	ch->point_name = NULL;
	memset(ch->waiters, 0, sizeof(ch->waiters));
	ch->out_fd = memfd_create("pyxis-cache-stdout", MFD_CLOEXEC);
	ch->err_fd = memfd_create("pyxis-cache-stderr", MFD_CLOEXEC);
	if (ch->out_fd < 0 || ch->err_fd < 0) {
		snprintf(err, errlen, "memfd_create: %m");
		goto fail;
	}
	ch->pid = fork();
	if (ch->pid < 0) {
		snprintf(err, errlen, "fork: %m");
		goto fail;
	}
	if (ch->pid == 0) {
		s.out_fd = ch->out_fd;
		s.err_fd = ch->err_fd;
		status = child_prepare(&s);
		_exit(status != 0 ? status : fn(arg));
	}
	ch->pidfd = child_pidfd_open(ch->pid);
	return 0;
fail:
	child_end(ch);
	return -1;
}

/* In a child of root: fusectl mounted in a namespace of its own (it need not be mounted on the node). */
static int abort_fn(void *arg)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", *(unsigned *)arg);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 1;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd >= 0 && write(fd, "1", 1) == 1 ? 0 : 1;
}

void child_abort_fuse(unsigned conn)
{
	struct child ch = CHILD_INIT;
	char err[256];
	int status;

	if (conn == 0 || child_start(&ch, abort_fn, &conn, NULL, "/", -1, -1, err, sizeof(err)) < 0)
		return;
	child_wait(&ch, NULL, NULL, &status, err, sizeof(err));
	child_end(&ch);
}

/* Up to len bytes of a /proc file, NUL-terminated; the length, or -1. */
static ssize_t read_proc(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

int child_proc_stat(const char *path, char *state, long *pgrp)
{
	char buf[512], *p;
	long group;

	/* "pid (comm) S ppid pgrp ...": comm may hold anything, the last ')' ends it. */
	if (read_proc(path, buf, sizeof(buf)) <= 0 || (p = strrchr(buf, ')')) == NULL || p[1] == '\0' ||
	    sscanf(p + 2, "%c %*d %ld", state, &group) != 2)
		return -1;
	if (pgrp != NULL)
		*pgrp = group;
	return 0;
}

int child_fuse_wchan(const char *wchan, char state)
{
	if (state != 'D' && state != 'S')
		return 0;
	if (strcmp(wchan, "0") == 0)
		return state == 'D';
	if (strstr(wchan, "fuse") != NULL || strcmp(wchan, "request_wait_answer") == 0)
		return 1;
	/* A page's lock: folio_wait_bit_common, __folio_lock_killable; before 5.16 wait_on_page_bit_common, __lock_page. */
	return state == 'D' && (strstr(wchan, "folio_wait") != NULL || strstr(wchan, "folio_lock") != NULL ||
				strstr(wchan, "wait_on_page") != NULL || strstr(wchan, "lock_page") != NULL);
}

int child_fuse_waiter(const char *task, int *killed, unsigned long long *switches)
{
	char path[128], buf[4096], *end;
	unsigned long long pending = 0;
	char state;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stat", task);
	if (child_proc_stat(path, &state, NULL) < 0 || (state != 'D' && state != 'S'))
		return 0;
	snprintf(path, sizeof(path), "%s/wchan", task);
	if (read_proc(path, buf, sizeof(buf)) <= 0 || !child_fuse_wchan(buf, state))
		return 0;
	snprintf(path, sizeof(path), "%s/status", task);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	*switches = 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (strncmp(buf, "SigPnd:", 7) == 0 || strncmp(buf, "ShdPnd:", 7) == 0)
			pending |= strtoull(buf + 7, &end, 16);
		else if (strncmp(buf, "voluntary_ctxt_switches:", 24) == 0)
			*switches += strtoull(buf + 24, &end, 10);
		else if (strncmp(buf, "nonvoluntary_ctxt_switches:", 27) == 0)
			*switches += strtoull(buf + 27, &end, 10);
	}
	fclose(f);
	*killed = (pending & (1ULL << (SIGKILL - 1))) != 0;
	return 1;
}

/*
 * Abort the FUSE connections in task's mount table that the job user mounted: type fuse
 * or fuse.* (fuseblk's device is a disk's, not a connection), device 0:N (N the
 * connection), and user_id=<uid> among the superblock's options; and conn (the step's
 * own mount, whose user_id is its namespace's), when task's mounts have it, or name its
 * mount point (point_name, NULL: none): a container's root, an overlay whose lower layer
 * is the mount (lowerdir=<point>/lower), which the container's view does not have itself.
 */
static void abort_user_fuse(const char *task, uid_t uid, unsigned conn, const char *point_name)
{
	char path[128], line[3 * PATH_MAX], want[32], *dash, *type, *source, *options, *save;
	unsigned major, minor;
	int conn_done = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/mountinfo", task);
	snprintf(want, sizeof(want), "user_id=%u", (unsigned)uid);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	/* ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS */
	while (fgets(line, sizeof(line), f) != NULL) {
		if (conn != 0 && !conn_done && point_name != NULL && strstr(line, point_name) != NULL) {
			child_abort_fuse(conn);
			conn_done = 1;
		}
		if (sscanf(line, "%*u %*u %u:%u", &major, &minor) != 2 || major != 0 || minor == 0 ||
		    (dash = strstr(line, " - ")) == NULL)
			continue;
		type = strtok_r(dash + 3, " \n", &save);
		source = type == NULL ? NULL : strtok_r(NULL, " \n", &save);
		options = source == NULL ? NULL : strtok_r(NULL, " \n", &save);
		if (options == NULL || (strcmp(type, "fuse") != 0 && strncmp(type, "fuse.", 5) != 0))
			continue;
		if (minor == conn) {
			if (!conn_done)
				child_abort_fuse(minor);
			conn_done = 1;
			continue;
		}
		for (char *o = strtok_r(options, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save))
			if (strcmp(o, want) == 0)
				child_abort_fuse(minor);
	}
	fclose(f);
}

ssize_t child_read_proc(const char *pid, const char *file, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
	n = read_proc(path, buf, len);
	return n > 0 ? n : -1;
}

/*
 * Whether a process of group pgid is still alive: kill(-pgid, 0) also finds its zombies,
 * and one whose parent died with the group (bwrap's sandboxed child) waits for whoever
 * adopts it, which may reap late. Only the living can be stuck in a FUSE request.
 */
static int group_alive(pid_t pgid)
{
	char path[64], state;
	struct dirent *d;
	int alive = 0;
	long pgrp;
	DIR *dir;

	if (kill(-pgid, 0) < 0)
		return 0;
	dir = opendir("/proc");
	if (dir == NULL)
		return 1;
	while (!alive && (d = readdir(dir)) != NULL) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/stat", d->d_name);
		if (child_proc_stat(path, &state, &pgrp) < 0)
			continue;
		alive = pgrp == pgid && state != 'Z' && state != 'X';
	}
	closedir(dir);
	return alive;
}

/*
 * One look (about once a second) at the threads of ch's process group: one in the same
 * FUSE request (no context switch since) for CHILD_FUSE_STALL_SECONDS, or killed and in
 * it at two looks, has the job user's FUSE connections in its view aborted (child.h).
 * Root's children are not looked at.
 */
static void unstick(struct child *ch)
{
	struct child_waiter seen[sizeof(ch->waiters) / sizeof(ch->waiters[0])] = { { 0 } };
	char path[64], task[96], state;
	unsigned long long switches = 0;
	size_t n = 0, i;
	long long now = child_now_ms(), since;
	struct dirent *d, *t;
	DIR *procs, *tasks;
	int killed = 0;
	long pgrp;

	if (ch->uid == 0 || ch->pid <= 0 || (procs = opendir("/proc")) == NULL)
		return;
	while ((d = readdir(procs)) != NULL) {
		if (!isdigit((unsigned char)d->d_name[0]) || strlen(d->d_name) > 16)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		if (child_proc_stat(path, &state, &pgrp) < 0 || (pgrp != ch->pid && atol(d->d_name) != ch->pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", d->d_name);
		tasks = opendir(path);
		while (tasks != NULL && (t = readdir(tasks)) != NULL) {
			if (!isdigit((unsigned char)t->d_name[0]) || strlen(t->d_name) > 16)
				continue;
			snprintf(task, sizeof(task), "%s/%s", path, t->d_name);
			if (!child_fuse_waiter(task, &killed, &switches))
				continue;
			since = now;
			for (i = 0; i < sizeof(ch->waiters) / sizeof(ch->waiters[0]); ++i)
				if (ch->waiters[i].tid == atoi(t->d_name) && ch->waiters[i].switches == switches)
					since = ch->waiters[i].since;
			if ((killed && since < now) || now - since >= CHILD_FUSE_STALL_SECONDS * 1000LL) {
				abort_user_fuse(task, ch->uid, ch->conn, ch->point_name);
				continue;
			}
			if (n < sizeof(seen) / sizeof(seen[0]))
				seen[n++] = (struct child_waiter){ .tid = atoi(t->d_name), .switches = switches, .since = since };
		}
		if (tasks != NULL)
			closedir(tasks);
	}
	closedir(procs);
	memcpy(ch->waiters, seen, sizeof(seen));
}

/*
 * The child runs as the job user, who can SIGSTOP it (or a process it waits
 * for): a stop that ready() does not expect kills it at once, and so does
 * running past CHILD_TIMEOUT_SECONDS. Killing its process group takes what it
 * started (unsquashfs) with it. The pidfd wakes us the moment it exits;
 * without one (Linux < 5.3) we poll. With ready(), we look every 2 ms.
 */
int child_wait(struct child *ch, child_ready_fn ready, void *arg, int *status, char *err, size_t errlen)
{
	long long started = child_now_ms(), deadline = started + CHILD_TIMEOUT_SECONDS * 1000LL, look = started + 1000;
	struct pollfd pfd = { .fd = ch->pidfd, .events = POLLIN };
	const char *why = NULL;
	pid_t done;
	int state;

	for (;;) {
		done = waitpid(ch->pid, status, WNOHANG | WUNTRACED);
		if (done < 0 && errno != EINTR) {
			snprintf(err, errlen, "waitpid: %m");
			break;
		}
		if (done == ch->pid && !WIFSTOPPED(*status)) {
			ch->pid = -1;
			*status = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
			return 0;
		}
		state = ready != NULL ? ready(arg) : 0;
		if (state > 0)
			return 1;
		if (state < 0 || done == ch->pid)
			why = "was stopped (SIGSTOP or the like)";
		else if (child_now_ms() >= deadline)
			why = "did not finish in " CHILD_TIMEOUT_TEXT;
		else if (cancel_requested(child_now_ms() - started))
			why = "did not finish before the step was cancelled";
		if (why != NULL) {
			snprintf(err, errlen, "%s, killed", why);
			break;
		}
		/* Killed by someone else (scancel) while in a request of the user's own FUSE server. */
		if (child_now_ms() >= look) {
			unstick(ch);
			look = child_now_ms() + 1000;
		}
		if (pfd.fd >= 0)
			poll(&pfd, 1, ready != NULL ? 2 : 200);
		else
			usleep(ready != NULL ? 2000 : 10000);
	}
	child_end(ch);
	return -1;
}

void child_end(struct child *ch)
{
	long long deadline = child_now_ms() + CHILD_END_SECONDS * 1000LL, look = child_now_ms() + 1000;
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	int status, reaped = 0;
	pid_t done;

	/*
	 * A child forked without child_start (the mounter) has no pidfd yet: without one the
	 * wait below polls every 10 ms, which a warm step paid once for its layer's mounter.
	 * It is still our unreaped child, so its pid cannot have been reused.
	 */
	if (ch->pid > 0 && ch->pidfd < 0)
		ch->pidfd = child_pidfd_open(ch->pid);
	pfd.fd = ch->pidfd;
	if (ch->pid > 0) {
		kill(-ch->pid, SIGKILL);
		kill(ch->pid, SIGKILL);
		/*
		 * SIGKILL cannot end a process waiting for a FUSE server's answer (the user's own
		 * server, or a connection they took): the connection is aborted (the step's own by
		 * the caller, fuse.c; one the job user mounted by unstick), and the wait is bounded:
		 * a child still there is left behind.
		 */
		/*
		 * Until its group is gone too: one of the group in a request (a grandchild, the
		 * child reaped already) has the connection aborted under it all the same.
		 */
		for (;;) {
			if (!reaped) {
				done = waitpid(ch->pid, &status, WNOHANG);
				reaped = done == ch->pid || (done < 0 && errno != EINTR);
			}
			if ((reaped && !group_alive(ch->pid)) || child_now_ms() >= deadline)
				break;
			if (child_now_ms() >= look) {
				unstick(ch);
				look = child_now_ms() + 1000;
			}
			if (pfd.fd >= 0 && !reaped)
				poll(&pfd, 1, 100);
			else
				usleep(reaped ? 100000 : 10000);
		}
	}
	ch->pid = -1;
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	if (ch->out_fd >= 0)
		close(ch->out_fd);
	if (ch->err_fd >= 0)
		close(ch->err_fd);
	ch->pidfd = ch->out_fd = ch->err_fd = -1;
}

struct exec_args {
	char *const *argv;
	const struct pyxis_job *user; /* NULL: root */
	unsigned flags;
};

/*
 * child_fn: execve an absolute path with a small fixed environment. PATH is
 * CHILD_PATH_COMMAND (enroot from slurmd's: the command runs `enroot import`
 * for a registry image); as the job user, the job's ENROOT_CONFIG_PATH and
 * ENROOT_ALLOW_HTTP too, which enroot and the command's digest lookup read for
 * that user's own import. A child whose uid is 0 gets HOME=/root.
 */
static int exec_fn(void *arg)
{
	const struct exec_args *exec = arg;
	struct child_env env = CHILD_ENV_INIT;

	child_env_path(&env, CHILD_PATH_COMMAND, NULL);
	child_env_put(&env, "HOME=%s", exec->user != NULL && exec->user->uid != 0 ? exec->user->home : "/root");
	if (exec->user != NULL && exec->user->enroot_config[0] != '\0')
		child_env_put(&env, "ENROOT_CONFIG_PATH=%s", exec->user->enroot_config);
	if (exec->user != NULL && exec->user->enroot_allow_http[0] != '\0')
		child_env_put(&env, "ENROOT_ALLOW_HTTP=%s", exec->user->enroot_allow_http);
	if (exec->flags & CHILD_IGNORE_SIGTERM)
		signal(SIGTERM, SIG_IGN);
	execve(exec->argv[0], exec->argv, env.envp);
	dprintf(STDERR_FILENO, "%s: %m\n", exec->argv[0]);
	return 127;
}

int child_exec(char *const argv[], const struct pyxis_job *user, const char *cwd, unsigned flags,
	       struct child_output *output)
{
	struct exec_args exec = { .argv = argv, .user = user, .flags = flags };
	struct child ch;
	int status;
	int rc = -1;

	output->out[0] = output->err[0] = '\0';
	if (child_start(&ch, exec_fn, &exec, user, cwd, -1, -1, output->err, sizeof(output->err)) < 0)
		return -1;
	/* Before the wait: a stopped child's stdout is not read (the user may be rewriting it). */
	if (child_wait(&ch, NULL, NULL, &status, output->err, sizeof(output->err)) < 0)
		goto fail;
	child_read_capture(ch.out_fd, output->out, sizeof(output->out));
	child_read_capture(ch.err_fd, output->err, sizeof(output->err));
	rc = status;
fail:
	child_end(&ch);
	return rc;
}

pid_t child_fork_detached(void)
{
	pid_t pid, grandchild = -1;
	int pipe_fd[2];
	int status;

	if (pipe2(pipe_fd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pipe_fd[0]);
		close(pipe_fd[1]);
		return -1;
	}
	if (pid == 0) {
		/* A session of its own, and its parent gone at once: out of the step's process tree. */
		close(pipe_fd[0]);
		setsid();
		grandchild = fork();
		if (grandchild != 0) {
			if (write(pipe_fd[1], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
				_exit(1);
			_exit(grandchild < 0);
		}
		close(pipe_fd[1]);
		return 0;
	}
	close(pipe_fd[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			break;
	if (read(pipe_fd[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
		grandchild = -1;
	close(pipe_fd[0]);
	return grandchild > 0 ? grandchild : -1;
}

int child_spawn_detached(char *const argv[], const struct pyxis_job *user)
{
	struct exec_args exec = { .argv = argv, .user = user };
	struct child_setup s = { .out_fd = -1, .err_fd = -1, .pass = { -1, -1 }, .mntns_fd = -1, .user = user,
				 .cwd = user->cwd, .flags = CHILD_IDLE | CHILD_CWD_OR_ROOT };
	pid_t pid;
	int status;

	pid = child_fork_detached();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		status = child_prepare(&s);
		_exit(status != 0 ? status : exec_fn(&exec));
	}
	return 0;
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
