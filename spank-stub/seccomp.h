#ifndef PYXIS_CACHE_SECCOMP_H
#define PYXIS_CACHE_SECCOMP_H

#include <stddef.h>

/*
 * In the task, as the job user, inside the container's user namespace (task_init), for a
 * job whose user is not root, as pyxis does: a seccomp filter under which the chown
 * family and the setuid/setgid/setgroups family return success without doing anything
 * (setfsuid/setfsgid too, except the query with -1), so that package managers (apt,
 * dpkg, yum) work in a writable container, notably with --container-remap-root: the user
 * namespace maps one uid, and the calls that would give files or the process another one
 * fail there. Calls of another ABI than the plugin's (x86 or x32 on x86_64, aarch32 on
 * aarch64) run as usual, as in pyxis.
 */
int seccomp_fake_ids(char *err, size_t errlen);

#endif
