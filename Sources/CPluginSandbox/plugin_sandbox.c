#define _GNU_SOURCE
#include "plugin_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int bp_sandbox_set_undumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : errno;
}

/* What bp_sandbox_early did, read by the runner through bp_sandbox_early_result. */
static int early_ran = 0;
static int early_error = 0;
static int early_library = -1;
static int early_switched = 0;
static unsigned early_user = 0;

static int drop_capabilities(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    for (int capability = 0; capability <= 63; capability++) {
        if (prctl(PR_CAPBSET_READ, capability, 0, 0, 0) < 0) break;
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno != EPERM) return errno;
    }
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) return errno;
    return 0;
}

/*
 * Runs before main, while the process has one thread, in every run of the executable; acts only
 * for `plugin-process` (argv[1]). With `--user-id N` it opens the library (the last argument)
 * and switches the process to user and group N; without, a root process drops every capability.
 * Credentials changed here are every thread's: the threads the Swift runtime starts later are
 * created with them. Doing it later, from a thread of a running Swift program, left the main
 * thread root (a review found it and ran a signal handler there).
 */
__attribute__((constructor)) static void bp_sandbox_early(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 3 || !argv || !argv[1] || strcmp(argv[1], "plugin-process") != 0) return;
    early_ran = 1;
    const char *user = NULL;
    for (int index = 2; index < argc; index++) {
        if (!argv[index]) break;
        if (strcmp(argv[index], "--user-id") == 0 && index + 1 < argc) user = argv[index + 1];
        else if (strncmp(argv[index], "--user-id=", 10) == 0) user = argv[index] + 10;
    }
    if (!user) {
        if (geteuid() == 0) early_error = drop_capabilities();
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(user, &end, 10);
    if (errno != 0 || !end || *end != '\0' || value == 0 || value > 4294967294UL) {
        early_error = EINVAL;
        return;
    }
    early_library = open(argv[argc - 1], O_RDONLY | O_CLOEXEC);
    if (early_library < 0) {
        early_error = errno;
        return;
    }
    early_error = bp_sandbox_switch_user((uid_t)value, (gid_t)value);
    if (early_error == 0) {
        early_switched = 1;
        early_user = (unsigned)value;
    }
}

int bp_sandbox_early_result(unsigned *user, int *library) {
    if (!early_ran) return -1;
    if (user) *user = early_switched ? early_user : 0;
    if (library) *library = early_library;
    return early_error;
}

int bp_sandbox_switch_user(uid_t uid, gid_t gid) {
    /* glibc applies each of these to every thread of the process. */
    if (setgroups(0, NULL) != 0) return errno;
    if (setresgid(gid, gid, gid) != 0) return errno;
    if (setresuid(uid, uid, uid) != 0) return errno;
    uid_t real, effective, saved;
    if (getresuid(&real, &effective, &saved) != 0) return errno;
    if (real != uid || effective != uid || saved != uid) return EPERM;
    return 0;
}

#if defined(__x86_64__)
#define BP_NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define BP_NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

enum { BP_MAX_FILTER = 96 };

typedef struct {
    struct sock_filter code[BP_MAX_FILTER];
    unsigned short length;
    int overflow;
} filter_builder;

static void emit(filter_builder *builder, struct sock_filter instruction) {
    if (builder->length >= BP_MAX_FILTER) {
        builder->overflow = 1;
        return;
    }
    builder->code[builder->length++] = instruction;
}

#define LOAD(field) (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(field))
#define JUMP_IF(value, if_true, if_false) (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(value), (if_true), (if_false))
#define RETURN(action) (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)(action))
#define REFUSE RETURN(SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define ALLOW RETURN(SECCOMP_RET_ALLOW)

/* The accumulator holds the system call number: `number` fails with EPERM. */
static void refuse(filter_builder *builder, long number) {
    emit(builder, JUMP_IF(number, 0, 1));
    emit(builder, REFUSE);
}

/* The accumulator holds the system call number: for `number`, returns `matched` when its first
 * argument (a pid, read as the kernel does, as a 32-bit int) is one of `values`, and `otherwise`
 * when it is not; other system calls go on to the next check. */
static void decide_by_first_argument(filter_builder *builder, long number, const uint32_t *values, unsigned char count,
                                     struct sock_filter matched, struct sock_filter otherwise) {
    /* number? no: skip the load, the value checks and both returns. */
    emit(builder, JUMP_IF(number, 0, (unsigned char)(count + 3)));
    emit(builder, LOAD(offsetof(struct seccomp_data, args[0])));
    for (unsigned char index = 0; index < count; index++) {
        /* Jump to `matched`, past the remaining checks and `otherwise`. */
        emit(builder, JUMP_IF(values[index], (unsigned char)(count - index), 0));
    }
    emit(builder, otherwise);
    emit(builder, matched);
}

int bp_sandbox_restrict_system_calls(pid_t server_pid, pid_t server_group, int own_signals_only) {
#ifndef BP_NATIVE_ARCH
    (void)server_pid;
    (void)server_group;
    (void)own_signals_only;
    return ENOSYS;
#else
    filter_builder builder;
    memset(&builder, 0, sizeof builder);
    emit(&builder, LOAD(offsetof(struct seccomp_data, arch)));
    emit(&builder, JUMP_IF(BP_NATIVE_ARCH, 1, 0));
    emit(&builder, RETURN(SECCOMP_RET_KILL_PROCESS));
    emit(&builder, LOAD(offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
    /* The x32 entry points share the architecture value; their numbers have bit 30 set. */
    emit(&builder, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
    emit(&builder, RETURN(SECCOMP_RET_KILL_PROCESS));
#endif
    refuse(&builder, SYS_ptrace);
    refuse(&builder, SYS_process_vm_readv);
    refuse(&builder, SYS_process_vm_writev);
    refuse(&builder, SYS_tkill);
    refuse(&builder, SYS_setsid);
    refuse(&builder, SYS_setpgid);
#ifdef SYS_pidfd_send_signal
    refuse(&builder, SYS_pidfd_send_signal);
#else
    refuse(&builder, 424);
#endif
#ifdef SYS_pidfd_getfd
    refuse(&builder, SYS_pidfd_getfd);
#else
    refuse(&builder, 438);
#endif
    const uint32_t targets[] = {
        (uint32_t)-1,
        (uint32_t)server_pid,
        (uint32_t)-server_pid,
        (uint32_t)-server_group,
    };
    unsigned char count = (unsigned char)(sizeof targets / sizeof targets[0]);
    if (own_signals_only) {
        /* Under the server's user the kernel would let a signal reach the server through any of
         * its thread ids, which a filter cannot list: signals go only to this process and its
         * group (0, its pid, minus its pid: it leads its group). */
        pid_t self = getpid();
        const uint32_t own[] = {0, (uint32_t)self, (uint32_t)-self};
        unsigned char own_count = (unsigned char)(sizeof own / sizeof own[0]);
        decide_by_first_argument(&builder, SYS_kill, own, own_count, ALLOW, REFUSE);
        decide_by_first_argument(&builder, SYS_tgkill, own, own_count, ALLOW, REFUSE);
        decide_by_first_argument(&builder, SYS_rt_sigqueueinfo, own, own_count, ALLOW, REFUSE);
        decide_by_first_argument(&builder, SYS_rt_tgsigqueueinfo, own, own_count, ALLOW, REFUSE);
    } else {
        decide_by_first_argument(&builder, SYS_kill, targets, count, REFUSE, ALLOW);
        decide_by_first_argument(&builder, SYS_tgkill, targets, count, REFUSE, ALLOW);
        decide_by_first_argument(&builder, SYS_rt_sigqueueinfo, targets, count, REFUSE, ALLOW);
        decide_by_first_argument(&builder, SYS_rt_tgsigqueueinfo, targets, count, REFUSE, ALLOW);
    }
    emit(&builder, ALLOW);
    if (builder.overflow) return E2BIG;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    struct sock_fprog program = {.len = builder.length, .filter = builder.code};
    /* TSYNC: every thread of the process gets the filter, not only the calling one. */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) != 0) return errno;
    return 0;
#endif
}
