/*
 * The --container-* options (pyxis 0.24's, and --container-cache), registered
 * in srun and in slurmstepd, their PYXIS_CONTAINER_* environment equivalents
 * and their checks: one description of the step's container, filled once.
 * Nothing else reads the raw options; runtime.c translates the description
 * for bwrap and for enroot. See docs/pyxis.md.
 */
#ifndef PYXIS_CACHE_ARGS_H
#define PYXIS_CACHE_ARGS_H

#include <stddef.h>

/* <slurm/spank.h>'s spank_t, declared here so that runtime.c reads the description without Slurm's types. */
struct spank_handle;

/* One --container-mounts entry, as pyxis reads it. */
struct container_mount {
	char *source; /* an absolute or relative path, "tmpfs" or "umount" */
	char *target; /* an absolute or relative path (relative: to the container's /) */
	char *flags;  /* enroot's mount options: pyxis's defaults, then the user's ("+" read as ",") */
};

/* Tri-state options are -1 when neither the option nor its variable was given. */
/* The longest --container-name (hex-encoded into a file name of the cache's, named.c). */
#define NAMED_NAME_MAX 100
#define NAMED_NAME_MAX_TEXT "100"

struct container_args {
	int cache;      /* --container-cache, or PYXIS_CONTAINER_CACHE true on a step with an image */
	int cache_flag; /* --container-cache on the command line: an error without an image */
	char *image;    /* --container-image or PYXIS_CONTAINER_IMAGE */
	struct container_mount *mounts; /* --container-mounts or PYXIS_CONTAINER_MOUNTS */
	size_t mounts_len;
	char *workdir;      /* --container-workdir: the task's working directory inside */
	int mount_home;     /* --[no-]container-mount-home */
	int remap_root;     /* --[no-]container-remap-root */
	int entrypoint;     /* --[no-]container-entrypoint */
	int entrypoint_log; /* --container-entrypoint-log */
	int writable;       /* --container-writable 1, --container-readonly 0 */
	int unshare_net;    /* --container-unshare=net,ipc,uts */
	int unshare_ipc;
	int unshare_uts;
	char **env_vars; /* --container-env: the job's value of these wins over the image's */
	size_t env_vars_len;
	char *save; /* --container-save */
	char *name;             /* --container-name's NAME (named.c), NULL: none */
	const char *name_flags; /* its FLAGS: "auto" (the default), "create", "exec" or "no_exec" */
};

extern struct container_args container_args;

/* Register the --container-* options (srun and slurmstepd). */
int pyxis_args_register(struct spank_handle *sp);

/*
 * Fill what the command line left unset from the PYXIS_CONTAINER_* variables:
 * the process environment in srun, the job's environment in slurmstepd. The
 * command line wins. A bad value is an error, with the option's message: 0, or
 * -1 with one line in err.
 */
int pyxis_args_apply_env(struct spank_handle *sp, int remote, char *err, size_t errlen);

/* pyxis's boolean words: 1, true, yes, y and 0, false, no, n; -1 for anything else. */
int pyxis_parse_bool(const char *s);

/*
 * 1 when the step asks for a container: it has an image, or --container-cache
 * was given on the command line (which the check then refuses without one).
 * PYXIS_CONTAINER_CACHE alone changes nothing.
 */
int pyxis_args_active(void);

/* Returns 0, or -1 with the contract's message in err. */
int pyxis_args_check(char *err, size_t errlen);

/*
 * 1 when the image is one of a local Docker or Podman daemon (dockerd://,
 * podman://): enroot imports it as pyxis has it do, and it has no digest to
 * cache it by, so a cache-mode step runs it as a step of its own.
 */
int pyxis_args_daemon_image(void);

/*
 * What the runtime cannot do with the step's container (bwrap: 1 for
 * container_cache_runtime=bwrap). Returns 0, or -1 with one line in err.
 */
int pyxis_args_check_runtime(int bwrap, char *err, size_t errlen);

/* The resolved settings, with this plugin's defaults. */
int pyxis_args_mount_home(void);        /* default: on */
int pyxis_args_remap_root(void);        /* default: off */
int pyxis_args_entrypoint(int config);  /* default: the configuration's (pyxis's execute_entrypoint, off) */
int pyxis_args_env_listed(const char *name, size_t len); /* name (len bytes) is in --container-env */

#endif /* PYXIS_CACHE_ARGS_H */
