/*
 * The client side of the plugin: srun (local), sbatch and salloc (allocator).
 */
#ifndef PYXIS_CACHE_SRUN_H
#define PYXIS_CACHE_SRUN_H

#include <slurm/spank.h>

int pyxis_srun_init(spank_t sp, int ac, char **av);
int pyxis_srun_post_opt(spank_t sp, int ac, char **av);
int pyxis_alloc_init(spank_t sp, int ac, char **av);
int pyxis_alloc_post_opt(spank_t sp, int ac, char **av);

#endif /* PYXIS_CACHE_SRUN_H */
