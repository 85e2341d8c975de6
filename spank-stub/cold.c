/*
 * Cache mode's start in user_init (see cold.h and docs/srun.md, "Cold steps
 * start from a FUSE mount").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "cli.h"
#include "cold.h"
#include "fuse.h"
#include "log.h"

/* The step waits for the unpack, as without FUSE; why it does, said once. */
static int wait_for_unpack(struct plugin_context *ctx, const char *image, const char *why, char *err, size_t errlen)
{
	if (why != NULL)
		pyxis_info(PLUGIN_NAME ": %s: a cold step waits for the unpack", why);
	return cli_reuse(ctx, image, NULL, err, errlen);
}

int cold_start(struct plugin_context *ctx, const char *image, const char *search_path, char *err, size_t errlen)
{
	struct container *c = &ctx->container;
	char daemon_bin[PATH_MAX], why[ERROR_MAX], reason[ERROR_MAX + 32], user_dir[PATH_MAX];
	struct reuse_reply reply;

	if (!ctx->cfg.fuse)
		return wait_for_unpack(ctx, image, NULL, err, errlen);
	if (fuse_available(search_path, daemon_bin, sizeof(daemon_bin), why, sizeof(why)) < 0) {
		snprintf(reason, sizeof(reason), "FUSE unavailable (%s)", why);
		return wait_for_unpack(ctx, image, reason, err, errlen);
	}
	if (cli_reuse(ctx, image, &reply, err, errlen) < 0)
		return -1;
	if (reply.state == ENTRY_READY)
		return 0;
	/* The command judged what the user named: a registry image has no file until it is imported. */
	if (reply.kind == IMAGE_REGISTRY)
		return wait_for_unpack(ctx, image, "a registry image", err, errlen);
	/* First the unpack, which takes longest; a creator already at work is left to it. */
	if (reply.state == ENTRY_ABSENT && cli_start_creator(ctx, image) < 0)
		pyxis_info(PLUGIN_NAME ": couldn't start the unpack of %s in the background: %m", c->enroot_name);
	if (cli_user_path(ctx, NULL, NULL, user_dir, sizeof(user_dir)) < 0)
		return wait_for_unpack(ctx, image, "FUSE: path too long", err, errlen);
	if (fuse_mount_image(daemon_bin, image, user_dir, c->enroot_name, &ctx->job, &c->fuse, why, sizeof(why)) < 0) {
		snprintf(reason, sizeof(reason), "FUSE mount failed (%s)", why);
		return wait_for_unpack(ctx, image, reason, err, errlen);
	}
	pyxis_info(PLUGIN_NAME ": %s is being unpacked: the step starts from a FUSE mount of %s", c->enroot_name, image);
	if (snprintf(c->rootfs, sizeof(c->rootfs), "%s", c->fuse.rootfs) >= (int)sizeof(c->rootfs)) {
		fuse_release(&c->fuse);
		return wait_for_unpack(ctx, image, "FUSE: path too long", err, errlen);
	}
	snprintf(c->enroot_data, sizeof(c->enroot_data), "%s", c->fuse.point);
	snprintf(c->enroot_name, sizeof(c->enroot_name), "root");
	return 0;
}
