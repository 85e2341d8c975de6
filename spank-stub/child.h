/*
 * Child processes of slurmstepd (pyxis's enroot.c): forked with stdin at
 * /dev/null and their output captured, as the job user or as root; the one
 * way every new child is prepared (child_prepare: child_start's, the entry's
 * creator, fuse.c's daemon and guard); their environment and PATH (child_env).
 * docs/srun.md, "The stub's children", says the rules.
 */
#ifndef PYXIS_CACHE_CHILD_H
#define PYXIS_CACHE_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#include "common.h"
#include "context.h"

/* The longest a child may run (an unpack of a large image included). */
#define CHILD_TIMEOUT_SECONDS 1800
#define CHILD_TIMEOUT_TEXT "30 minutes"
/* How long child_end waits for a child it killed (one in a FUSE request may not die). */
#define CHILD_END_SECONDS 10

struct child_output {
	char out[8192];
	char err[ERROR_MAX];
};

/* Find name in path (a PATH value): 0 with the absolute path in buf, or -1. */
int child_find_executable(const char *name, const char *path, char *buf, size_t len);

/*
 * A child of slurm_spank_exit is still one of the step's processes, and Slurm
 * sends SIGTERM to those when the step ends: such a child ignores it (SIGKILL,
 * KillWait later, still ends it).
 */
#define CHILD_IGNORE_SIGTERM 1U

/*
 * Run argv (argv[0] an absolute path) in a child as the job user (user !=
 * NULL) or as root (NULL), with cwd as working directory and a small fixed
 * environment (CHILD_PATH_COMMAND, HOME, and as the job user the job's ENROOT_CONFIG_PATH and
 * ENROOT_ALLOW_HTTP when set: child.c's exec_fn); its stdout and stderr land in output. Returns the
 * exit status (signals as 128+N), or -1 with the reason in output->err (also
 * when it was stopped, or ran over CHILD_TIMEOUT_SECONDS: then it is killed).
 */
int child_exec(char *const argv[], const struct pyxis_job *user, const char *cwd, unsigned flags,
	       struct child_output *output);

typedef int (*child_fn)(void *arg);

/*
 * A child that is waited for until it reaches a state rather than until it
 * exits (the runtime, until the container's process stops itself).
 */
struct child {
	pid_t pid;
	int out_fd; /* memfds: its stdout and stderr */
	int err_fd;
	int pidfd;
	uid_t uid; /* the job user it runs as (0: root): whose FUSE mounts may be aborted under it */
	unsigned conn; /* the step's own FUSE connection it reads (the runtime, fuse.c's mount), 0: none */
	const char *point_name; /* that mount's point's name: a view with it (an overlay over the mount) reads conn */
	struct child_waiter {
		pid_t tid;                   /* a thread of its group asleep in a FUSE request */
		unsigned long long switches; /* its context switches: unchanged, the same wait */
		long long since;             /* when it was first seen in that wait (ms) */
	} waiters[8];
};

#define CHILD_INIT { .pid = -1, .out_fd = -1, .err_fd = -1, .pidfd = -1 }

/*
 * Fork fn(arg) as the job user (or root: NULL) in cwd, in its own process
 * group, with every descriptor above stderr closed; keep_fd (-1: none) is
 * passed on as fd 3. With mntns_fd >= 0 (a cold step's FUSE mount, cold.c),
 * the child enters that mount namespace, as root, before it drops privileges.
 * 0, or -1 with one line in err.
 */
int child_start(struct child *ch, child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, int keep_fd,
		int mntns_fd, char *err, size_t errlen);

/*
 * Called by child_wait on every tick and whenever the child stops: 1 when the
 * child (or a process it started) is where the caller wants it, stopped or
 * not; 0 not yet; -1 when a process was stopped where no stop is expected.
 */
typedef int (*child_ready_fn)(void *arg);

/*
 * Wait for ch without ever waiting for ever: 0 when it exited (*status, signals
 * as 128+N), 1 when ready(arg) (may be NULL) said so (the child lives on), or
 * -1 with the reason in err when it was stopped other than as ready() expects,
 * or ran over CHILD_TIMEOUT_SECONDS: it was then killed with its group.
 */
int child_wait(struct child *ch, child_ready_fn ready, void *arg, int *status, char *err, size_t errlen);

/*
 * Kill the child's process group and reap it, waiting CHILD_END_SECONDS at most
 * (a process in a FUSE request that no one answers does not die); close its descriptors.
 */
void child_end(struct child *ch);

/*
 * A thread of a job user's child (or of its process group) asleep in one FUSE wait
 * (child_fuse_wchan) for CHILD_FUSE_STALL_SECONDS, or killed (SIGKILL pending) and still
 * in it at the next look (child_wait and child_end look once a second), has every FUSE
 * connection the job user mounted in its view aborted: user_id=<uid> in the mount's
 * options (fusermount's mounts; never root's, nor another user's), and the step's own
 * (ch->conn) when its view has that mount or an overlay over it (a container's root:
 * ch->point_name), whose daemon the user can stop or whose descriptor they can take.
 * SIGKILL does not end a request the user's server read and never answers, and Slurm
 * does not signal a step's processes before it runs (user_init): without the bound a
 * user's server would hold slurmstepd, and a scancel then drains the node
 * (UnkillableStepTimeout, 60 s by default).
 */
#define CHILD_FUSE_STALL_SECONDS 30

/*
 * A process's (or thread's) state letter and process group, from the stat file at path
 * ("/proc/<pid>/stat", "/proc/<pid>/task/<tid>/stat"); pgrp may be NULL. 0, or -1.
 */
int child_proc_stat(const char *path, char *state, long *pgrp);

/*
 * 1 when a thread in state (the letter of /proc/<pid>/stat) with this wchan waits on a FUSE
 * server: in a request (a fuse function, request_wait_answer; in uninterruptible sleep a
 * kernel that does not say, "0", is taken at its word), or in uninterruptible sleep for a
 * page's lock (folio_wait_bit_common, wait_on_page_bit_common...): a page that a FUSE read
 * fills stays locked while the server holds that read, and the read is the kernel's own
 * (readahead, FUSE_ASYNC_READ), so no thread waits in the request itself.
 */
int child_fuse_wchan(const char *wchan, char state);

/*
 * 1 when the process or thread whose /proc directory is dir (/proc/<pid> or
 * /proc/<pid>/task/<tid>) waits on a FUSE server (child_fuse_wchan), with *killed
 * (SIGKILL pending) and *switches (its context switches so far).
 */
int child_fuse_waiter(const char *dir, int *killed, unsigned long long *switches);

/* CLOCK_MONOTONIC in milliseconds: the clock of the stub's bounded waits. */
long long child_now_ms(void);

/* pidfd_open(2) of pid, or -1 (errno; ENOSYS where the headers do not know it). */
int child_pidfd_open(pid_t pid);

/* The process of pidfd still exists, so its pid still names it (pidfd_send_signal(2) of 0): 1 or 0. */
int child_pidfd_alive(int pidfd);

/* /proc/<pid>/ns/<ns>, opened (O_CLOEXEC), with *same (unless NULL): whether it is the caller's own; or -1 (errno). */
int child_open_ns(pid_t pid, const char *ns, int *same);

/* Whether the namespace fd is the caller's own of that type (ns: "user", "mnt", ...). */
int child_ns_is_own(int fd, const char *ns);

/*
 * Abort the FUSE connection conn (/sys/fs/fuse/connections/<conn>/abort), from a child
 * of root that mounts fusectl in a mount namespace of its own when the node has it
 * nowhere: every request of it fails at once (ENOTCONN). 0: nothing.
 */
void child_abort_fuse(unsigned conn);

/* What the child wrote to fd (out_fd or err_fd): NUL-terminated, trailing newlines cut. */
void child_read_capture(int fd, char *buf, size_t len);

/*
 * Turn a failed child into one line in err: its first stderr line, prefixed
 * with "pyxis-cache: <what>: " unless it already starts with "pyxis-cache:".
 */
void child_error(const char *what, int status, const struct child_output *output, char *err, size_t errlen);

/*
 * Run argv (argv[0] an absolute path) as user, with child_exec's environment,
 * detached from the step: in a session of its own, its parent gone, at nice 19
 * and the idle I/O class, stdio at /dev/null, in user->cwd (else /). 0 once it
 * is started, or -1 (errno).
 */
int child_spawn_detached(char *const argv[], const struct pyxis_job *user);

/*
 * Fork a process out of the step's tree: in a session of its own, its parent (an
 * intermediate child, reaped here) gone at once. Returns 0 in that process, its
 * pid in the caller, or -1.
 */
pid_t child_fork_detached(void);

/*
 * What a new child needs before its own code runs. child_prepare does it, in this
 * order, for every child of the stub: its own process group (CHILD_OWN_GROUP); nice
 * 19 and the idle I/O class (CHILD_IDLE); an empty signal mask (slurmstepd blocks
 * some), stdin at /dev/null, stdout and stderr to out_fd and err_fd (-1: /dev/null);
 * pass[0] and pass[1] as descriptors 3 and 4 (-1: none); every signal a step may
 * be sent ignored (CHILD_IGNORE_STEP_SIGNALS), or every handler the default one for a
 * child that runs on without an exec (CHILD_DEFAULT_SIGNALS); the mount namespace mntns_fd entered,
 * as root (-1: none); every other descriptor closed (slurmstepd holds some without
 * O_CLOEXEC, and the user may ptrace the child); the ids of user for good (NULL:
 * root; CHILD_KEEP_IDS: as they are); the working directory cwd (NULL: /), or /
 * when cwd fails (CHILD_CWD_OR_ROOT).
 */
struct child_setup {
	int out_fd, err_fd;
	int pass[2];
	int mntns_fd;
	const struct pyxis_job *user;
	const char *cwd;
	unsigned flags;
};

#define CHILD_SETUP_INIT { .out_fd = -1, .err_fd = -1, .pass = { -1, -1 }, .mntns_fd = -1 }

#define CHILD_OWN_GROUP 0x10U
#define CHILD_IDLE 0x20U
#define CHILD_IGNORE_STEP_SIGNALS 0x40U
#define CHILD_KEEP_IDS 0x80U
#define CHILD_CWD_OR_ROOT 0x100U
#define CHILD_DEFAULT_SIGNALS 0x200U

/*
 * In a new child: prepare it as s says. 0, or the status to _exit with (126, or 1
 * when cwd fails), with one line on its stderr.
 */
int child_prepare(const struct child_setup *s);

/*
 * /proc/<pid>/<file> (pid as /proc names it) into buf, NUL-terminated: its length, or -1
 * (gone, unreadable, empty). One read(2): what /proc's small files give at once.
 */
ssize_t child_read_proc(const char *pid, const char *file, char *buf, size_t len);

/*
 * A child's environment, built in the child before execve: NAME=value entries
 * (allocated; they live until the exec), NULL-terminated.
 */
#define CHILD_ENV_MAX 512
struct child_env {
	char *envp[CHILD_ENV_MAX];
	size_t n;
};

#define CHILD_ENV_INIT { .envp = { NULL }, .n = 0 }

/* NAME's value in envp (NULL-terminated "NAME=value" entries; NULL: none), or NULL. */
const char *child_env_get(char *const envp[], const char *name);

/* Put "NAME=value" (printf) into env, replacing NAME's entry; left out when env is full. */
void child_env_put(struct child_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * PATH, the one policy for every child (docs/srun.md, "The stub's children"). slurmd's
 * PATH is where pyxis finds enroot, and so where the runtime, enroot and squashfuse_ll
 * are found (child_search_path: PYXIS_CACHE_PATH when slurmd has none). A child gets:
 *   CHILD_PATH_SYSTEM   PYXIS_CACHE_PATH alone: squashfuse_ll, mksquashfs (they run nothing);
 *   CHILD_PATH_COMMAND  PYXIS_CACHE_PATH, then slurmd's: the command and what it runs
 *                       (setpriv and unsquashfs from the system, enroot for an import);
 *   CHILD_PATH_SLURMD   child_search_path(): the runtime, as under pyxis (enroot's own
 *                       directory before it: first).
 */
enum child_path { CHILD_PATH_SYSTEM, CHILD_PATH_COMMAND, CHILD_PATH_SLURMD };

/* slurmd's PATH, or PYXIS_CACHE_PATH when it has none: where the stub finds what it runs. */
const char *child_search_path(void);

/* Put PATH into env by policy `which`, with the directory `first` before it (NULL: none). */
void child_env_path(struct child_env *env, enum child_path which, const char *first);

/*
 * In a new child: become user (NULL: root) for good, real, effective and saved
 * ids and groups alike. 0, or -1 (errno).
 */
int child_become(const struct pyxis_job *user);

#endif /* PYXIS_CACHE_CHILD_H */
