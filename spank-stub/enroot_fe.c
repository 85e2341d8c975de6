/*
 * enroot's front end, done by the stub (enroot_fe.h says what and why).
 * Every step mirrors a line of enroot 4.1.2's bin/enroot, lib/enroot/common.sh
 * or runtime.sh, named in its comment; every case the mirror does not cover
 * exactly returns, and the step runs `enroot start` itself.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "enroot_fe.h"

#define FE_VERSION "4.1.2"
#define FE_FILE_MAX (256 * 1024)

/*
 * FNV-1a (64 bits) of enroot 4.1.2's files: bin/enroot's source, enroot.in (what
 * its Makefile's sed turns into bin/enroot: @sysconfdir@, @libdir@, @version@),
 * and lib/enroot's common.sh, docker.sh and runtime.sh as they are (bin/enroot
 * sources all three before `start`).
 */
#define FE_HASH_ENROOT_IN 0x18e5efa17cc29dd8ULL
#define FE_HASH_COMMON 0x4018613e0aa08926ULL
#define FE_HASH_DOCKER 0x4335d13a812d3bd1ULL
#define FE_HASH_RUNTIME 0x2d7377213c5de129ULL

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static uint64_t fnv(uint64_t h, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; ++i) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

/* The whole of a regular file (NUL-terminated, at most FE_FILE_MAX bytes) in *buf; its length, or -1. */
static ssize_t read_all(const char *path, char **buf)
{
	struct stat st;
	ssize_t n, len = 0;
	char *b;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size >= FE_FILE_MAX || (b = malloc(FE_FILE_MAX)) == NULL) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, b + len, FE_FILE_MAX - 1 - len)) > 0)
		len += n;
	close(fd);
	if (n < 0 || len >= FE_FILE_MAX - 1) {
		free(b);
		return -1;
	}
	b[len] = '\0';
	*buf = b;
	return len;
}

/* A line `<prefix>"<value>"` (value a plain path): copy value into out; 1, or 0 when line is not one. */
static int path_line(const char *line, size_t len, const char *prefix, char *out, size_t outlen)
{
	size_t plen = strlen(prefix), vlen, i;

	if (len < plen + 2 || strncmp(line, prefix, plen) != 0 || line[plen] != '"' || line[len - 1] != '"')
		return 0;
	vlen = len - plen - 2;
	if (vlen == 0 || vlen >= outlen || line[plen + 1] != '/')
		return -1;
	for (i = 0; i < vlen; ++i)
		if (strchr("\"$`\\ \t", line[plen + 1 + i]) != NULL)
			return -1;
	memcpy(out, line + plen + 1, vlen);
	out[vlen] = '\0';
	return 1;
}

static int file_hash(const char *dir, const char *name, uint64_t want)
{
	char path[PATH_MAX + 32];
	char *buf;
	ssize_t len;
	uint64_t h;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((len = read_all(path, &buf)) < 0)
		return -1;
	h = fnv(FNV_INIT, buf, (size_t)len);
	free(buf);
	return h == want ? 0 : -1;
}

static int config_init(struct child_env *env, const char *conf, char *why, size_t whylen);

/*
 * One line of bin/enroot as it was in enroot.in, into out: the first sysconfdir
 * and then the first libdir in it back to @sysconfdir@ and @libdir@ (the
 * Makefile's sed, undone), the version line's version back to @version@, and
 * config::init's path, whatever it is, to @sysconfdir@/enroot.conf (the file
 * read is the one named: a site may point it elsewhere). Its length.
 */
static size_t template_line(const struct enroot_fe *fe, const char *line, size_t n, char *out, size_t outlen)
{
	static const char *const subst[][2] = { { NULL, "@sysconfdir@" }, { NULL, "@libdir@" } };
	char tmp[8192];
	const char *from, *hit;
	size_t i, len;
	char conf[PATH_MAX];

	if (n >= sizeof(tmp) || n >= outlen)
		return (size_t)-1;
	if (path_line(line, n, "config::init ", conf, sizeof(conf)) > 0)
		return (size_t)snprintf(out, outlen, "config::init \"@sysconfdir@/enroot.conf\"");
	if (n == strlen("export ENROOT_VERSION=\"" FE_VERSION "\"") &&
	    strncmp(line, "export ENROOT_VERSION=\"" FE_VERSION "\"", n) == 0)
		return (size_t)snprintf(out, outlen, "export ENROOT_VERSION=\"@version@\"");
	memcpy(out, line, n);
	out[n] = '\0';
	for (i = 0; i < 2; ++i) {
		from = i == 0 ? fe->sysconfdir : fe->libdir;
		if ((hit = strstr(out, from)) == NULL)
			continue;
		len = strlen(from);
		if (strlen(out) - len + strlen(subst[i][1]) >= sizeof(tmp) || strlen(out) - len + strlen(subst[i][1]) >= outlen)
			return (size_t)-1;
		snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(hit - out), out, subst[i][1], hit + len);
		memcpy(out, tmp, strlen(tmp) + 1);
	}
	return strlen(out);
}

int enroot_fe_recognise(const char *enroot, struct enroot_fe *fe, char *why, size_t whylen)
{
	static const char *const given[] = { "ENROOT_DATA_PATH", "ENROOT_RUNTIME_PATH", "ENROOT_CACHE_PATH",
					     "ENROOT_CONFIG_PATH", "ENROOT_TEMP_PATH",
					     "ENROOT_MOUNT_HOME", "ENROOT_REMAP_ROOT", "HOME", NULL };
	struct child_env scratch = CHILD_ENV_INIT;
	const char *path = getenv("PATH");
	static const char *const version = "export ENROOT_VERSION=\"" FE_VERSION "\"";
	char *buf, *line, *end;
	char tline[8192];
	int found = 0, version_seen = 0, r;
	uint64_t h = FNV_INIT;
	ssize_t len;
	size_t n, tn;

	memset(fe, 0, sizeof(*fe));
	if ((len = read_all(enroot, &buf)) < 0) {
		say(why, whylen, "%s: not read", enroot);
		return -1;
	}
	/* Its #! line's program (enroot.in's: env, which finds bash in PATH), once the hash says it is enroot.in's. */
	if (sscanf(buf, "#! %4095s bash\n", fe->interp) != 1)
		fe->interp[0] = '\0';
	/* The install paths first: config::init's file, ENROOT_LIBRARY_PATH's and ENROOT_SYSCONF_PATH's defaults. */
	for (line = buf; line < buf + len; line = end + 1) {
		end = memchr(line, '\n', (size_t)(buf + len - line));
		if (end == NULL)
			end = buf + len;
		n = (size_t)(end - line);
		if ((r = path_line(line, n, "config::init ", fe->conf, sizeof(fe->conf))) == 0 &&
		    (r = path_line(line, n, "config::export ENROOT_LIBRARY_PATH     ", fe->libdir, sizeof(fe->libdir))) == 0)
			r = path_line(line, n, "config::export ENROOT_SYSCONF_PATH     ", fe->sysconfdir,
				      sizeof(fe->sysconfdir));
		if (r < 0)
			break;
		found += r;
		if (n == strlen(version) && strncmp(line, version, n) == 0)
			version_seen = 1;
	}
	/* Then the file as enroot.in was, hashed. */
	for (line = buf; found == 3 && line < buf + len; line = end + 1) {
		end = memchr(line, '\n', (size_t)(buf + len - line));
		if (end == NULL)
			end = buf + len;
		if ((tn = template_line(fe, line, (size_t)(end - line), tline, sizeof(tline) - 1)) == (size_t)-1) {
			found = 0;
			break;
		}
		if (end < buf + len)
			tline[tn++] = '\n';
		h = fnv(h, tline, tn);
	}
	free(buf);
	if (!version_seen) {
		say(why, whylen, "%s: not enroot " FE_VERSION, enroot);
		return -1;
	}
	if (found != 3 || h != FE_HASH_ENROOT_IN) {
		say(why, whylen, "%s: not enroot " FE_VERSION "'s front end as the stub knows it (%016llx)", enroot,
		    (unsigned long long)h);
		return -1;
	}
	if (file_hash(fe->libdir, "common.sh", FE_HASH_COMMON) < 0 || file_hash(fe->libdir, "docker.sh", FE_HASH_DOCKER) < 0 ||
	    file_hash(fe->libdir, "runtime.sh", FE_HASH_RUNTIME) < 0) {
		say(why, whylen, "%s: not enroot " FE_VERSION "'s libraries as the stub knows them", fe->libdir);
		return -1;
	}
	/*
	 * enroot.conf and its drop-ins as the stub reads them, with what the stub
	 * always gives (the child reads them again, as the user, with its own).
	 */
	child_env_put(&scratch, "PATH=%s", path != NULL ? path : PYXIS_CACHE_PATH);
	for (n = 0; given[n] != NULL; ++n)
		child_env_put(&scratch, "%s=/", given[n]);
	r = config_init(&scratch, fe->conf, why, whylen);
	for (n = 0; n < scratch.n; ++n)
		free(scratch.envp[n]);
	if (r < 0)
		return -1;
	fe->ok = 1;
	return 0;
}

/* ---- the environment as bash holds it ---- */

static const char *env_get(const struct child_env *env, const char *name)
{
	return child_env_get(env->envp, name);
}

/* bin/enroot's config::export NAME VALUE (no overwrite): export "$1=${!1:-$2}". */
static void config_export(struct child_env *env, const char *name, const char *value)
{
	const char *cur = env_get(env, name);

	if (cur == NULL || cur[0] == '\0')
		child_env_put(env, "%s=%s", name, value);
}

/* The names the stub gives enroot (runtime.c): nothing bash or enroot reads specially but as the front end does. */
static int name_known(const char *entry)
{
	static const char *const prefixes[] = { "ENROOT_", "SLURM_", "NVIDIA_", "MELLANOX_", "PMIX_", NULL };
	size_t len = strcspn(entry, "="), i;

	if (entry[len] != '=' || len == 0 || !(isalpha((unsigned char)entry[0]) || entry[0] == '_'))
		return 0;
	for (i = 0; i < len; ++i)
		if (!isalnum((unsigned char)entry[i]) && entry[i] != '_')
			return 0;
	if ((len == 4 && strncmp(entry, "PATH", 4) == 0) || (len == 4 && strncmp(entry, "HOME", 4) == 0) ||
	    (len == 4 && strncmp(entry, "TERM", 4) == 0))
		return 1;
	for (i = 0; prefixes[i] != NULL; ++i)
		if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/*
 * bash's PATH search, as `command -v NAME` (exec 0: the first file that is not a
 * directory) or as an exec (exec 1: the first such file that is executable).
 * Every entry of PATH is absolute, without a trailing slash (checked before).
 * 1 with its path in buf, or 0.
 */
static int path_find(const char *path, const char *name, int exec, char *buf, size_t len)
{
	const char *p = path, *colon;
	struct stat st;

	for (;;) {
		colon = strchr(p, ':');
		snprintf(buf, len, "%.*s/%s", (int)(colon != NULL ? colon - p : (ptrdiff_t)strlen(p)), p, name);
		if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode) && (!exec || access(buf, X_OK) == 0))
			return 1;
		if (colon == NULL)
			return 0;
		p = colon + 1;
	}
}

static int path_plain(const char *path)
{
	const char *p = path, *colon;
	size_t n;

	for (;;) {
		colon = strchr(p, ':');
		n = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (n < 2 || p[0] != '/' || p[n - 1] == '/')
			return 0;
		if (colon == NULL)
			return 1;
		p = colon + 1;
	}
}

/* ---- enroot.conf as config::load reads it ---- */

/* config::load's filter of keys: ENROOT_[[:upper:]_]+, MELLANOX_*, NVIDIA_*, SSL_CERT_(DIR|FILE), (all|no|http|https)_proxy. */
static int key_taken(const char *key)
{
	const char *p;

	if (strncmp(key, "ENROOT_", 7) == 0 && key[7] != '\0') {
		for (p = key + 7; *p != '\0'; ++p)
			if (!(isupper((unsigned char)*p) || *p == '_'))
				return 0;
		return 1;
	}
	return strncmp(key, "MELLANOX_", 9) == 0 || strncmp(key, "NVIDIA_", 7) == 0 || strcmp(key, "SSL_CERT_DIR") == 0 ||
	       strcmp(key, "SSL_CERT_FILE") == 0 || strcmp(key, "all_proxy") == 0 || strcmp(key, "no_proxy") == 0 ||
	       strcmp(key, "http_proxy") == 0 || strcmp(key, "https_proxy") == 0;
}

/* A character that means nothing to bash in a word, quoted or not (no expansion, no glob, no operator). */
static int plain_char(char c)
{
	return isalnum((unsigned char)c) || strchr("_./:,+@%^=-", c) != NULL;
}

/*
 * `eval echo VALUE` for a value made of plain characters, blanks and quotes
 * ('...' and "..." around plain characters and blanks): the words, quotes
 * removed, one blank between them. 0, or -1 for anything else (an expansion, a
 * glob, an operator, unbalanced quotes; with options, an echo option as the
 * first word).
 */
static int eval_echo(const char *v, char *out, size_t outlen, int options)
{
	size_t o = 0, word_start;
	int words = 0;
	char q;

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t')
			++v;
		if (*v == '\0')
			break;
		if (words++ > 0) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = ' ';
		}
		word_start = o;
		while (*v != '\0' && *v != ' ' && *v != '\t') {
			if (*v == '\'' || *v == '"') {
				q = *v++;
				while (*v != q) {
					if (*v == '\0' || !(plain_char(*v) || *v == ' ' || *v == '\t') || o + 1 >= outlen)
						return -1;
					out[o++] = *v++;
				}
				++v;
			} else if (plain_char(*v) && o + 1 < outlen) {
				out[o++] = *v++;
			} else {
				return -1;
			}
		}
		/* echo's options: a first word -[neE]+ is one. */
		if (options && words == 1 && o - word_start >= 2 && out[word_start] == '-' &&
		    strspn(out + word_start + 1, "neE") == o - word_start - 1)
			return -1;
	}
	out[o] = '\0';
	return 0;
}

/*
 * A value whose `eval echo` is thrown away (config::export keeps a non-empty
 * value: the paths the stub gives enroot), whose evaluation has no effect to
 * keep: eval_echo's grammar with $NAME and ${NAME} of variables set (no error
 * under set -u) and $(id -u), $(id -g), $(id -un), $(id -gn) (id in PATH), as
 * sites write them in ENROOT_DATA_PATH and the like. 1 when it is one.
 */
static int discarded(const struct child_env *env, const char *v, int id_found)
{
	static const char *const ids[] = { "$(id -u)", "$(id -g)", "$(id -un)", "$(id -gn)", NULL };
	char plain[4096], name[128], out[4096];
	size_t o = 0, n, i;
	const char *end;

	while (*v != '\0') {
		if (o + 2 >= sizeof(plain))
			return 0;
		if (*v != '$') {
			plain[o++] = *v++;
			continue;
		}
		for (i = 0; ids[i] != NULL && strncmp(v, ids[i], strlen(ids[i])) != 0; ++i)
			;
		if (ids[i] != NULL) {
			if (!id_found)
				return 0;
			v += strlen(ids[i]);
		} else {
			end = v[1] == '{' ? v + 2 : v + 1;
			for (n = 0; isalnum((unsigned char)end[n]) || end[n] == '_'; ++n)
				;
			if (n == 0 || n >= sizeof(name) || isdigit((unsigned char)end[0]) || (v[1] == '{' && end[n] != '}'))
				return 0;
			memcpy(name, end, n);
			name[n] = '\0';
			if (env_get(env, name) == NULL)
				return 0;
			v = end + n + (v[1] == '{');
		}
		plain[o++] = 'X';
	}
	plain[o] = '\0';
	return eval_echo(plain, out, sizeof(out), 0) == 0;
}

/*
 * config::load FILE: `[ -s FILE ] && ! bash -n FILE` is an error, then each
 * line `read` with IFS=' \t=' into key and value, config::export of the taken
 * keys. Lines the stub takes: blank, a comment, or `[blanks]KEY VALUE` /
 * `[blanks]KEY=VALUE` with a taken key (which bash -n passes as they are).
 * 0, or -1 for anything else.
 */
static int config_load(struct child_env *env, const char *path, char *why, size_t whylen)
{
	const char *envpath = env_get(env, "PATH");
	char idpath[PATH_MAX];
	int id_found = envpath != NULL && path_find(envpath, "id", 1, idpath, sizeof(idpath));
	char key[128], value[4096], out[4096];
	char *buf, *line, *end, *p, *k;
	struct stat st;
	ssize_t len;
	size_t n;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0; /* [ -e ] */
		say(why, whylen, "%s: %m", path);
		return -1;
	}
	if ((len = read_all(path, &buf)) < 0) {
		say(why, whylen, "%s: not a readable file", path);
		return -1;
	}
	if (memchr(buf, '\0', (size_t)len) != NULL) {
		free(buf);
		say(why, whylen, "%s: a NUL byte", path);
		return -1;
	}
	for (line = buf; line < buf + len; line = end + 1) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = buf + len;
		*end = '\0';
		for (p = line; *p == ' ' || *p == '\t'; ++p)
			;
		if (*p == '\0' || *p == '#')
			continue;
		for (k = p; isalnum((unsigned char)*p) || *p == '_'; ++p)
			;
		n = (size_t)(p - k);
		if (n == 0 || n >= sizeof(key) || isdigit((unsigned char)*k) || !(*p == '\0' || *p == ' ' || *p == '\t' || *p == '='))
			goto bad;
		memcpy(key, k, n);
		key[n] = '\0';
		if (!key_taken(key))
			goto bad;
		if (*p == '=')
			++p;
		else
			while (*p == ' ' || *p == '\t')
				++p;
		if (*p == '=' || *p == ' ' || *p == '\t' || strlen(p) >= sizeof(value))
			goto bad;
		snprintf(value, sizeof(value), "%s", p);
		for (n = strlen(value); n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'); --n)
			value[n - 1] = '\0';
		/* read's last line without a newline ends the loop before its body. */
		if (eval_echo(value, out, sizeof(out), 1) == 0) {
			if (end < buf + len)
				config_export(env, key, out);
		} else if (env_get(env, key) == NULL || env_get(env, key)[0] == '\0' || !discarded(env, value, id_found)) {
			goto bad;
		}
	}
	free(buf);
	return 0;
bad:
	say(why, whylen, "%s: a line the stub does not read as enroot would: %.80s", path, line);
	free(buf);
	return -1;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* config::init FILE: config::load FILE, then each FILE.d/NAME.conf in glob order (the C locale's: no LANG, no LC_*). */
static int config_init(struct child_env *env, const char *conf, char *why, size_t whylen)
{
	char dir[PATH_MAX + 8], path[PATH_MAX * 2];
	char *names[256];
	size_t count = 0, i, len;
	struct dirent *de;
	struct stat st;
	int rc = 0;
	DIR *d;

	if (config_load(env, conf, why, whylen) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s.d", conf);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return stat(dir, &st) < 0 && errno != ENOENT ? (say(why, whylen, "%s: %m", dir), -1) : 0;
	if ((d = opendir(dir)) == NULL) {
		say(why, whylen, "%s: %m", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 5, ".conf") != 0)
			continue;
		if (count == sizeof(names) / sizeof(names[0]) || (names[count] = strdup(de->d_name)) == NULL) {
			say(why, whylen, "%s: too many files", dir);
			rc = -1;
			break;
		}
		++count;
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), name_cmp);
	for (i = 0; i < count; ++i) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (rc == 0 && config_load(env, path, why, whylen) < 0)
			rc = -1;
		free(names[i]);
	}
	return rc;
}

/* config::fini: unset every exported ENROOT_* whose value is ^(no?|N[oO]?|[fF](alse)?|FALSE)$. */
static void config_fini(struct child_env *env)
{
	static const char *const falses[] = { "n", "no", "N", "NO", "No", "f", "false", "F", "False", "FALSE", NULL };
	size_t i, j;
	const char *v;

	for (i = 0; i < env->n;) {
		if (strncmp(env->envp[i], "ENROOT_", 7) == 0) {
			v = strchr(env->envp[i], '=') + 1;
			for (j = 0; falses[j] != NULL && strcmp(v, falses[j]) != 0; ++j)
				;
			if (falses[j] != NULL) {
				memmove(&env->envp[i], &env->envp[i + 1], (env->n - i) * sizeof(env->envp[0]));
				--env->n;
				continue;
			}
		}
		++i;
	}
}

/* mkdir -p PATH under umask 077 (bin/enroot's last line of its configuration). 0, or -1. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t i;

	if (path == NULL || path[0] == '\0' || strlen(path) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", path);
	for (i = 1; buf[i] != '\0'; ++i)
		if (buf[i] == '/' && buf[i - 1] != '/') {
			buf[i] = '\0';
			if (mkdir(buf, 0700) < 0 && errno != EEXIST)
				return -1;
			buf[i] = '/';
		}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/*
 * What only bash can say: its SHELLOPTS and BASHOPTS once bin/enroot's `set -euo
 * pipefail; shopt -s lastpipe` ran (runtime::start passes them on as -o/-O), and
 * `nproc` (ENROOT_MAX_PROCESSORS's default), in one child: bash, which execs nproc.
 */
static int bash_says(const char *bash, struct child_env *env, char *out, size_t outlen)
{
	const char *argv[] = { "bash", "--norc", "-c",
			       "set -euo pipefail; shopt -s lastpipe; printf '%s\\n%s\\n' \"${SHELLOPTS}\" \"${BASHOPTS}\"; exec nproc",
			       NULL };
	size_t len = 0;
	ssize_t n;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) < 0)
			_exit(127);
		execve(bash, (char **)argv, env->envp);
		_exit(127);
	}
	close(p[1]);
	while (len + 1 < outlen && (n = read(p[0], out + len, outlen - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	out[len] = '\0';
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Append "-o X" (flag "-o") or "-O X" for each X of a colon list (bash's ${LIST//:/ -o }, split). */
static int put_opts(const char *argv[], int *n, int max, const char *flag, char *list)
{
	char *save = NULL, *word;

	for (word = strtok_r(list, ":", &save); word != NULL; word = strtok_r(NULL, ":", &save)) {
		if (*n + 2 >= max)
			return -1;
		argv[(*n)++] = flag;
		argv[(*n)++] = word;
	}
	return 0;
}

/* bin/enroot's config::export defaults that depend on nothing (the paths and nproc are set apart). */
static const char *const fixed_defaults[][2] = {
	{ "ENROOT_MAX_CONNECTIONS", "10" },	 { "ENROOT_CONNECT_TIMEOUT", "30" },
	{ "ENROOT_TRANSFER_TIMEOUT", "0" },	 { "ENROOT_TRANSFER_RETRIES", "0" },
	{ "ENROOT_LOGIN_SHELL", "true" },	 { "ENROOT_ALLOW_SUPERUSER", "false" },
	{ "ENROOT_ALLOW_HTTP", "false" },	 { "ENROOT_ROOTFS_WRITABLE", "false" },
	{ "ENROOT_NATIVE_OVERLAYFS", "true" },	 { "ENROOT_REMAP_ROOT", "false" },
	{ "ENROOT_BUNDLE_ALL", "false" },	 { "ENROOT_BUNDLE_CHECKSUM", "false" },
	{ "ENROOT_FORCE_OVERRIDE", "false" },
};

void enroot_fe_exec(const struct enroot_fe *fe, struct child_env *env, const char *rc, const char *name,
		    const char *const cmd[], char *why, size_t whylen)
{
	char bash[PATH_MAX], nsenter[PATH_MAX], found[PATH_MAX], cwd[PATH_MAX], said[4096];
	char rootfs[PATH_MAX], rcpath[PATH_MAX], path[PATH_MAX * 2];
	const char *argv[160];
	const char *home, *v, *envpath, *shellopts, *bashopts, *nproc;
	char *nl, *nl2;
	struct stat st;
	mode_t mask;
	size_t i;
	int n = 0;
	static const char *const checked[] = { "mountpoint", "awk", "grep", "sed", "flock", NULL };

	if (!fe->ok) {
		say(why, whylen, "not recognised");
		return;
	}
	/* child_env_put leaves out what does not fit: room for the ~30 variables the front end adds. */
	if (env->n + 64 >= CHILD_ENV_MAX) {
		say(why, whylen, "too many variables");
		return;
	}
	for (i = 0; i < env->n; ++i)
		if (!name_known(env->envp[i])) {
			say(why, whylen, "a variable the stub does not pass through bash as it would: %.40s", env->envp[i]);
			return;
		}
	envpath = env_get(env, "PATH");
	home = env_get(env, "HOME");
	if (envpath == NULL || !path_plain(envpath) || home == NULL || home[0] == '\0') {
		say(why, whylen, "PATH or HOME not plain");
		return;
	}
	/* #! /usr/bin/env bash: env finds bash in PATH, and bash's $BASH is the same search. */
	if (fe->interp[0] != '/' || access(fe->interp, X_OK) < 0 || !path_find(envpath, "bash", 1, bash, sizeof(bash))) {
		say(why, whylen, "no bash for bin/enroot's #!");
		return;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		say(why, whylen, "getcwd: %m");
		return;
	}

	/* ---- BEGIN CONFIG ---- */
	if (config_init(env, fe->conf, why, whylen) < 0)
		return;
	snprintf(path, sizeof(path), "%s/.local/share", home);
	config_export(env, "XDG_DATA_HOME", path);
	snprintf(path, sizeof(path), "%s/.config", home);
	config_export(env, "XDG_CONFIG_HOME", path);
	snprintf(path, sizeof(path), "%s/.cache", home);
	config_export(env, "XDG_CACHE_HOME", path);
	config_export(env, "XDG_RUNTIME_DIR", "/run");
	config_export(env, "ENROOT_LIBRARY_PATH", fe->libdir);
	config_export(env, "ENROOT_SYSCONF_PATH", fe->sysconfdir);
	snprintf(path, sizeof(path), "%s/enroot", env_get(env, "XDG_RUNTIME_DIR"));
	config_export(env, "ENROOT_RUNTIME_PATH", path);
	snprintf(path, sizeof(path), "%s/enroot", env_get(env, "XDG_CONFIG_HOME"));
	config_export(env, "ENROOT_CONFIG_PATH", path);
	snprintf(path, sizeof(path), "%s/enroot", env_get(env, "XDG_CACHE_HOME"));
	config_export(env, "ENROOT_CACHE_PATH", path);
	snprintf(path, sizeof(path), "%s/enroot", env_get(env, "XDG_DATA_HOME"));
	config_export(env, "ENROOT_DATA_PATH", path);
	v = env_get(env, "TMPDIR");
	config_export(env, "ENROOT_TEMP_PATH", v != NULL && v[0] != '\0' ? v : "/tmp");
	config_export(env, "ENROOT_GZIP_PROGRAM", path_find(envpath, "pigz", 0, found, sizeof(found)) ? "pigz" : "gzip");
	config_export(env, "ENROOT_ZSTD_OPTIONS", "-1");
	config_export(env, "ENROOT_SQUASH_OPTIONS", "-comp lzo -noD -exit-on-error");
	if (bash_says(bash, env, said, sizeof(said)) < 0 || (nl = strchr(said, '\n')) == NULL ||
	    (nl2 = strchr(nl + 1, '\n')) == NULL || strchr(nl2 + 1, '\n') == NULL) {
		say(why, whylen, "bash and nproc did not answer");
		return;
	}
	*nl = *nl2 = '\0';
	shellopts = said;
	bashopts = nl + 1;
	nproc = nl2 + 1;
	*strchr(nproc, '\n') = '\0';
	config_export(env, "ENROOT_MAX_PROCESSORS", nproc);
	for (i = 0; i < sizeof(fixed_defaults) / sizeof(fixed_defaults[0]); ++i)
		config_export(env, fixed_defaults[i][0], fixed_defaults[i][1]);
	config_fini(env);
	mask = umask(077);
	if (mkdir_p(env_get(env, "ENROOT_CACHE_PATH")) < 0 || mkdir_p(env_get(env, "ENROOT_DATA_PATH")) < 0 ||
	    mkdir_p(env_get(env, "ENROOT_RUNTIME_PATH")) < 0) {
		umask(mask);
		say(why, whylen, "mkdir -p of enroot's paths failed");
		return;
	}
	umask(mask);
	/* ----- END CONFIG ----- */
	child_env_put(env, "ENROOT_VERSION=" FE_VERSION);
	/* The libraries sourced are the ones recognised. */
	v = env_get(env, "ENROOT_LIBRARY_PATH");
	if (v == NULL || strcmp(v, fe->libdir) != 0) {
		say(why, whylen, "ENROOT_LIBRARY_PATH is not bin/enroot's");
		return;
	}

	/* runtime::start: common::checkcmd mountpoint awk grep sed flock. */
	for (i = 0; checked[i] != NULL; ++i)
		if (!path_find(envpath, checked[i], 0, found, sizeof(found))) {
			say(why, whylen, "%s not found", checked[i]);
			return;
		}
	/* The rootfs: a file of that name (from the working directory) would be an image; else $ENROOT_DATA_PATH/NAME. */
	if ((stat(name, &st) == 0 && S_ISREG(st.st_mode)) || strchr(name, '/') != NULL || name[0] == '\0') {
		say(why, whylen, "the name is a path");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", env_get(env, "ENROOT_DATA_PATH"), name);
	if (realpath(path, rootfs) == NULL || stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
		say(why, whylen, "%s: not a directory", path);
		return;
	}
	/* The command script: resolved unless a FIFO, a regular file. */
	rcpath[0] = '\0';
	if (rc[0] != '\0') {
		if (stat(rc, &st) == 0 && S_ISFIFO(st.st_mode))
			snprintf(rcpath, sizeof(rcpath), "%s", rc);
		else if (realpath(rc, rcpath) == NULL || stat(rcpath, &st) < 0 || !S_ISREG(st.st_mode)) {
			say(why, whylen, "%s: not a file", rc);
			return;
		}
	}
	if (!path_find(envpath, "enroot-nsenter", 1, nsenter, sizeof(nsenter))) {
		say(why, whylen, "enroot-nsenter not found");
		return;
	}
	snprintf(path, sizeof(path), "%s/runtime.sh", fe->libdir);
	child_env_put(env, "BASH_ENV=%s", path);
	/* What bash itself exports: PWD (from getcwd: the stub gives none), SHLVL (1, less one for exec). */
	child_env_put(env, "PWD=%s", cwd);
	child_env_put(env, "SHLVL=0");

	argv[n++] = "enroot-nsenter";
	v = env_get(env, "ENROOT_ALLOW_SUPERUSER");
	if (v == NULL || v[0] == '\0' || geteuid() != 0)
		argv[n++] = "--user";
	argv[n++] = "--mount";
	v = env_get(env, "ENROOT_REMAP_ROOT");
	if (v != NULL && v[0] != '\0')
		argv[n++] = "--remap-root";
	argv[n++] = bash;
	argv[n++] = "--norc";
	if (put_opts(argv, &n, 120, "-o", (char *)shellopts) < 0 || put_opts(argv, &n, 120, "-O", (char *)bashopts) < 0) {
		say(why, whylen, "too many shell options");
		return;
	}
	argv[n++] = "-c";
	argv[n++] = "runtime::_start \"$@\"";
	argv[n++] = "";     /* $0: the configuration */
	argv[n++] = rootfs; /* _rootfs */
	argv[n++] = rcpath; /* _rc */
	argv[n++] = "";     /* _config */
	argv[n++] = "";     /* _mounts */
	argv[n++] = "";     /* _environ */
	for (i = 0; cmd[i] != NULL && n < (int)(sizeof(argv) / sizeof(argv[0])) - 1; ++i)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	execve(nsenter, (char **)argv, env->envp);
	say(why, whylen, "%s: %m", nsenter);
}
