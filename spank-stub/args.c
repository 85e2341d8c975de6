/*
 * The --container-* options, their environment equivalents, and the checks
 * that reject a bad request. srun runs them before the job step is even
 * launched (srun.c); slurmstepd registers the same options and runs the same
 * checks again (slurmstepd.c), since sbatch scripts and the environment can
 * reach it without the srun-side check.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "common.h"
#include "args.h"
#include "log.h"

struct container_args container_args;

static int opt_cache(int val, const char *optarg, int remote);
static int opt_image(int val, const char *optarg, int remote);
static int opt_writable(int val, const char *optarg, int remote);
static int opt_save(int val, const char *optarg, int remote);
static int opt_name(int val, const char *optarg, int remote);

static struct spank_option spank_opts[] = {
	{ "container-cache", NULL,
	  "[pyxis-cache] run the task in a node-local cached, read-only copy of the image",
	  0, 0, opt_cache },
	{ "container-image", "[USER@][REGISTRY#]IMAGE[:TAG]|PATH",
	  "[pyxis-cache] the image to run the task in: a registry image as pyxis and enroot name it, "
	  "or a squashfs file (a path starting with / or .)",
	  1, 0, opt_image },
	{ "container-writable", NULL,
	  "[pyxis-cache] make the container filesystem writable (not with --container-cache)",
	  0, 0, opt_writable },
	{ "container-save", "[path]",
	  "[pyxis-cache] not supported; rejected with --container-cache",
	  1, 0, opt_save },
	{ "container-name", "[name]",
	  "[pyxis-cache] ignored with --container-cache; NAME:flags is rejected",
	  1, 0, opt_name },
	SPANK_OPTIONS_TABLE_END
};

static int set_string(char **dst, const char *optarg)
{
	if (optarg == NULL || optarg[0] == '\0')
		return -1;
	free(*dst);
	*dst = strdup(optarg);
	return *dst == NULL ? -1 : 0;
}

static int opt_cache(int val, const char *optarg, int remote)
{
	(void)val; (void)optarg; (void)remote;
	container_args.cache = 1;
	return 0;
}

static int opt_image(int val, const char *optarg, int remote)
{
	(void)val; (void)remote;
	if (set_string(&container_args.image, optarg) < 0) {
		pyxis_error(PLUGIN_NAME ": --container-image: invalid value");
		return -1;
	}
	return 0;
}

static int opt_writable(int val, const char *optarg, int remote)
{
	(void)val; (void)optarg; (void)remote;
	container_args.writable = 1;
	return 0;
}

static int opt_save(int val, const char *optarg, int remote)
{
	(void)val; (void)remote;
	if (set_string(&container_args.save, optarg) < 0) {
		pyxis_error(PLUGIN_NAME ": --container-save: invalid value");
		return -1;
	}
	return 0;
}

static int opt_name(int val, const char *optarg, int remote)
{
	(void)val; (void)remote;
	if (set_string(&container_args.name, optarg) < 0) {
		pyxis_error(PLUGIN_NAME ": --container-name: invalid value");
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

int pyxis_args_apply_env(spank_t sp, int remote)
{
	char buf[PATH_MAX];
	int rc = -1;

	if (!container_args.cache && get_env(sp, remote, "PYXIS_CONTAINER_CACHE", buf, sizeof(buf)) == 0)
		container_args.cache = strcmp(buf, "1") == 0;

	if (container_args.image == NULL && get_env(sp, remote, "PYXIS_CONTAINER_IMAGE", buf, sizeof(buf)) == 0 &&
	    buf[0] != '\0') {
		container_args.image = strdup(buf);
		if (container_args.image == NULL)
			goto fail;
	}
	rc = 0;

fail:
	return rc;
}

int pyxis_args_active(void)
{
	return container_args.cache || container_args.image != NULL;
}

int pyxis_args_check(char *err, size_t errlen)
{
	int rc = -1;

	if (container_args.cache) {
		if (container_args.image == NULL) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-cache requires --container-image");
			goto fail;
		}
		if (container_args.writable) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-cache is incompatible with --container-writable");
			goto fail;
		}
		if (container_args.save != NULL) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-cache is incompatible with --container-save");
			goto fail;
		}
		if (container_args.name != NULL && strchr(container_args.name, ':') != NULL) {
			snprintf(err, errlen, PLUGIN_NAME ": --container-cache is incompatible with --container-name flags");
			goto fail;
		}
	} else if (container_args.image != NULL && container_args.save != NULL) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-save is not supported");
		goto fail;
	}
	rc = 0;

fail:
	return rc;
}
