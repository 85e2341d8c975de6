/*
 * The slurmstepd (remote) side of the plugin.
 */
#ifndef PYXIS_CACHE_SLURMSTEPD_H
#define PYXIS_CACHE_SLURMSTEPD_H

#include <slurm/spank.h>

int pyxis_slurmstepd_init(spank_t sp, int ac, char **av);
int pyxis_slurmstepd_post_opt(spank_t sp, int ac, char **av);
int pyxis_slurmstepd_user_init(spank_t sp, int ac, char **av);
int pyxis_slurmstepd_task_init_privileged(spank_t sp, int ac, char **av);
int pyxis_slurmstepd_task_init(spank_t sp, int ac, char **av);
int pyxis_slurmstepd_task_exit(spank_t sp, int ac, char **av);
int pyxis_slurmstepd_exit(spank_t sp, int ac, char **av);

#endif /* PYXIS_CACHE_SLURMSTEPD_H */
