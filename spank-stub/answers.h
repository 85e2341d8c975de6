/*
 * Root's record of the command's answers (container_cache_answers): a warm step
 * of a squashfs file is answered without starting the command when the image
 * the job user opens is, to the nanosecond of its ctime, the file the command
 * last named an entry for; a cold step of that file, its entry evicted since,
 * knows the entry's name from it too. See docs/srun.md, "Warm steps without the
 * command".
 */
#ifndef PYXIS_CACHE_ANSWERS_H
#define PYXIS_CACHE_ANSWERS_H

#include <sys/types.h>
#include <time.h>

#include "context.h"

/* <base>/ANSWERS_DIR (layout.gen.h): root's, 0700; one file per (uid, cwd of a relative path, image). */

/* The image's identity as the job user opened it (fstat). */
struct answer_seen {
	int valid;
	unsigned long long dev, ino;
	long long size;
	struct timespec mtime, ctime;
};

/*
 * Before the command: when root's record for image matches what the job user
 * opens now, refresh the entry's last use (as the user), take its LOCK_SH and
 * name ctx->container.entry as cli_reuse does: 1. When it matches but the entry
 * is gone (evicted since), name ctx->container.entry, lock nothing: 2 (*seen is
 * the file; a cold step can start from it without asking the command, whose
 * creator makes the entry again). Otherwise 0 (ask the command), with *seen what
 * the user's open showed (valid == 0 when it failed). Never fails a step: any
 * error is a 0.
 */
int answers_lookup(struct plugin_context *ctx, const char *image, struct answer_seen *seen);

/*
 * After the command named ctx->container.entry ready for image: record it,
 * when the image is still what *seen was before the command, and has not been
 * changed in the last second (a change within one tick of the file system's
 * clock leaves its ctime as it was). Errors are logged at debug level only.
 */
void answers_record(struct plugin_context *ctx, const char *image, const struct answer_seen *seen);

#endif /* PYXIS_CACHE_ANSWERS_H */
