/*
 * Cache mode's start in user_init (see cold.h and docs/srun.md, "Cold steps
 * start from a FUSE mount").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "answers.h"
#include "args.h"
#include "cli.h"
#include "cold.h"
#include "fuse.h"
#include "log.h"
#include "mounter.h"

/*
 * cli_reuse --no-wait, unless root's record answers first (answers.c): a step
 * of a squashfs file whose identity is what it was when the command last named
 * its entry makes no call of the command. Warm, it runs on the entry; its entry
 * evicted since, it is a cold step of that file (its creator, the command,
 * judges the file again as it unpacks). After an answer of the command that
 * found the entry of a file (the command judges what the user named) ready, the
 * record is written (or refreshed).
 */
static int reuse_entry(struct plugin_context *ctx, const char *image, struct reuse_reply *reply, char *err,
		       size_t errlen)
{
	struct answer_seen seen = { 0 };
	int answered = ctx->cfg.answers ? answers_lookup(ctx, image, &seen) : 0;

	if (answered > 0) {
		reply->state = answered == 1 ? ENTRY_READY : ENTRY_ABSENT;
		reply->kind = IMAGE_FILE;
		reply->file = (struct file_id){ .known = answered == 2, .dev = seen.dev, .ino = seen.ino };
		return 0;
	}
	if (cli_reuse(ctx, image, reply, err, errlen) < 0)
		return -1;
	if (ctx->cfg.answers && reply->state == ENTRY_READY && reply->kind == IMAGE_FILE)
		answers_record(ctx, image, &seen);
	return 0;
}

/* The step waits for the unpack, as without FUSE; why it does, said once. */
static int wait_for_unpack(struct plugin_context *ctx, const char *image, const char *why, char *err, size_t errlen)
{
	if (why != NULL)
		pyxis_info(PLUGIN_NAME ": %s: a cold step waits for the unpack", why);
	return cli_reuse(ctx, image, NULL, err, errlen);
}

/*
 * The entry, ready and locked: 0 (cold_start lays the step's layer over it); or a
 * cold step's FUSE mount, what the step runs in: 1.
 */
static int start_entry(struct plugin_context *ctx, const char *image, const char *search_path, char *err,
		       size_t errlen)
{
	struct container *c = &ctx->container;
	char daemon_bin[PATH_MAX], why[ERROR_MAX], reason[ERROR_MAX + 32];
	struct reuse_reply reply;
	int mounted;

	/* Asked first whatever comes next: a warm step's answer, and what the user named. */
	if (reuse_entry(ctx, image, &reply, err, errlen) < 0)
		return -1;
	if (reply.state == ENTRY_READY)
		return 0;
	if (!ctx->cfg.fuse)
		return wait_for_unpack(ctx, image, NULL, err, errlen);
	/* A registry image has no file until it is imported. */
	if (reply.kind == IMAGE_REGISTRY || !reply.file.known)
		return wait_for_unpack(ctx, image, "a registry image", err, errlen);
	if (fuse_available(search_path, daemon_bin, sizeof(daemon_bin), why, sizeof(why)) < 0) {
		snprintf(reason, sizeof(reason), "FUSE unavailable (%s)", why);
		return wait_for_unpack(ctx, image, reason, err, errlen);
	}
	/* The daemon would read through a server the user runs (the unpack's reads are bounded: child.h). */
	if (fuse_user_mounted(&reply.file, ctx->job.uid))
		return wait_for_unpack(ctx, image, "the image is on a FUSE filesystem of the user's own", err, errlen);
	mounted = fuse_mount_image(daemon_bin, image, &reply.file, ctx->user_dir, c->entry, &ctx->job, &c->fuse, why,
				   sizeof(why));
	/*
	 * Another file put in the image's name since the command identified it: the step does
	 * not run it (waiting for the unpack would identify that other file, and run it).
	 */
	if (mounted == FUSE_IMAGE_REPLACED) {
		snprintf(err, errlen, PLUGIN_NAME ": %s: %s", image, why);
		return -1;
	}
	/* Nor does a cancelled step wait for the unpack. */
	if (mounted == FUSE_CANCELLED) {
		snprintf(err, errlen, PLUGIN_NAME ": %s", why);
		return -1;
	}
	if (mounted < 0) {
		snprintf(reason, sizeof(reason), "FUSE mount failed (%s)", why);
		return wait_for_unpack(ctx, image, reason, err, errlen);
	}
	if (step_root_mount(&c->root, &c->fuse, why, sizeof(why)) < 0) {
		fuse_release(&c->fuse);
		return wait_for_unpack(ctx, image, "FUSE: path too long", err, errlen);
	}
	/*
	 * The unpack (a creator already at work is left to it) starts once the runtime has
	 * started (cold_start_creator): the creator's start would compete with the runtime's
	 * for the node's CPUs, and the step waits only for the runtime.
	 */
	if (reply.state == ENTRY_ABSENT)
		c->creator_image = image;
	pyxis_info(PLUGIN_NAME ": %s is being unpacked: the step starts from a FUSE mount of %s", c->entry, image);
	return 1;
}

/*
 * A warm step's own layer over its entry (mounter.c): the step writes there, never
 * in the entry. Where it cannot be made (no overlay in a user namespace: kernels
 * before 5.11), a read-only step runs on the entry itself, as before it existed
 * (the runtimes' mount points and enroot's files are then made in the entry), and
 * a writable one fails.
 */
static int warm_layer(struct plugin_context *ctx, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char lower[PATH_MAX], why[ERROR_MAX];
	int layered;

	if (cli_user_path(ctx, c->entry, NULL, lower, sizeof(lower)) < 0) {
		snprintf(err, errlen, PLUGIN_NAME ": container_cache_data_path: path too long");
		return -1;
	}
	layered = layer_mount(lower, ctx->user_dir, c->entry, &ctx->job, &c->fuse, why, sizeof(why));
	if (layered == 0) {
		if (step_root_mount(&c->root, &c->fuse, err, errlen) == 0)
			return 0;
		fuse_release(&c->fuse);
		return -1;
	}
	if (layered == FUSE_CANCELLED) {
		snprintf(err, errlen, PLUGIN_NAME ": %s", why);
		return -1;
	}
	if (container_args.writable == 1) {
		snprintf(err, errlen, PLUGIN_NAME ": --container-writable: the step's layer over %s failed (%s)",
			 c->entry, why);
		return -1;
	}
	pyxis_info(PLUGIN_NAME ": the step's layer over %s failed (%s): the step runs on the entry itself",
		   c->entry, why);
	return step_root_entry(&c->root, ctx->user_dir, c->entry, err, errlen);
}

int cold_start(struct plugin_context *ctx, const char *image, const char *search_path, char *err, size_t errlen)
{
	int mounted;

	mounter_set_layer_size(ctx->cfg.layer_size);
	mounted = start_entry(ctx, image, search_path, err, errlen);
	if (mounted < 0)
		return -1;
	return mounted ? 0 : warm_layer(ctx, err, errlen);
}

void cold_start_creator(struct plugin_context *ctx)
{
	const char *image = ctx->container.creator_image;

	ctx->container.creator_image = NULL;
	if (image != NULL && cli_start_creator(ctx, image) < 0)
		pyxis_info(PLUGIN_NAME ": couldn't start the unpack of %s in the background: %m", image);
}
