/*
 * The client of the pyxis-cache command (pyxis's importer.c): run it, read
 * what it prints, and lock what it names.
 */
#ifndef PYXIS_CACHE_CLI_H
#define PYXIS_CACHE_CLI_H

#include <stddef.h>

#include "child.h"
#include "context.h"

/* Fill ctx->user_dir, "<base>/<uid>", once the job's uid is known: 0, or -1 with one line in err. */
int cli_user_dir(struct plugin_context *ctx, char *err, size_t errlen);

/* "<user_dir>/<name>[/<file>]", or -1 when it does not fit. */
int cli_user_path(const struct plugin_context *ctx, const char *name, const char *file, char *buf, size_t len);

/* As root: "<cli> prepare" creates or repairs <base>/<uid> (skipped when it is right). */
int cli_prepare(const struct plugin_context *ctx, char *err, size_t errlen);

/* What "reuse --no-wait" says: the entry's state, and what the user named (the command judges). */
struct reuse_reply {
	enum entry_state state;
	enum image_kind kind;
	struct file_id file; /* a file's device and inode, as the command identified it */
};

/*
 * Cache mode, as the job user: "<cli> reuse" for the image names its entry
 * (ctx->container.entry), then hold LOCK_SH on the entry's lock
 * (ctx->container.lock_fd). With reply, "reuse --no-wait": a cold entry is
 * neither created nor waited for; *reply says what it is (and, for a squashfs
 * file, the file identified), and only ENTRY_READY locks it (the entry is
 * named either way). What the step runs in is its caller's choice (cold.c).
 */
int cli_reuse(struct plugin_context *ctx, const char *image, struct reuse_reply *reply, char *err, size_t errlen);

/*
 * "<cli> reuse --unless-busy" as the job user, detached from the step at low
 * CPU and I/O priority (child_spawn_detached): the entry's background creator.
 */
int cli_start_creator(const struct plugin_context *ctx, const char *image);

/*
 * As the job user: "<cli> step" makes a directory of this step's own, then
 * hold LOCK_SH on it (ctx->container.step_name, step_dir). With an image (no
 * cache mode) the image is unpacked into its rootfs, what the step runs in
 * (ctx->container.root); without (enroot in cache mode) it is empty, for
 * enroot's own paths.
 */
int cli_step(struct plugin_context *ctx, const char *image, char *err, size_t errlen);

/* Release what cli_reuse or cli_step holds; "<cli> release" removes the step's directory. */
void cli_release(struct plugin_context *ctx);

/* "<cli> <sub> args..." as user (NULL: root) in /: 0, or -1 with one line in err (named.c's epilog). */
int cli_run_as(const struct plugin_context *ctx, const char *sub, const char *const *args, int nargs,
	       const struct pyxis_job *user, struct child_output *output, char *err, size_t errlen);

/* 1 when name is an entry's name as the command makes them for uid: pyxis_cache_u<uid>_<HASH_HEX hex digits>. */
int cli_entry_name_ok(const char *name, uid_t uid);

#endif /* PYXIS_CACHE_CLI_H */
