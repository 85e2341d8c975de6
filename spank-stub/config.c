/*
 * Parse the plugin's plugstack.conf arguments, pyxis config.c style: a struct
 * that starts with the defaults, then "key=value" words matched with strncmp.
 * The same keys are read by the pyxis-cache command (lib/config/config.ts), with the
 * same rules, checks in the same order and the same messages: one table
 * (tests/config-cases.ts) tests both, through config-check.c. The stub passes
 * the words on with --set.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "config.h"

enum {
	DATA_PATH, GC_HIGH, GC_LOW, RUNTIME, CLI, REGISTRY_INTERVAL, FUSE, USER_LIMIT, LAYER_SIZE, ANSWERS,
	/* pyxis's own keys */
	RUNTIME_PATH, EXECUTE_ENTRYPOINT, CONTAINER_SCOPE, SBATCH_SUPPORT, USE_ENROOT_LOAD, IMPORTER, USE_SQUASHFUSE,
	NKEYS
};

static const char *const keys[NKEYS] = {
	[DATA_PATH] = "container_cache_data_path",
	[GC_HIGH] = "container_cache_gc_high",
	[GC_LOW] = "container_cache_gc_low",
	[RUNTIME] = "container_cache_runtime",
	[CLI] = "container_cache_cli",
	[REGISTRY_INTERVAL] = "container_cache_registry_interval",
	[FUSE] = "container_cache_fuse",
	[USER_LIMIT] = "container_cache_user_limit",
	[LAYER_SIZE] = "container_cache_layer_size",
	[ANSWERS] = "container_cache_answers",
	[RUNTIME_PATH] = "runtime_path",
	[EXECUTE_ENTRYPOINT] = "execute_entrypoint",
	[CONTAINER_SCOPE] = "container_scope",
	[SBATCH_SUPPORT] = "sbatch_support",
	[USE_ENROOT_LOAD] = "use_enroot_load",
	[IMPORTER] = "importer",
	[USE_SQUASHFUSE] = "use_squashfuse",
};

static const char *const defaults[NKEYS] = {
	[GC_HIGH] = "85",
	[GC_LOW] = "80",
	[RUNTIME] = "enroot",
	[CLI] = "/usr/local/bin/pyxis-cache",
	[REGISTRY_INTERVAL] = "60",
	[FUSE] = "yes",
	[USER_LIMIT] = "off",
	[LAYER_SIZE] = "1g",
	[ANSWERS] = "yes",
	/* pyxis 0.24's defaults */
	[RUNTIME_PATH] = "/run/pyxis",
	[EXECUTE_ENTRYPOINT] = "no",
	[CONTAINER_SCOPE] = "global",
	[SBATCH_SUPPORT] = "yes",
	[USE_ENROOT_LOAD] = "no",
	[IMPORTER] = "",
	[USE_SQUASHFUSE] = "no",
};

const char *pyxis_config_runtime_name(enum container_runtime runtime)
{
	return runtime == RUNTIME_BWRAP ? "bwrap" : "enroot";
}

const char *pyxis_config_scope_name(enum container_scope scope)
{
	return scope == SCOPE_JOB ? "job" : "global";
}

#define INVALID(key, val, reason) \
	snprintf(err, errlen, PLUGIN_NAME ": %s: invalid value: %s (%s)", keys[key], val, reason)

/* Digits only (no sign, no spaces), 1 to 99. */
static int parse_percent(int key, const char *s, int *out, char *err, size_t errlen)
{
	size_t n = strspn(s, "0123456789");
	int v = 0;
	size_t i;

	for (i = 0; i < n && v <= 99; ++i)
		v = v * 10 + (s[i] - '0');
	if (n == 0 || s[n] != '\0' || v < 1 || v > 99) {
		INVALID(key, s, "must be an integer from 1 to 99");
		return -1;
	}
	*out = v;
	return 0;
}

/* Digits only, 0 to MAX_REGISTRY_INTERVAL seconds (the command uses it; the stub checks it alike). */
static int parse_seconds(int key, const char *s, int *out, char *err, size_t errlen)
{
	size_t n = strspn(s, "0123456789");
	long v = 0;
	size_t i;

	for (i = 0; i < n && v <= MAX_REGISTRY_INTERVAL; ++i)
		v = v * 10 + (s[i] - '0');
	if (n == 0 || s[n] != '\0' || v > MAX_REGISTRY_INTERVAL) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: invalid value: %s (must be a whole number of seconds from 0 to %d)",
			 keys[key], s, MAX_REGISTRY_INTERVAL);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* A percentage from 1 to 100, or "off" (0: no limit). The command enforces it; the stub checks it alike. */
static int parse_limit(int key, const char *s, int *out, char *err, size_t errlen)
{
	size_t n = strspn(s, "0123456789");
	int v = 0;
	size_t i;

	if (strcmp(s, "off") == 0) {
		*out = 0;
		return 0;
	}
	for (i = 0; i < n && v <= 100; ++i)
		v = v * 10 + (s[i] - '0');
	if (n == 0 || s[n] != '\0' || v < 1 || v > 100) {
		INVALID(key, s, "must be an integer from 1 to 100, or off");
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * A tmpfs size= value: a whole number (1 to 12 digits, no leading zero) with k, m
 * or g, or a percentage of memory from 1% to 100%. Kept as written (the mounter
 * hands it to tmpfs).
 */
static int parse_size(int key, const char *s, char *out, size_t len, char *err, size_t errlen)
{
	size_t n = strspn(s, "0123456789");
	int percent = s[n] == '%';
	long v = 0;
	size_t i;

	for (i = 0; i < n && i < 13; ++i)
		v = v * 10 + (s[i] - '0');
	if (n == 0 || n > 12 || s[0] == '0' || s[n] == '\0' || s[n + 1] != '\0' ||
	    (!percent && strchr("kmg", s[n]) == NULL) || (percent && v > 100) || n + 2 > len) {
		INVALID(key, s, "must be a size such as 512m, 4g or 10% (of memory)");
		return -1;
	}
	memcpy(out, s, n + 2);
	return 0;
}

/* A yes/no value, spelled as pyxis spells its booleans. */
static int parse_flag(int key, const char *s, int *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "1", "yes", "y", "true", NULL };
	static const char *const no[] = { "0", "no", "n", "false", NULL };
	int i;

	for (i = 0; yes[i] != NULL; ++i) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	INVALID(key, s, "must be yes or no");
	return -1;
}

/* Absolute, no ".." component; trailing slashes dropped (but "/" stays). */
static int parse_path(int key, const char *s, char *out, size_t len, char *err, size_t errlen)
{
	const char *p;
	size_t n;

	if (s[0] != '/') {
		INVALID(key, s, "must be an absolute path");
		return -1;
	}
	for (p = s; *p != '\0'; p += n) {
		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			INVALID(key, s, "must not contain '..'");
			return -1;
		}
	}
	n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		--n;
	if (n >= len) {
		INVALID(key, s, "path too long");
		return -1;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/*
 * pyxis's own keys, after ours, in pyxis's order, with pyxis's messages
 * ("<key>: invalid value: ..."). See docs/pyxis.md, "plugstack keys".
 */
static int parse_pyxis_keys(struct pyxis_keys *p, const char *const *vals, char *err, size_t errlen)
{
	size_t n = strlen(vals[RUNTIME_PATH]);

	/* Unused (a step's own files live in its directory under <base>): pyxis checks only its length. */
	if (n >= sizeof(p->runtime_path)) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: invalid value: path too long (%zu bytes, at most %zu)",
			 keys[RUNTIME_PATH], n, sizeof(p->runtime_path) - 1);
		return -1;
	}
	memcpy(p->runtime_path, vals[RUNTIME_PATH], n + 1);
	if (parse_flag(EXECUTE_ENTRYPOINT, vals[EXECUTE_ENTRYPOINT], &p->execute_entrypoint, err, errlen) < 0)
		return -1;
	if (strcmp(vals[CONTAINER_SCOPE], "global") == 0) {
		p->container_scope = SCOPE_GLOBAL;
	} else if (strcmp(vals[CONTAINER_SCOPE], "job") == 0) {
		p->container_scope = SCOPE_JOB;
	} else {
		INVALID(CONTAINER_SCOPE, vals[CONTAINER_SCOPE], "must be job or global");
		return -1;
	}
	if (parse_flag(SBATCH_SUPPORT, vals[SBATCH_SUPPORT], &p->sbatch_support, err, errlen) < 0 ||
	    parse_flag(USE_ENROOT_LOAD, vals[USE_ENROOT_LOAD], &p->use_enroot_load, err, errlen) < 0)
		return -1;
	/* An importer would fetch images by another mechanism than the cache's: refused rather than ignored. */
	if (vals[IMPORTER][0] != '\0') {
		INVALID(IMPORTER, vals[IMPORTER],
			"pyxis's importers are not supported: pyxis-cache imports registry images itself; remove the key");
		return -1;
	}
	return parse_flag(USE_SQUASHFUSE, vals[USE_SQUASHFUSE], &p->use_squashfuse, err, errlen);
}

int pyxis_config_parse(struct plugin_config *cfg, int ac, char **av, char *err, size_t errlen)
{
	const char *vals[NKEYS];
	size_t keylen;
	int i, k;
	int rc = -1;

	memcpy(vals, defaults, sizeof(vals));
	/* Every word first: an unknown key or a word without '=' fails; later words win. */
	for (i = 0; i < ac; ++i) {
		keylen = strcspn(av[i], "=");
		for (k = 0; k < NKEYS; ++k) {
			if (strlen(keys[k]) == keylen && strncmp(av[i], keys[k], keylen) == 0)
				break;
		}
		if (k == NKEYS) {
			snprintf(err, errlen, PLUGIN_NAME ": %.*s: unknown key", (int)keylen, av[i]);
			goto fail;
		}
		if (av[i][keylen] != '=') {
			snprintf(err, errlen, PLUGIN_NAME ": %s: missing value", keys[k]);
			goto fail;
		}
		vals[k] = av[i] + keylen + 1;
	}

	/* Then the checks, in lib/config/config.ts's order. */
	if (vals[DATA_PATH] == NULL || vals[DATA_PATH][0] == '\0') {
		snprintf(err, errlen, PLUGIN_NAME ": %s: required but not set", keys[DATA_PATH]);
		goto fail;
	}
	if (parse_path(DATA_PATH, vals[DATA_PATH], cfg->data_path, sizeof(cfg->data_path), err, errlen) < 0 ||
	    parse_percent(GC_HIGH, vals[GC_HIGH], &cfg->gc_high, err, errlen) < 0 ||
	    parse_percent(GC_LOW, vals[GC_LOW], &cfg->gc_low, err, errlen) < 0 ||
	    parse_path(CLI, vals[CLI], cfg->cli, sizeof(cfg->cli), err, errlen) < 0 ||
	    parse_seconds(REGISTRY_INTERVAL, vals[REGISTRY_INTERVAL], &cfg->registry_interval, err, errlen) < 0 ||
	    parse_flag(FUSE, vals[FUSE], &cfg->fuse, err, errlen) < 0 ||
	    parse_limit(USER_LIMIT, vals[USER_LIMIT], &cfg->user_limit, err, errlen) < 0 ||
	    parse_size(LAYER_SIZE, vals[LAYER_SIZE], cfg->layer_size, sizeof(cfg->layer_size), err, errlen) < 0 ||
	    parse_flag(ANSWERS, vals[ANSWERS], &cfg->answers, err, errlen) < 0)
		goto fail;
	if (cfg->gc_low >= cfg->gc_high) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: invalid value: %d (must be below %s=%d)", keys[GC_LOW],
			 cfg->gc_low, keys[GC_HIGH], cfg->gc_high);
		goto fail;
	}
	if (strcmp(vals[RUNTIME], "enroot") == 0) {
		cfg->runtime = RUNTIME_ENROOT;
	} else if (strcmp(vals[RUNTIME], "bwrap") == 0) {
		cfg->runtime = RUNTIME_BWRAP;
	} else {
		INVALID(RUNTIME, vals[RUNTIME], "must be enroot or bwrap");
		goto fail;
	}
	if (parse_pyxis_keys(&cfg->pyxis, vals, err, errlen) < 0)
		goto fail;
	rc = 0;
fail:
	return rc;
}
