/*
 * config-check KEY=VALUE...: config.c on its own, for the table of
 * configuration cases (tests/config-cases.ts). Prints what it parsed, or the
 * message the stub would fail the step with; exit 0 or 1.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "config.h"

int main(int argc, char **argv)
{
	struct plugin_config cfg;
	char err[ERROR_MAX];

	if (pyxis_config_parse(&cfg, argc - 1, argv + 1, err, sizeof(err)) < 0) {
		printf("%s\n", err);
		return 1;
	}
	printf("ok data_path=%s gc_high=%d gc_low=%d runtime=%s cli=%s registry_interval=%d fuse=%s", cfg.data_path,
	       cfg.gc_high, cfg.gc_low, pyxis_config_runtime_name(cfg.runtime), cfg.cli, cfg.registry_interval,
	       cfg.fuse ? "yes" : "no");
	/* pyxis's own keys */
	printf(" | runtime_path=%s execute_entrypoint=%s container_scope=%s sbatch_support=%s use_enroot_load=%s "
	       "use_squashfuse=%s",
	       cfg.pyxis.runtime_path, cfg.pyxis.execute_entrypoint ? "yes" : "no",
	       pyxis_config_scope_name(cfg.pyxis.container_scope), cfg.pyxis.sbatch_support ? "yes" : "no",
	       cfg.pyxis.use_enroot_load ? "yes" : "no", cfg.pyxis.use_squashfuse ? "yes" : "no");
	if (cfg.user_limit > 0)
		printf(" user_limit=%d", cfg.user_limit);
	if (strcmp(cfg.layer_size, "1g") != 0)
		printf(" layer_size=%s", cfg.layer_size);
	if (!cfg.answers)
		printf(" answers=no");
	printf("\n");
	return 0;
}
