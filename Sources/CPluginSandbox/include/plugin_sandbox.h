/*
 * The plugin process's sandbox: what a plugin process does to itself before it opens a library
 * it does not trust, and what the server does to itself so that its plugin processes cannot read
 * it. Linux only; each function returns 0 or an errno value and never exits.
 *
 * See docs/plugins.md, "Isolation", for what each step protects against.
 */
#ifndef BUDPIPELINE_PLUGIN_SANDBOX_H
#define BUDPIPELINE_PLUGIN_SANDBOX_H

#include <sys/types.h>

/*
 * Marks the calling process non-dumpable: /proc/<pid>/environ, mem, fd and maps of it are then
 * closed to other processes of the same user that lack CAP_SYS_PTRACE, and no core file is
 * written. The server calls it before it starts its first plugin process.
 */
int bp_sandbox_set_undumpable(void);

/*
 * Makes every thread of the calling process its own user and group (`uid`, `gid`, no
 * supplementary groups). Needs CAP_SETUID and CAP_SETGID; afterwards the process holds no
 * capability.
 */
int bp_sandbox_switch_user(uid_t uid, gid_t gid);

/*
 * What the plugin-process runner did to itself before main, while it had one thread (a
 * constructor; only for `budpipeline plugin-process`): with `--user-id N`, opened the library
 * (its descriptor in `library`) and switched to user N (`user`, 0 if not); without, as root,
 * dropped every capability. Returns 0, an errno value for the step that failed, or -1 when the
 * process is not a plugin-process runner.
 */
int bp_sandbox_early_result(unsigned *user, int *library);

/*
 * Installs a system call filter on every thread of the calling process (and all it starts):
 *  - ptrace, process_vm_readv/writev, pidfd_getfd, pidfd_send_signal and tkill fail with EPERM;
 *  - kill, tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo fail with EPERM when aimed at every
 *    process (-1), at `server_pid` or at the process groups `server_pid` and `server_group`;
 *    with `own_signals_only` (a process that shares the server's user), unless aimed at the
 *    process itself or its own group;
 *  - setsid and setpgid fail with EPERM, so that everything the plugin starts stays in the
 *    plugin process's group, which the server ends as a whole;
 *  - a system call of another architecture (32-bit entry on x86-64) ends the process.
 * Sets no_new_privs first (required without CAP_SYS_ADMIN).
 */
int bp_sandbox_restrict_system_calls(pid_t server_pid, pid_t server_group, int own_signals_only);

#endif
