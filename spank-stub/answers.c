/*
 * Root's record of the command's answers, ccache's "direct mode" for a warm
 * step (answers.h; docs/srun.md, "Warm steps without the command").
 *
 * <base>/.pyxis_cache_answers/ is root's (0700), and so is every record in it
 * (0600): "<uid>.<4 hex>", a slot of a hash of uid, cwd and image; three lines:
 *
 *   pyxis-cache answer 1 <uid> <dev> <ino> <size> <mtime s> <ns> <ctime s> <ns> <entry name>
 *   <the job's cwd, for a relative image path; else empty>
 *   <the image as the job gave it>
 *
 * Nothing here touches a path the user chose from slurmstepd itself: one forked
 * child per question, bounded (ANSWERS_WAIT_MS, then killed), reads or writes
 * root's record as root and opens the image and the entry as the job user (its
 * effective ids only: its real uid stays 0, so the user cannot ptrace it or
 * rewrite what it prints). slurmstepd then takes the entry's lock (lock.c) as
 * after the command's answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "answers.h"
#include "child.h"
#include "cli.h"
#include "lock.h"
#include "log.h"

#define RECORD_MAGIC "pyxis-cache answer 1"
/* A child that has not answered by then is killed, and the command asked instead. */
#define ANSWERS_WAIT_MS 2000
/* A record is kept only of an image whose mtime and ctime are at least this old. */
#define SETTLE_NS 1000000000LL

/*
 * What bounds root's records of one user: at most ANSWER_SLOTS files (a hash that
 * falls on another image's slot replaces its record: both then ask the command
 * until one of them is recorded again), each of at most ANSWER_TEXT_MAX bytes of
 * image and directory (longer ones are never recorded): about 20 MiB at most.
 */
#define ANSWER_SLOTS 16384
#define ANSWER_TEXT_MAX 1024

/* Exit statuses of the lookup child. */
enum { HIT = 0, MISS = 1, NO_IMAGE = 2, NO_ENTRY = 3 };

struct question {
	const struct pyxis_job *job;
	const char *image;
	const char *cwd_key;         /* the job's cwd for a relative image, else "" */
	char base[PATH_MAX];         /* the cache's root, root-owned */
	char dir[PATH_MAX];          /* <base>/.pyxis_cache_answers */
	char file[64];               /* the record's name in dir: "<uid>.<4 hex>" */
	const char *user_dir;        /* <base>/<uid> */
	const char *name;            /* answers_record: the entry the command named */
	const struct answer_seen *seen; /* answers_record: the image before the command */
};

/* FNV-1a, 64 bits, over uid, cwd and image: a file name, not a secret (the record holds all three). */
static unsigned long long key_hash(uid_t uid, const char *cwd_key, const char *image)
{
	unsigned long long h = 0xcbf29ce484222325ULL;
	char uid_text[16];
	const char *parts[3] = { uid_text, cwd_key, image };
	const char *s;
	int i;

	snprintf(uid_text, sizeof(uid_text), "%u", (unsigned)uid);
	for (i = 0; i < 3; ++i) {
		for (s = parts[i]; *s != '\0'; ++s)
			h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
		h = (h ^ 0xff) * 0x100000001b3ULL; /* a separator no text contains */
	}
	return h;
}

/* In the child: the job user's effective ids (groups too), or root's again (user NULL). */
static int act_as(const struct pyxis_job *user)
{
	if (user == NULL)
		return seteuid(0) < 0 || setegid(0) < 0 || setgroups(0, NULL) < 0 ? -1 : 0;
	return setgroups(user->ngids, user->gids) < 0 || setegid(user->gid) < 0 || seteuid(user->uid) < 0 ? -1 : 0;
}

/* As the job user, in the job's cwd: open the image and fstat it (a regular file only). */
static int open_image(const struct question *q, struct answer_seen *seen)
{
	struct stat st;
	int fd;
	int rc = -1;

	seen->valid = 0;
	if (act_as(q->job) < 0 || (q->cwd_key[0] != '\0' && chdir(q->cwd_key) < 0))
		goto done;
	/* O_NONBLOCK: a FIFO in its place does not hold us in open(2). */
	fd = open(q->image, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		goto done;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		*seen = (struct answer_seen){ .valid = 1, .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
					      .mtime = st.st_mtim, .ctime = st.st_ctim };
		rc = 0;
	}
	close(fd);
done:
	if (chdir("/") < 0 || act_as(NULL) < 0)
		_exit(126);
	return rc;
}

static int same(const struct answer_seen *a, const struct answer_seen *b)
{
	return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/*
 * As root: the record directory, when it is root's and no one else's: its
 * descriptor, or -1. create: make it (and not trust one someone else made).
 */
static int open_dir(const struct question *q, int create)
{
	struct stat st;
	int fd;

	if (lstat(q->base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
		return -1;
	if (create && mkdir(q->dir, 0700) < 0 && errno != EEXIST)
		return -1;
	fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* As root: the record for q, if there is one and it is for exactly this uid, cwd and image. */
static int read_record(const struct question *q, struct answer_seen *rec, char *name, size_t namelen)
{
	char buf[3 * PATH_MAX + 512], entry[NAME_MAX + 1];
	unsigned uid;
	long long msec, mnsec, csec, cnsec;
	char *line2, *line3, *end;
	struct stat st;
	ssize_t n;
	int dirfd, fd = -1;
	int rc = -1;

	dirfd = open_dir(q, 0);
	if (dirfd < 0)
		return -1;
	fd = openat(dirfd, q->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0)
		goto done;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		goto done;
	buf[n] = '\0';
	line2 = strchr(buf, '\n');
	if (line2 == NULL)
		goto done;
	*line2++ = '\0';
	line3 = strchr(line2, '\n');
	if (line3 == NULL)
		goto done;
	*line3++ = '\0';
	end = strchr(line3, '\n');
	if (end == NULL || end[1] != '\0')
		goto done;
	*end = '\0';
	if (sscanf(buf, RECORD_MAGIC " %u %llu %llu %lld %lld %lld %lld %lld %255s", &uid, &rec->dev, &rec->ino,
		   &rec->size, &msec, &mnsec, &csec, &cnsec, entry) != 9 ||
	    uid != (unsigned)q->job->uid || strcmp(line2, q->cwd_key) != 0 || strcmp(line3, q->image) != 0 ||
	    !cli_entry_name_ok(entry, q->job->uid) || strlen(entry) >= namelen)
		goto done;
	rec->mtime = (struct timespec){ .tv_sec = msec, .tv_nsec = mnsec };
	rec->ctime = (struct timespec){ .tv_sec = csec, .tv_nsec = cnsec };
	rec->valid = 1;
	strcpy(name, entry);
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	close(dirfd);
	return rc;
}

/*
 * As the job user: the entry's last use is now (the collector's LRU clock, the
 * entry directory's mtime, which the command's reuse sets otherwise), through
 * a descriptor of the entry itself. NO_ENTRY when it is gone (evicted).
 */
static int touch_entry(const struct question *q, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;
	int rc = MISS;

	if (snprintf(path, sizeof(path), "%s/%s", q->user_dir, name) >= (int)sizeof(path) || act_as(q->job) < 0)
		goto done;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? NO_ENTRY : MISS;
		goto done;
	}
	if (fstat(fd, &st) == 0 && st.st_uid == q->job->uid && futimens(fd, NULL) == 0)
		rc = HIT;
	close(fd);
done:
	if (act_as(NULL) < 0)
		_exit(126);
	return rc;
}

static void print_seen(const struct answer_seen *s)
{
	dprintf(STDOUT_FILENO, "%llu %llu %lld %lld %ld %lld %ld\n", s->dev, s->ino, s->size, (long long)s->mtime.tv_sec,
		s->mtime.tv_nsec, (long long)s->ctime.tv_sec, s->ctime.tv_nsec);
}

/* child_fn (as root): the record, the image as the user, and on a match the entry's touch. */
static int lookup_fn(void *arg)
{
	const struct question *q = arg;
	struct answer_seen rec = { 0 }, now = { 0 };
	char name[NAME_MAX + 1];
	int have;
	int rc;

	have = read_record(q, &rec, name, sizeof(name)) == 0;
	if (open_image(q, &now) < 0)
		return NO_IMAGE;
	print_seen(&now);
	if (!have || !same(&rec, &now))
		return MISS;
	rc = touch_entry(q, name);
	if (rc == HIT || rc == NO_ENTRY)
		dprintf(STDOUT_FILENO, "%s\n", name);
	return rc;
}

/* child_fn (as root): the image again as the user; if unchanged and settled, root writes the record. */
static int record_fn(void *arg)
{
	const struct question *q = arg;
	struct answer_seen now = { 0 };
	struct timespec clock;
	long long now_ns, m_ns, c_ns;
	char tmp[NAME_MAX + 1], text[3 * PATH_MAX + 512];
	int dirfd, fd, n;

	if (open_image(q, &now) < 0 || !same(&now, q->seen))
		return 1;
	clock_gettime(CLOCK_REALTIME, &clock);
	now_ns = clock.tv_sec * 1000000000LL + clock.tv_nsec;
	m_ns = now.mtime.tv_sec * 1000000000LL + now.mtime.tv_nsec;
	c_ns = now.ctime.tv_sec * 1000000000LL + now.ctime.tv_nsec;
	if (m_ns > now_ns - SETTLE_NS || c_ns > now_ns - SETTLE_NS)
		return 2;
	dirfd = open_dir(q, 1);
	if (dirfd < 0)
		return 3;
	/* No stdio in a child of a threaded slurmstepd: one buffer, one write. */
	n = snprintf(text, sizeof(text), RECORD_MAGIC " %u %llu %llu %lld %lld %ld %lld %ld %s\n%s\n%s\n",
		     (unsigned)q->job->uid, now.dev, now.ino, now.size, (long long)now.mtime.tv_sec, now.mtime.tv_nsec,
		     (long long)now.ctime.tv_sec, now.ctime.tv_nsec, q->name, q->cwd_key, q->image);
	if (n < 0 || n >= (int)sizeof(text))
		return 3;
	snprintf(tmp, sizeof(tmp), ".%s.%d", q->file, (int)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return 3;
	if (write(fd, text, (size_t)n) != n || close(fd) != 0 || renameat(dirfd, tmp, dirfd, q->file) < 0) {
		unlinkat(dirfd, tmp, 0);
		return 3;
	}
	return 0;
}

/* The question for image: 0, or -1 when no record can be kept for it. */
static int ask(const struct plugin_context *ctx, const char *image, struct question *q)
{
	const char *cwd_key = image[0] == '/' ? "" : ctx->job.cwd;

	/* A record is line by line: nothing with a newline in it; and no longer than ANSWER_TEXT_MAX. */
	if (!ctx->cfg.answers || strchr(image, '\n') != NULL || strchr(cwd_key, '\n') != NULL ||
	    strlen(image) + strlen(cwd_key) > ANSWER_TEXT_MAX)
		return -1;
	*q = (struct question){ .job = &ctx->job, .user_dir = ctx->user_dir, .image = image, .cwd_key = cwd_key };
	if (snprintf(q->base, sizeof(q->base), "%s", ctx->cfg.data_path) >= (int)sizeof(q->base) ||
	    snprintf(q->dir, sizeof(q->dir), "%s/" ANSWERS_DIR, ctx->cfg.data_path) >= (int)sizeof(q->dir))
		return -1;
	snprintf(q->file, sizeof(q->file), "%u.%04llx", (unsigned)ctx->job.uid,
		 key_hash(ctx->job.uid, cwd_key, image) % ANSWER_SLOTS);
	return 0;
}

/* deadline_ready for child_wait: "ready" (stop waiting) once the deadline passed. */
static int past(void *arg)
{
	const struct timespec *deadline = arg;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Run fn(q) in a bounded child as root: its exit status, or -1 (then it is gone, killed if need be). */
static int run(child_fn fn, struct question *q, char *out, size_t outlen)
{
	struct child ch = CHILD_INIT;
	struct timespec deadline;
	char err[ERROR_MAX];
	int status = -1;
	int rc;

	out[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ANSWERS_WAIT_MS / 1000;
	if (child_start(&ch, fn, q, NULL, "/", -1, -1, err, sizeof(err)) < 0) {
		pyxis_debug(PLUGIN_NAME ": answers: %s", err);
		return -1;
	}
	rc = child_wait(&ch, past, &deadline, &status, err, sizeof(err));
	if (rc == 0)
		child_read_capture(ch.out_fd, out, outlen);
	else
		pyxis_debug(PLUGIN_NAME ": answers: %s", rc > 0 ? "no answer in time, killed" : err);
	child_end(&ch);
	return rc == 0 ? status : -1;
}

int answers_lookup(struct plugin_context *ctx, const char *image, struct answer_seen *seen)
{
	struct container *c = &ctx->container;
	struct question q;
	char out[512], lock[PATH_MAX], err[ERROR_MAX], *name;
	long long msec, csec;
	long mnsec, cnsec;
	int status;
	int locked;

	seen->valid = 0;
	if (ask(ctx, image, &q) < 0)
		return 0;
	pyxis_stamp("answers");
	status = run(lookup_fn, &q, out, sizeof(out));
	if ((status == HIT || status == MISS || status == NO_ENTRY) &&
	    sscanf(out, "%llu %llu %lld %lld %ld %lld %ld", &seen->dev, &seen->ino, &seen->size, &msec, &mnsec, &csec,
		   &cnsec) == 7) {
		seen->mtime = (struct timespec){ .tv_sec = msec, .tv_nsec = mnsec };
		seen->ctime = (struct timespec){ .tv_sec = csec, .tv_nsec = cnsec };
		seen->valid = 1;
	}
	name = strchr(out, '\n');
	if ((status != HIT && status != NO_ENTRY) || !seen->valid || name == NULL ||
	    !cli_entry_name_ok(name + 1, ctx->job.uid))
		return 0;
	/* As cli_reuse after the command's answer. */
	snprintf(c->entry, sizeof(c->entry), "%s", name + 1);
	if (status == NO_ENTRY) {
		pyxis_stamp("answered_absent");
		pyxis_debug(PLUGIN_NAME ": %s answered absent (evicted) from root's record, without the command",
			    c->entry);
		return 2;
	}
	if (cli_user_path(ctx, c->entry, LOCK_FILE, lock, sizeof(lock)) < 0)
		return 0;
	locked = lock_shared(lock, 0, ctx->job.uid, &c->lock_fd, err, sizeof(err));
	if (locked != 1) {
		/* Evicted meanwhile, or not as it should be: the command decides, as without a record. */
		if (locked < 0)
			pyxis_debug("%s", err);
		return 0;
	}
	pyxis_stamp("answered");
	pyxis_debug(PLUGIN_NAME ": %s answered from root's record, without the command", c->entry);
	return 1;
}

void answers_record(struct plugin_context *ctx, const char *image, const struct answer_seen *seen)
{
	struct question q;
	char out[16];
	int status;

	if (!seen->valid || ask(ctx, image, &q) < 0)
		return;
	q.name = ctx->container.entry;
	q.seen = seen;
	if (!cli_entry_name_ok(q.name, ctx->job.uid))
		return;
	status = run(record_fn, &q, out, sizeof(out));
	pyxis_stamp("recorded");
	if (status != 0)
		pyxis_debug(PLUGIN_NAME ": answers: %s not recorded (%s)", q.name,
			    status == 1   ? "the image changed, or could not be opened again"
			    : status == 2 ? "the image changed in the last second"
					  : "root's record could not be written");
}
