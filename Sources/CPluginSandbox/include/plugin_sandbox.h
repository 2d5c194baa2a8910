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
 * Installs a system call filter on every thread of the calling process (and all it starts):
 *  - ptrace, process_vm_readv/writev, pidfd_getfd, pidfd_send_signal and tkill fail with EPERM;
 *  - kill, tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo fail with EPERM when aimed at every
 *    process (-1), at `server_pid` or at the process groups `server_pid` and `server_group`;
 *  - setsid and setpgid fail with EPERM, so that everything the plugin starts stays in the
 *    plugin process's group, which the server ends as a whole;
 *  - a system call of another architecture (32-bit entry on x86-64) ends the process.
 * Sets no_new_privs first (required without CAP_SYS_ADMIN).
 */
int bp_sandbox_restrict_system_calls(pid_t server_pid, pid_t server_group);

#endif
