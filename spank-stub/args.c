/*
 * The --container-* options, their PYXIS_CONTAINER_* equivalents, and the
 * checks that reject a bad request: one description of the step's container
 * (struct container_args), filled once. srun runs them before the job step is
 * even launched (srun.c); slurmstepd registers the same options and runs the
 * same checks again (slurmstepd.c), since sbatch scripts and the environment
 * can reach it without the srun-side check.
 *
 * Every parser writes its one line into an err buffer: the option callbacks
 * hand it to slurm_error (Slurm then refuses the option), the environment's
 * caller records it. The meanings and the messages are pyxis 0.24's (args.c
 * there), with this plugin's prefix.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "common.h"
#include "args.h"
#include "log.h"

struct container_args container_args = {
	.mount_home = -1,
	.remap_root = -1,
	.entrypoint = -1,
	.entrypoint_log = -1,
	.writable = -1,
	.unshare_net = -1,
	.unshare_ipc = -1,
	.unshare_uts = -1,
};

#define OUT_OF_MEMORY PLUGIN_NAME ": could not allocate memory"

/* What each option does with its value; val is the spank_option's (1 for the positive form). */
typedef int (*parse_fn)(int val, const char *optarg, char *err, size_t errlen);

static int parse_cache(int val, const char *optarg, char *err, size_t errlen);
static int parse_image(int val, const char *optarg, char *err, size_t errlen);
static int parse_mounts(int val, const char *optarg, char *err, size_t errlen);
static int parse_workdir(int val, const char *optarg, char *err, size_t errlen);
static int parse_mount_home(int val, const char *optarg, char *err, size_t errlen);
static int parse_remap_root(int val, const char *optarg, char *err, size_t errlen);
static int parse_entrypoint(int val, const char *optarg, char *err, size_t errlen);
static int parse_entrypoint_log(int val, const char *optarg, char *err, size_t errlen);
static int parse_writable(int val, const char *optarg, char *err, size_t errlen);
static int parse_env(int val, const char *optarg, char *err, size_t errlen);
static int parse_unshare(int val, const char *optarg, char *err, size_t errlen);
static int parse_save(int val, const char *optarg, char *err, size_t errlen);
static int parse_name(int val, const char *optarg, char *err, size_t errlen);

/* The spank callbacks: one per parser, so that Slurm's callback knows which option it is. */
static int run_parser(parse_fn fn, int val, const char *optarg)
{
	char err[ERROR_MAX];

	if (fn(val, optarg, err, sizeof(err)) == 0)
		return 0;
	pyxis_error("%s", err);
	return -1;
}

#define SPANK_CALLBACK(name)                                                                                           \
	static int opt_##name(int val, const char *optarg, int remote)                                                 \
	{                                                                                                              \
		(void)remote;                                                                                          \
		return run_parser(parse_##name, val, optarg);                                                          \
	}
SPANK_CALLBACK(cache)
SPANK_CALLBACK(image)
SPANK_CALLBACK(mounts)
SPANK_CALLBACK(workdir)
SPANK_CALLBACK(mount_home)
SPANK_CALLBACK(remap_root)
SPANK_CALLBACK(entrypoint)
SPANK_CALLBACK(entrypoint_log)
SPANK_CALLBACK(writable)
SPANK_CALLBACK(env)
SPANK_CALLBACK(unshare)
SPANK_CALLBACK(save)
SPANK_CALLBACK(name)

static struct spank_option spank_opts[] = {
	{ "container-cache", NULL,
	  "[pyxis-cache] run the task in a node-local cached, read-only copy of the image", 0, 0, opt_cache },
	{ "container-image", "[USER@][REGISTRY#]IMAGE[:TAG]|PATH",
	  "[pyxis-cache] the image to run the task in: a registry image as pyxis and enroot name it, "
	  "or a squashfs file (a path starting with / or ., a *.sqsh, *.sqfs or *.squashfs name, or a file in the cwd)",
	  1, 0, opt_image },
	{ "container-mounts", "SRC:DST[:FLAGS][,SRC:DST...]",
	  "[pyxis-cache] bind mount[s] inside the container. Mount flags are separated with \"+\", e.g. \"ro+rprivate\"",
	  1, 0, opt_mounts },
	{ "container-workdir", "PATH", "[pyxis-cache] working directory inside the container", 1, 0, opt_workdir },
	{ "container-mount-home", NULL, "[pyxis-cache] bind mount the user's home directory (the default)", 0, 1,
	  opt_mount_home },
	{ "no-container-mount-home", NULL, "[pyxis-cache] do not bind mount the user's home directory", 0, 0,
	  opt_mount_home },
	{ "container-remap-root", NULL,
	  "[pyxis-cache] ask to be remapped to root inside the container. "
	  "Does not grant elevated system permissions, despite appearances.",
	  0, 1, opt_remap_root },
	{ "no-container-remap-root", NULL, "[pyxis-cache] do not remap to root inside the container (the default)", 0,
	  0, opt_remap_root },
	{ "container-entrypoint", NULL, "[pyxis-cache] execute the entrypoint from the container image", 0, 1,
	  opt_entrypoint },
	{ "no-container-entrypoint", NULL,
	  "[pyxis-cache] do not execute the entrypoint from the container image (the default, unless the plugin's "
	  "execute_entrypoint key is set)",
	  0, 0, opt_entrypoint },
	{ "container-entrypoint-log", NULL, "[pyxis-cache] print the output of the entrypoint script", 0, 1,
	  opt_entrypoint_log },
	{ "container-writable", NULL,
	  "[pyxis-cache] make the container filesystem writable (with --container-cache: a layer of the step's own)", 0,
	  1, opt_writable },
	{ "container-readonly", NULL, "[pyxis-cache] make the container filesystem read-only (the default)", 0, 0,
	  opt_writable },
	{ "container-env", "NAME[,NAME...]",
	  "[pyxis-cache] names of environment variables whose values in the job override the image's, "
	  "and are set before the entrypoint runs",
	  1, 0, opt_env },
	{ "container-unshare", "NS[,NS...]", "[pyxis-cache] create new namespaces for the container. Supported: net, ipc, uts.",
	  1, 1, opt_unshare },
	{ "container-save", "PATH",
	  "[pyxis-cache] save the container's filesystem as a squashfs at the step's end (with --container-cache only)", 1,
	  0, opt_save },
	{ "container-name", "NAME[:FLAGS]",
	  "[pyxis-cache] a container kept for the job's later steps (or across jobs: container_scope=global), as a "
	  "layer of its own over the cached entry. FLAGS: auto (default), create, exec, no_exec",
	  1, 0, opt_name },
	SPANK_OPTIONS_TABLE_END
};

/*
 * A string option given once. Slurm can call a callback twice with the same
 * value (pyxis notes it): the same value again is fine, another one is not.
 */
static int set_once(char **dst, const char *option, const char *optarg, char *err, size_t errlen)
{
	if (optarg == NULL || optarg[0] == '\0') {
		snprintf(err, errlen, PLUGIN_NAME ": --%s: argument required", option);
		return -1;
	}
	if (*dst != NULL) {
		if (strcmp(*dst, optarg) == 0)
			return 0;
		snprintf(err, errlen, PLUGIN_NAME ": --%s specified multiple times", option);
		return -1;
	}
	*dst = strdup(optarg);
	if (*dst == NULL) {
		snprintf(err, errlen, OUT_OF_MEMORY);
		return -1;
	}
	return 0;
}

/* A flag and its --no- form: both given is an error. */
static int set_tristate(int *dst, int val, const char *yes, const char *no, char *err, size_t errlen)
{
	if (*dst != -1 && *dst != val) {
		snprintf(err, errlen, PLUGIN_NAME ": both --%s and --%s were specified", yes, no);
		return -1;
	}
	*dst = val;
	return 0;
}

static int parse_cache(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val; (void)optarg; (void)err; (void)errlen;
	container_args.cache = 1;
	container_args.cache_flag = 1;
	return 0;
}

static int parse_image(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val;
	return set_once(&container_args.image, "container-image", optarg, err, errlen);
}

/* pyxis's rule: starts with "." or "/" (strspn(s, "./") > 0). */
static int is_path(const char *s)
{
	return s[0] == '.' || s[0] == '/';
}

/*
 * Whether a target's ".." components climb above the container's root ("../home",
 * "/a/../../etc"). enroot refuses such a target when it resolves it inside the
 * rootfs (EXDEV, "Invalid cross-device link", as pyxis's users see it); bwrap would
 * take "/../home" as "/home". Refused here, before either runtime, with that reason.
 */
static int target_escapes(const char *target)
{
	const char *p = target, *end;
	long depth = 0;

	while (*p != '\0') {
		end = strchrnul(p, '/');
		if (end - p == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return 1;
		} else if (end - p > 0 && !(end - p == 1 && p[0] == '.'))
			++depth;
		p = *end == '/' ? end + 1 : end;
	}
	return 0;
}

static int add_mount(const char *source, const char *target, const char *flags, char *err, size_t errlen)
{
	struct container_mount m = { NULL, NULL, NULL }, *grown;
	const char *defaults;
	size_t i;

	if (is_path(source))
		defaults = "x-create=auto,rbind";
	else if (strcmp(source, "tmpfs") == 0)
		defaults = "x-create=dir";
	else if (strcmp(source, "umount") == 0)
		defaults = "x-detach";
	else {
		snprintf(err, errlen,
			 PLUGIN_NAME ": mount source must be a relative path, an absolute path, \"tmpfs\" or \"umount\"");
		return -1;
	}
	if (!is_path(target)) {
		snprintf(err, errlen, PLUGIN_NAME ": mount target must be a relative path or an absolute path");
		return -1;
	}
	if (target_escapes(target)) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-mounts: mount target is outside the container: %s (%s)",
			 target, strerror(EXDEV));
		return -1;
	}
	m.source = strdup(source);
	m.target = strdup(target);
	if (m.source == NULL || m.target == NULL ||
	    (flags != NULL ? asprintf(&m.flags, "%s,%s", defaults, flags) : asprintf(&m.flags, "%s", defaults)) < 0) {
		m.flags = NULL;
		goto oom;
	}
	/* Slurm's second call with the same value, or the same entry twice: kept once. */
	for (i = 0; i < container_args.mounts_len; ++i) {
		if (strcmp(container_args.mounts[i].source, m.source) == 0 &&
		    strcmp(container_args.mounts[i].target, m.target) == 0 &&
		    strcmp(container_args.mounts[i].flags, m.flags) == 0) {
			free(m.source);
			free(m.target);
			free(m.flags);
			return 0;
		}
	}
	grown = realloc(container_args.mounts, sizeof(*grown) * (container_args.mounts_len + 1));
	if (grown == NULL)
		goto oom;
	container_args.mounts = grown;
	container_args.mounts[container_args.mounts_len++] = m;
	return 0;
oom:
	free(m.source);
	free(m.target);
	free(m.flags);
	snprintf(err, errlen, OUT_OF_MEMORY);
	return -1;
}

/* One SRC[:DST[:FLAGS]] entry; flags are joined with "+" (enroot's "," separates entries here). */
static int parse_mount_entry(char *entry, const char *optarg, char *err, size_t errlen)
{
	char *rest = entry, *src, *dst, *flags = NULL, *p;

	src = strsep(&rest, ":");
	if (src == NULL || src[0] == '\0')
		goto invalid;
	dst = src;
	if (rest != NULL) {
		dst = strsep(&rest, ":");
		if (dst == NULL || dst[0] == '\0')
			goto invalid;
		if (rest != NULL && rest[0] != '\0') {
			flags = rest;
			for (p = flags; *p != '\0'; ++p)
				if (*p == '+')
					*p = ',';
		}
	}
	return add_mount(src, dst, flags, err, errlen);
invalid:
	snprintf(err, errlen, PLUGIN_NAME ": --container-mounts: invalid format: %s", optarg);
	return -1;
}

/* item() on each ","-separated item of a copy of optarg, up to the first that fails. */
static int each_item(const char *option, const char *optarg, int (*item)(char *, const char *, char *, size_t),
		     char *err, size_t errlen)
{
	char *copy, *rest, *entry;
	int rc = 0;

	if (optarg == NULL || optarg[0] == '\0') {
		snprintf(err, errlen, PLUGIN_NAME ": --%s: argument required", option);
		return -1;
	}
	copy = strdup(optarg);
	if (copy == NULL) {
		snprintf(err, errlen, OUT_OF_MEMORY);
		return -1;
	}
	rest = copy;
	while (rc == 0 && (entry = strsep(&rest, ",")) != NULL)
		rc = item(entry, optarg, err, errlen);
	free(copy);
	return rc;
}

static int parse_mounts(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val;
	return each_item("container-mounts", optarg, parse_mount_entry, err, errlen);
}

static int parse_workdir(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val;
	return set_once(&container_args.workdir, "container-workdir", optarg, err, errlen);
}

static int parse_mount_home(int val, const char *optarg, char *err, size_t errlen)
{
	(void)optarg;
	return set_tristate(&container_args.mount_home, val, "container-mount-home", "no-container-mount-home", err,
			    errlen);
}

static int parse_remap_root(int val, const char *optarg, char *err, size_t errlen)
{
	(void)optarg;
	return set_tristate(&container_args.remap_root, val, "container-remap-root", "no-container-remap-root", err,
			    errlen);
}

static int parse_entrypoint(int val, const char *optarg, char *err, size_t errlen)
{
	(void)optarg;
	return set_tristate(&container_args.entrypoint, val, "container-entrypoint", "no-container-entrypoint", err,
			    errlen);
}

static int parse_entrypoint_log(int val, const char *optarg, char *err, size_t errlen)
{
	(void)optarg; (void)err; (void)errlen;
	container_args.entrypoint_log = val;
	return 0;
}

static int parse_writable(int val, const char *optarg, char *err, size_t errlen)
{
	(void)optarg;
	return set_tristate(&container_args.writable, val, "container-writable", "container-readonly", err, errlen);
}

/*
 * A variable's name as enroot accepts it ([[:alpha:]_][[:alnum:]_]*): it is
 * written into enroot's start configuration, a shell script.
 */
static int valid_env_name(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (++s; *s != '\0'; ++s)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

static int env_item(char *name, const char *optarg, char *err, size_t errlen)
{
	char **grown;

	if (!valid_env_name(name)) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-env: invalid format: %s", optarg);
		return -1;
	}
	if (pyxis_args_env_listed(name, strlen(name)))
		return 0;
	grown = realloc(container_args.env_vars, sizeof(*grown) * (container_args.env_vars_len + 1));
	if (grown == NULL || (grown[container_args.env_vars_len] = strdup(name)) == NULL) {
		if (grown != NULL)
			container_args.env_vars = grown;
		snprintf(err, errlen, OUT_OF_MEMORY);
		return -1;
	}
	container_args.env_vars = grown;
	container_args.env_vars_len++;
	return 0;
}

static int parse_env(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val;
	return each_item("container-env", optarg, env_item, err, errlen);
}

static int unshare_item(char *ns, const char *optarg, char *err, size_t errlen)
{
	(void)optarg;
	if (ns[0] == '\0') {
		snprintf(err, errlen, PLUGIN_NAME ": --container-unshare: empty namespace argument");
		return -1;
	}
	if (strcmp(ns, "net") == 0)
		container_args.unshare_net = 1;
	else if (strcmp(ns, "ipc") == 0)
		container_args.unshare_ipc = 1;
	else if (strcmp(ns, "uts") == 0)
		container_args.unshare_uts = 1;
	else {
		snprintf(err, errlen, PLUGIN_NAME ": --container-unshare: unknown namespace '%s'", ns);
		return -1;
	}
	return 0;
}

static int parse_unshare(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val;
	return each_item("container-unshare", optarg, unshare_item, err, errlen);
}

static int parse_save(int val, const char *optarg, char *err, size_t errlen)
{
	(void)val;
	if (optarg != NULL && optarg[0] != '\0' && optarg[strlen(optarg) - 1] == '/') {
		snprintf(err, errlen, PLUGIN_NAME ": --container-save: target is a directory");
		return -1;
	}
	return set_once(&container_args.save, "container-save", optarg, err, errlen);
}

/*
 * pyxis's NAME[:FLAGS]: the first ':' ends the name; no flags is "auto". The name
 * is also a file name of the cache's (named.c: hex-encoded, so at most
 * NAMED_NAME_MAX bytes), as enroot's "pyxis_<job>_NAME" is one: no '/'.
 */
static int parse_name(int val, const char *optarg, char *err, size_t errlen)
{
	static char *given;
	static const char *const flags[] = { "auto", "create", "exec", "no_exec" };
	const char *colon;
	size_t i, len;

	(void)val;
	if (set_once(&given, "container-name", optarg, err, errlen) < 0)
		return -1;
	if (container_args.name != NULL)
		return 0;
	colon = strchr(given, ':');
	len = colon != NULL ? (size_t)(colon - given) : strlen(given);
	if (len == 0) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: empty name");
		return -1;
	}
	container_args.name_flags = "auto";
	if (colon != NULL && colon[1] != '\0') {
		for (i = 0; i < sizeof(flags) / sizeof(flags[0]) && strcmp(colon + 1, flags[i]) != 0; ++i)
			;
		if (i == sizeof(flags) / sizeof(flags[0])) {
			snprintf(err, errlen,
				 PLUGIN_NAME ": --container-name: flag must be \"auto\", \"create\", \"exec\" or \"no_exec\"");
			return -1;
		}
		container_args.name_flags = flags[i];
	}
	if (memchr(given, '/', len) != NULL || len > NAMED_NAME_MAX) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-name: invalid name: %.*s (%s)", (int)(len > 256 ? 256 : len),
			 given, len > NAMED_NAME_MAX ? "longer than " NAMED_NAME_MAX_TEXT " bytes" : "a name cannot contain '/'");
		return -1;
	}
	container_args.name = strndup(given, len);
	if (container_args.name == NULL) {
		snprintf(err, errlen, OUT_OF_MEMORY);
		return -1;
	}
	return 0;
}

int pyxis_args_register(spank_t sp)
{
	int i;
	int rc = -1;

	for (i = 0; spank_opts[i].name != NULL; ++i) {
		if (spank_option_register(sp, &spank_opts[i]) != ESPANK_SUCCESS) {
			pyxis_error(PLUGIN_NAME ": couldn't register option --%s", spank_opts[i].name);
			goto fail;
		}
	}
	rc = 0;

fail:
	return rc;
}

static int get_env(spank_t sp, int remote, const char *name, char *buf, size_t len)
{
	const char *val;

	if (remote)
		return spank_getenv(sp, name, buf, (int)len) == ESPANK_SUCCESS ? 0 : -1;

	val = getenv(name);
	if (val == NULL || strlen(val) >= len)
		return -1;
	strcpy(buf, val);
	return 0;
}

int pyxis_parse_bool(const char *s)
{
	if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "y") == 0)
		return 1;
	if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "n") == 0)
		return 0;
	return -1;
}

/* The variables with a value: set when their option was not given (the command line wins). */
static const struct {
	const char *name;
	parse_fn parse;
} value_vars[] = {
	{ "PYXIS_CONTAINER_IMAGE", parse_image },     { "PYXIS_CONTAINER_MOUNTS", parse_mounts },
	{ "PYXIS_CONTAINER_WORKDIR", parse_workdir }, { "PYXIS_CONTAINER_NAME", parse_name },
	{ "PYXIS_CONTAINER_SAVE", parse_save },       { "PYXIS_CONTAINER_ENV", parse_env },
	{ "PYXIS_CONTAINER_UNSHARE", parse_unshare },
};

/* The boolean variables: as pyxis reads them, a value that is not a boolean word is ignored. */
static const struct {
	const char *name;
	int *field;
	int negate; /* PYXIS_CONTAINER_READONLY=1 is --container-readonly: writable 0 */
} bool_vars[] = {
	{ "PYXIS_CONTAINER_MOUNT_HOME", &container_args.mount_home, 0 },
	{ "PYXIS_CONTAINER_REMAP_ROOT", &container_args.remap_root, 0 },
	{ "PYXIS_CONTAINER_ENTRYPOINT", &container_args.entrypoint, 0 },
	{ "PYXIS_CONTAINER_ENTRYPOINT_LOG", &container_args.entrypoint_log, 0 },
	{ "PYXIS_CONTAINER_WRITABLE", &container_args.writable, 0 },
	{ "PYXIS_CONTAINER_READONLY", &container_args.writable, 1 },
};

static int value_unset(parse_fn parse)
{
	if (parse == parse_image)
		return container_args.image == NULL;
	if (parse == parse_mounts)
		return container_args.mounts_len == 0;
	if (parse == parse_workdir)
		return container_args.workdir == NULL;
	if (parse == parse_name)
		return container_args.name == NULL;
	if (parse == parse_save)
		return container_args.save == NULL;
	if (parse == parse_env)
		return container_args.env_vars_len == 0;
	return container_args.unshare_net == -1 && container_args.unshare_ipc == -1 && container_args.unshare_uts == -1;
}

int pyxis_args_apply_env(spank_t sp, int remote, char *err, size_t errlen)
{
	char buf[PATH_MAX * 4];
	size_t i;
	int b;

	/* As pyxis treats its boolean variables: a value it cannot read is ignored. */
	if (!container_args.cache && get_env(sp, remote, "PYXIS_CONTAINER_CACHE", buf, sizeof(buf)) == 0)
		container_args.cache = pyxis_parse_bool(buf) == 1;

	for (i = 0; i < sizeof(value_vars) / sizeof(value_vars[0]); ++i) {
		/* An empty value is no value (pyxis would say "argument required" and go on). */
		if (!value_unset(value_vars[i].parse) || get_env(sp, remote, value_vars[i].name, buf, sizeof(buf)) < 0 ||
		    buf[0] == '\0')
			continue;
		if (value_vars[i].parse(0, buf, err, errlen) < 0) {
			/* The message names the option; say where its value came from. */
			size_t n = strlen(err);

			snprintf(err + n, errlen - n, " (from %s)", value_vars[i].name);
			return -1;
		}
	}
	for (i = 0; i < sizeof(bool_vars) / sizeof(bool_vars[0]); ++i) {
		if (*bool_vars[i].field != -1 || get_env(sp, remote, bool_vars[i].name, buf, sizeof(buf)) < 0)
			continue;
		b = pyxis_parse_bool(buf);
		if (b >= 0)
			*bool_vars[i].field = bool_vars[i].negate ? !b : b;
	}
	return 0;
}

int pyxis_args_active(void)
{
	return container_args.cache_flag || container_args.image != NULL || container_args.name != NULL;
}

int pyxis_args_check(char *err, size_t errlen)
{
	int rc = -1;

	/* A named container is a layer over a cached entry (named.c): always cache mode. */
	if (container_args.name != NULL)
		container_args.cache = 1;
	if (container_args.cache && container_args.image == NULL && container_args.name == NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-cache requires --container-image");
		goto fail;
	}
	rc = 0;

fail:
	return rc;
}

int pyxis_args_daemon_image(void)
{
	const char *image = container_args.image;

	return image != NULL && (strncmp(image, "dockerd://", 10) == 0 || strncmp(image, "podman://", 9) == 0);
}

int pyxis_args_check_runtime(int bwrap, char *err, size_t errlen)
{
	if (!pyxis_args_daemon_image())
		return 0;
	if (bwrap) {
		snprintf(err, errlen,
			 PLUGIN_NAME ": --container-image: %s: not supported with container_cache_runtime=bwrap (enroot imports "
				     "an image of a local Docker or Podman daemon: container_cache_runtime=enroot)",
			 container_args.image);
		return -1;
	}
	if (container_args.name != NULL || container_args.save != NULL) {
		snprintf(err, errlen,
			 PLUGIN_NAME ": %s: not supported with an image of a local daemon (%s): it has no digest to cache it by, "
				     "so its steps run without the cache",
			 container_args.name != NULL ? "--container-name" : "--container-save", container_args.image);
		return -1;
	}
	return 0;
}

int pyxis_args_mount_home(void)
{
	return container_args.mount_home != 0;
}

int pyxis_args_remap_root(void)
{
	return container_args.remap_root == 1;
}

int pyxis_args_entrypoint(int config)
{
	return container_args.entrypoint == 1 || (container_args.entrypoint == -1 && config);
}

int pyxis_args_env_listed(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < container_args.env_vars_len; ++i)
		if (strlen(container_args.env_vars[i]) == len && strncmp(container_args.env_vars[i], name, len) == 0)
			return 1;
	return 0;
}
