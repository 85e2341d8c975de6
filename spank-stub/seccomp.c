/*
 * The fake-ids seccomp filter (seccomp.h): pyxis's and enroot's behaviour, a program of
 * our own. The syscall numbers are the build's, so the filter fakes calls only when the
 * call's audit architecture is the one the plugin was built for; a build for an
 * architecture whose audit value is not known here does not compile (a filter that
 * compared the wrong numbers would fake or miss calls silently).
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "common.h"
#include "seccomp.h"

#ifndef AUDIT_ARCH_AARCH64
#define AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
#endif
#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif

/* setfsuid's argument is read as the low 32 bits of args[0]: little-endian only. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp.c: big-endian architectures are not supported (the setfsuid check reads args[0]'s low word)"
#endif

/*
 * x32 calls on x86_64 carry AUDIT_ARCH_X86_64 and a number with __X32_SYSCALL_BIT set:
 * they match no number below and run as usual.
 */
#if defined(__x86_64__) && !defined(__ILP32__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__powerpc64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#else
#error "seccomp.c: no audit architecture known for this build (x86_64, aarch64 and ppc64le are)"
#endif

/* Calls that return 0 without doing anything. aarch64 has no chown/lchown: only fchownat. */
static const uint32_t faked[] = {
#ifdef SYS_chown
	SYS_chown,
#endif
#ifdef SYS_lchown
	SYS_lchown,
#endif
	SYS_fchown,   SYS_fchownat,  SYS_setuid,    SYS_setgid,    SYS_setreuid,
	SYS_setregid, SYS_setresuid, SYS_setresgid, SYS_setgroups,
};

#define NFAKED (sizeof(faked) / sizeof(faked[0]))
/* LD arch, JEQ arch, LD nr, NFAKED x JEQ, JEQ setfsuid, JEQ setfsgid, LD arg0, JEQ -1, RET allow, RET 0 */
#define NPROG (NFAKED + 9)

int seccomp_fake_ids(char *err, size_t errlen)
{
	struct sock_filter prog[NPROG];
	struct sock_fprog fprog = { .len = NPROG, .filter = prog };
	const size_t allow = NPROG - 2, fake = NPROG - 1;
	size_t n = 0, i;
	int rc = 0;

/* Append an instruction; TO(i) is a jump from the current one to instruction i. */
#define ADD(insn) (prog[n] = (struct sock_filter)insn, ++n)
#define TO(target) ((uint8_t)((target) - (n + 1)))
	ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 0, TO(allow)));
	ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
	for (i = 0; i < NFAKED; ++i)
		ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, faked[i], TO(fake), 0));
	/* setfsuid/setfsgid: faked unless the argument is -1 (which asks for the current id). */
	ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setfsuid, 1, 0));
	ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setfsgid, 0, TO(allow)));
	ADD(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
	ADD(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UINT32_MAX, TO(allow), TO(fake)));
	ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	ADD(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0));
#undef TO
#undef ADD

	/*
	 * The task holds CAP_SYS_ADMIN in the container's user namespace, so no no_new_privs
	 * is needed. Kernels before 4.17 know no SPEC_ALLOW (EINVAL): without it.
	 */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &fprog) < 0 &&
	    (errno != EINVAL || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)) {
		snprintf(err, errlen, PLUGIN_NAME ": seccomp filter failed: %m");
		rc = -1;
	}
	return rc;
}
