/*
 * What slurmstepd knows about a step, in three parts (pyxis's job_info,
 * container and plugin_context): who and where the job is, the container it
 * runs in, and the plugin's own state.
 */
#ifndef PYXIS_CACHE_CONTEXT_H
#define PYXIS_CACHE_CONTEXT_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "config.h"
#include "fuse.h"
#include "root.h"

/* The job's user and places, from Slurm (user_init). */
struct pyxis_job {
	uid_t uid;
	gid_t gid;
	gid_t *gids; /* supplementary groups of the job */
	int ngids;
	uint32_t jobid;
	uint32_t stepid;
	char cwd[PATH_MAX]; /* job working directory, for relative images */
	char home[PATH_MAX];
	char enroot_config[PATH_MAX];  /* the job's ENROOT_CONFIG_PATH, or "" */
	char enroot_allow_http[16];    /* the job's ENROOT_ALLOW_HTTP, or "" */
	char batch_script[PATH_MAX];   /* the batch step: the script slurmstepd execs (in its spool), or "" */
};

/* The rootfs the task runs in and what holds it. */
struct container {
	char runtime_bin[PATH_MAX]; /* bwrap or enroot */
	struct step_root root;      /* what the task runs in (root.h), filled once */
	char entry[NAME_MAX + 1];   /* the image's entry, as the command (or root's record, or a record) named it, or "" */
	int lock_fd;                /* LOCK_SH on <entry>/.pyxis_cache_lock, once it is ready */
	char step_name[NAME_MAX + 1]; /* <base>/<uid>/<step_name> ("step"), released at exit */
	char step_dir[PATH_MAX];      /* that path: a rootfs (no cache mode) and enroot's own paths */
	int step_lock_fd;             /* LOCK_SH on it: tells the collector the step is alive */
	int userns_fd;                /* the started container's namespaces, which every task joins */
	int mntns_fd;
	int netns_fd;                 /* --container-unshare's, -1 when the container shares the node's */
	int ipcns_fd;
	int utsns_fd;
	char *entrypoint_log;         /* --container-entrypoint-log: what the runtime printed, shown by task 0 */
	char *environ;     /* the container's environment, "K=V\0..." (environ_len bytes) */
	size_t environ_len;
	struct fuse_mount fuse;       /* the step's mount (its layer, or a cold step's image), or none (mntns_fd -1) */
	int named_fd;                 /* --container-name: LOCK_EX on <base>/<uid>/<named_dir> (named.c), or -1 */
	char named_dir[NAME_MAX + 1]; /* .pyxis_cache_named.<job>|g.<hex of the name> */
	const char *creator_image;    /* a cold step's image whose unpack starts after the runtime's start, or NULL */
	/* A running container's record, and attaching to one (attach.c): */
	char *run_env;                /* what the container's environment lays over the job's, "K=V\0..." */
	size_t run_env_len;
	int run_fd;                   /* an unnamed cache-mode step: the directory of its record, or -1 */
	char run_dir[PATH_MAX];       /* that directory's path, removed at exit */
	int attach;                   /* this step attaches to a running container: no runtime of its own */
	int attach_pid;               /* the running container's process, as its record names it */
	int attach_pidfd;             /* a pidfd of it (checked alive after its namespaces are opened) */
	unsigned long long attach_mnt_dev, attach_mnt_ino; /* its mount namespace, as recorded */
	int attached_fd;              /* LOCK_SH on the container's ATTACH_LOCK while attached, or -1 */
};

struct plugin_context {
	int active;            /* this step asked for a container */
	char error[ERROR_MAX]; /* first error, reported by task_init */
	char warning[ERROR_MAX]; /* what a command that succeeded said, shown by task_init */
	struct plugin_config cfg;
	int ac; /* plugstack arguments, passed on with --set */
	char **av;
	struct pyxis_job job;
	char user_dir[PATH_MAX]; /* <base>/<uid>, the job user's directory (cli_user_dir) */
	struct container container;
};

#endif /* PYXIS_CACHE_CONTEXT_H */
