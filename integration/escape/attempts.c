/*
 * attempts: the escape suite's test program (integration/escape.rs). Built static
 * (`gcc -static -O1`) so that it runs in a busybox layer, it tries, by raw system call,
 * what a process breaking out of a container would do, and prints one line per attempt:
 *
 *     ATTEMPT <name> blocked <ERRNO-NAME>
 *     ATTEMPT <name> SUCCEEDED
 *
 * Every attempt is chosen so that its success would be harmless or undone at once (the
 * clock is set to its own value, sysctls are written their current value, reboot only
 * switches Ctrl-Alt-Del off, swapon names a missing file, init_module gets an empty
 * image, kexec_load no segments ...): a failing test means a hole, never a broken host.
 *
 * Usage: attempts [-b MAJOR:MINOR] [-h HOST_ONLY_PATH] [NAME | open:PATH | status]...
 *   no NAME: every attempt. -b: the block device for mknod_block (default 8:0).
 *   -h: a path that exists on the host only (the chroot breakout must not reach it).
 *   open:PATH: open PATH read-write (devices the unit was given).
 *   status: print the Cap*, NoNewPrivs and Seccomp lines of /proc/self/status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timex.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned block_major = 8, block_minor = 0;
static const char *host_only = NULL;

static const char *errname(int e) {
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case ETXTBSY: return "ETXTBSY";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOTTY: return "ENOTTY";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "E%d", e);
		return buf;
	}
	}
}

/* Report one attempt: rc < 0 is a refusal (errno e), anything else a success. */
static void report(const char *name, long rc, int e) {
	if (rc < 0)
		printf("ATTEMPT %s blocked %s\n", name, errname(e));
	else
		printf("ATTEMPT %s SUCCEEDED\n", name);
	fflush(stdout);
}

#define TRY(name, expr)                                                                  \
	do {                                                                             \
		errno = 0;                                                               \
		long rc_ = (long)(expr);                                                 \
		report(name, rc_, errno);                                                \
	} while (0)

static void mkdirs(const char *p) { mkdir(p, 0755); }

/* mount(2) of a filesystem on a fresh directory; undone at once if it worked. */
static void try_mount(const char *name, const char *fstype, const char *data) {
	char dir[64];
	snprintf(dir, sizeof dir, "/tmp/escape-%s", name);
	mkdirs(dir);
	errno = 0;
	int rc = mount(fstype, dir, fstype, 0, data);
	int e = errno;
	if (rc == 0)
		umount2(dir, MNT_DETACH);
	report(name, rc, e);
}

/* Open PATH for writing and write back what it holds (so success changes nothing). */
static void try_write_same(const char *name, const char *path) {
	char buf[4096];
	ssize_t n = 0;
	int r = open(path, O_RDONLY);
	if (r >= 0) {
		n = read(r, buf, sizeof buf);
		close(r);
	}
	errno = 0;
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		report(name, -1, errno);
		return;
	}
	ssize_t w = write(fd, buf, n > 0 ? (size_t)n : 0);
	int e = errno;
	close(fd);
	report(name, w, e);
}

/* A write to a file whose mere open for writing must fail; writes `text` if it opens. */
static void try_write(const char *name, const char *path, const char *text) {
	errno = 0;
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		report(name, -1, errno);
		return;
	}
	ssize_t w = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	report(name, w, e);
}

/* The cgroup v1 release_agent trick: the agent files of the hierarchies under
 * /sys/fs/cgroup (none in a fresh sysfs), else creating a cgroup there at all. */
static void try_release_agent(void) {
	static const char *ctrls[] = {"memory", "cpu", "devices", "pids", "freezer", "blkio",
				      "cpuset", "systemd", "rdma", "net_cls", NULL};
	char path[128];
	for (int i = 0; ctrls[i]; i++) {
		snprintf(path, sizeof path, "/sys/fs/cgroup/%s/release_agent", ctrls[i]);
		if (access(path, F_OK) == 0) {
			try_write_same("cgroup_release_agent", path);
			return;
		}
	}
	TRY("cgroup_release_agent", mkdir("/sys/fs/cgroup/escape", 0755));
}

/* mknod a block device (CAP_MKNOD allows it) and read it: the device cgroup refuses. */
static void try_block_device(void) {
	unlink("/tmp/escape-blk");
	errno = 0;
	if (mknod("/tmp/escape-blk", S_IFBLK | 0600, makedev(block_major, block_minor)) < 0) {
		report("mknod_block", -1, errno);
		return;
	}
	errno = 0;
	int fd = open("/tmp/escape-blk", O_RDONLY);
	int e = errno;
	if (fd >= 0) {
		char buf[512];
		ssize_t n = read(fd, buf, sizeof buf);
		e = errno;
		close(fd);
		report("mknod_block", n, e);
	} else {
		report("mknod_block", -1, e);
	}
	unlink("/tmp/escape-blk");
}

/* The same with /dev/mem (1:1), a character device outside the allowed list. */
static void try_char_device(void) {
	unlink("/tmp/escape-mem");
	errno = 0;
	if (mknod("/tmp/escape-mem", S_IFCHR | 0600, makedev(1, 1)) < 0) {
		report("mknod_mem", -1, errno);
		return;
	}
	errno = 0;
	int fd = open("/tmp/escape-mem", O_RDONLY);
	int e = errno;
	if (fd >= 0)
		close(fd);
	report("mknod_mem", fd, e);
	unlink("/tmp/escape-mem");
}

/* The "shocker" exploit: open_by_handle_at with a handle for inode 2, the root
 * directory of an ext* filesystem, relative to a descriptor in the container. */
static void try_shocker(void) {
	struct {
		unsigned int handle_bytes;
		int handle_type;
		unsigned char f_handle[8];
	} h = {8, 1, {2, 0, 0, 0, 0, 0, 0, 0}};
	int mfd = open("/", O_RDONLY | O_DIRECTORY);
	errno = 0;
	long fd = syscall(SYS_open_by_handle_at, mfd, &h, O_RDONLY);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	close(mfd);
	report("open_by_handle_at", fd, e);

	struct {
		unsigned int handle_bytes;
		int handle_type;
		unsigned char f_handle[128];
	} out = {128, 0, {0}};
	int mount_id;
	TRY("name_to_handle_at",
	    syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &out, &mount_id, 0));
}

/* Run `fn` in a child created with `flags` (raw clone, so that the flags are visible to a
 * seccomp filter); the child exits at once. */
static void try_clone(const char *name, unsigned long flags) {
	errno = 0;
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	int e = errno;
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	report(name, pid, e);
}

struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void try_clone3(const char *name, unsigned long flags) {
	struct clone_args_v0 a;
	memset(&a, 0, sizeof a);
	a.flags = flags;
	a.exit_signal = SIGCHLD;
	errno = 0;
	long pid = syscall(SYS_clone3, &a, sizeof a);
	if (pid == 0)
		_exit(0);
	int e = errno;
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	report(name, pid, e);
}

/* unshare in a child (so that a success does not change this process). */
static void try_unshare(const char *name, int flags) {
	pid_t pid = fork();
	if (pid == 0) {
		int rc = unshare(flags);
		_exit(rc == 0 ? 0 : 100 + errno);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	report(name, code == 0 ? 0 : -1, code - 100);
}

/* The chroot-in-chroot breakout, in a child: chroot into a subdirectory without chdir,
 * walk up from the old cwd, chroot there. It must still be the container's root. */
static void try_chroot_breakout(void) {
	int pipefd[2];
	if (pipe(pipefd) < 0) {
		report("chroot_breakout", -1, errno);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		int verdict = 0; /* 0: escaped; else an errno */
		mkdir("/tmp/escape-chroot", 0755);
		if (chdir("/") < 0 || chroot("/tmp/escape-chroot") < 0) {
			verdict = errno;
		} else {
			for (int i = 0; i < 64; i++)
				if (chdir("..") < 0)
					break;
			if (chroot(".") < 0)
				verdict = errno;
			else if (host_only && access(host_only, F_OK) == 0)
				verdict = 0;
			else if (!host_only && access("/bin/attempts", F_OK) != 0)
				verdict = 0; /* not the container's root any more */
			else
				verdict = ENOENT;
		}
		if (write(pipefd[1], &verdict, sizeof verdict) < 0)
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	int verdict = EIO;
	if (read(pipefd[0], &verdict, sizeof verdict) != sizeof verdict)
		verdict = EIO;
	close(pipefd[0]);
	waitpid(pid, NULL, 0);
	report("chroot_breakout", verdict == 0 ? 0 : -1, verdict);
}

/* The host's kennel binary through the container init's /proc/1/exe (CVE-2019-5736's
 * way in): opened for writing, never written. */
static void try_init_exe(void) {
	errno = 0;
	int fd = open("/proc/1/exe", O_WRONLY);
	int e = errno;
	if (fd >= 0)
		close(fd);
	report("write_init_exe", fd, e);
}

/* A descriptor of the host's: one (of this process, or of the container's PID 1) whose
 * file lives on no filesystem mounted in the container, like the host's /dev/null handed
 * over as stdin. Root inside could fchmod/fchown it, or openat() from a directory:
 * changing its mode to the mode it has is the harmless proof. */
static int container_dev(dev_t dev) {
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int found = 0;
	unsigned maj, min;
	while (f && !found && fgets(line, sizeof line, f))
		if (sscanf(line, "%*s %*s %u:%u", &maj, &min) == 2)
			found = major(dev) == maj && minor(dev) == min;
	if (f)
		fclose(f);
	return found;
}

static void try_host_fds(void) {
	static const char *dirs[] = {"/proc/self/fd", "/proc/1/fd", NULL};
	char path[64];
	int reached = 0, refused = 0;
	for (int d = 0; dirs[d]; d++) {
		for (int fd = 0; fd < 1024; fd++) {
			struct stat st;
			snprintf(path, sizeof path, "%s/%d", dirs[d], fd);
			if (stat(path, &st) < 0)
				continue;
			mode_t t = st.st_mode & S_IFMT;
			if (t != S_IFREG && t != S_IFDIR && t != S_IFCHR && t != S_IFBLK)
				continue;
			if (container_dev(st.st_dev))
				continue;
			errno = 0;
			if (chmod(path, st.st_mode & 07777) == 0) {
				printf("HOST-FD %s: dev %u:%u inode %lu\n", path, major(st.st_dev),
				       minor(st.st_dev), (unsigned long)st.st_ino);
				reached++;
			} else {
				refused = errno;
			}
		}
	}
	if (reached)
		report("host_fd", 0, 0);
	else
		report("host_fd", -1, refused ? refused : ENOENT);
}

static void try_clock(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	TRY("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, &ts));
	struct timeval tv;
	gettimeofday(&tv, NULL);
	TRY("settimeofday", syscall(SYS_settimeofday, &tv, NULL));
	struct timex tx;
	memset(&tx, 0, sizeof tx); /* modes = 0: read only, were it allowed */
	TRY("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
}

static void try_keys(void) {
	TRY("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
	TRY("add_key", syscall(SYS_add_key, "user", "escape", "x", 1, KEY_SPEC_PROCESS_KEYRING));
#ifdef __x86_64__
	/* The same call by its x32 number (0x40000000 | nr), which a filter that only
	 * checks x86_64 numbers would let through: harmless if it ran. */
	TRY("x32_keyctl", syscall(0x40000000 | SYS_keyctl, KEYCTL_GET_KEYRING_ID,
				  KEY_SPEC_SESSION_KEYRING, 0));
#endif
}

static void try_bpf(void) {
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	errno = 0;
	long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	report("bpf", fd, e);
}

static void try_perf(void) {
	struct perf_event_attr pe;
	memset(&pe, 0, sizeof pe);
	pe.type = PERF_TYPE_SOFTWARE;
	pe.size = sizeof pe;
	pe.config = PERF_COUNT_SW_CPU_CLOCK;
	pe.disabled = 1;
	pe.exclude_kernel = 1;
	pe.exclude_hv = 1;
	errno = 0;
	long fd = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	report("perf_event_open", fd, e);
}

static void try_modules(void) {
	/* An empty image: if the call got past the permission checks it would fail on the
	 * image (ENOEXEC / EINVAL) before anything was loaded. */
	static char empty[1];
	TRY("init_module", syscall(SYS_init_module, empty, 0UL, ""));
	int fd = open("/dev/null", O_RDONLY);
	TRY("finit_module", syscall(SYS_finit_module, fd, "", 0));
	close(fd);
	TRY("delete_module", syscall(SYS_delete_module, "escape_no_such_module", O_NONBLOCK));
}

static void try_fsapi(void) {
	errno = 0;
	long fd = syscall(SYS_fsopen, "tmpfs", 0);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	report("fsopen", fd, e);
	errno = 0;
	fd = syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */);
	e = errno;
	if (fd >= 0)
		close((int)fd);
	report("open_tree", fd, e);
}

static void try_setns(void) {
	int fd = open("/proc/1/ns/mnt", O_RDONLY);
	if (fd < 0) {
		report("setns", -1, errno);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int rc = setns(fd, 0);
		_exit(rc == 0 ? 0 : 100 + errno);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	close(fd);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	report("setns", code == 0 ? 0 : -1, code - 100);
}

static void try_pivot_root(void) {
	pid_t pid = fork();
	if (pid == 0) {
		if (chdir("/") < 0)
			_exit(100 + errno);
		int rc = (int)syscall(SYS_pivot_root, ".", ".");
		_exit(rc == 0 ? 0 : 100 + errno);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	report("pivot_root", code == 0 ? 0 : -1, code - 100);
}

static void print_status(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	if (!f) {
		printf("STATUS unreadable %s\n", errname(errno));
		return;
	}
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs:", 11) ||
		    !strncmp(line, "Seccomp:", 8))
			printf("%s", line);
	fclose(f);
	fflush(stdout);
}

static void try_open(const char *path) {
	char name[160];
	snprintf(name, sizeof name, "open:%s", path);
	errno = 0;
	int fd = open(path, O_RDWR);
	int e = errno;
	if (fd >= 0)
		close(fd);
	report(name, fd, e);
}

struct attempt {
	const char *name;
	void (*run)(const char *name);
};

#define SIMPLE(fn, ...)                                                                  \
	static void fn(const char *name) { __VA_ARGS__; }

SIMPLE(a_mount_tmpfs, try_mount(name, "tmpfs", NULL))
SIMPLE(a_mount_proc, try_mount(name, "proc", NULL))
SIMPLE(a_mount_sysfs, try_mount(name, "sysfs", NULL))
SIMPLE(a_mount_cgroup2, try_mount(name, "cgroup2", NULL))
SIMPLE(a_mount_cgroup_v1, try_mount(name, "cgroup", "memory"))
SIMPLE(a_release_agent, (void)name; try_release_agent())
SIMPLE(a_bind_mount, {
	mkdirs("/tmp/escape-bind");
	errno = 0;
	int rc = mount("/", "/tmp/escape-bind", NULL, MS_BIND, NULL);
	int e = errno;
	if (rc == 0)
		umount2("/tmp/escape-bind", MNT_DETACH);
	report(name, rc, e);
})
SIMPLE(a_remount_proc_sys, TRY(name, mount(NULL, "/proc/sys", NULL,
					    MS_REMOUNT | MS_BIND, NULL)))
SIMPLE(a_umount_kcore, TRY(name, umount2("/proc/kcore", MNT_DETACH)))
SIMPLE(a_read_kcore, {
	char buf[16];
	errno = 0;
	int fd = open("/proc/kcore", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
	int e = errno;
	if (fd >= 0)
		close(fd);
	/* Masked: /dev/null reads nothing. */
	report(name, n > 0 ? 0 : -1, n == 0 ? ENODEV : e);
})
SIMPLE(a_sysrq, try_write(name, "/proc/sysrq-trigger", "h"))
SIMPLE(a_proc_sys_hostname, try_write_same(name, "/proc/sys/kernel/hostname"))
SIMPLE(a_proc_sys_panic, try_write_same(name, "/proc/sys/kernel/panic"))
SIMPLE(a_sys_kernel, try_write_same(name, "/sys/kernel/rcu_expedited"))
SIMPLE(a_block, (void)name; try_block_device())
SIMPLE(a_mem, (void)name; try_char_device())
SIMPLE(a_modules, (void)name; try_modules())
SIMPLE(a_kexec, {
	TRY(name, syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL));
	TRY("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0x1UL /* UNLOAD */));
})
SIMPLE(a_reboot, TRY(name, syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
				    LINUX_REBOOT_CMD_CAD_OFF, NULL)))
SIMPLE(a_shocker, (void)name; try_shocker())
SIMPLE(a_bpf, (void)name; try_bpf())
SIMPLE(a_perf, (void)name; try_perf())
SIMPLE(a_keys, (void)name; try_keys())
SIMPLE(a_unshare_user, try_unshare(name, CLONE_NEWUSER))
SIMPLE(a_unshare_mount, try_unshare(name, CLONE_NEWNS))
SIMPLE(a_unshare_net, try_unshare(name, CLONE_NEWNET))
SIMPLE(a_clone_user, try_clone(name, CLONE_NEWUSER))
SIMPLE(a_clone_mount, try_clone(name, CLONE_NEWNS))
SIMPLE(a_clone3_user, try_clone3(name, CLONE_NEWUSER))
SIMPLE(a_setns, (void)name; try_setns())
SIMPLE(a_pivot_root, (void)name; try_pivot_root())
SIMPLE(a_chroot, (void)name; try_chroot_breakout())
SIMPLE(a_clock, (void)name; try_clock())
SIMPLE(a_swap, {
	TRY(name, syscall(SYS_swapon, "/escape-no-such-swapfile", 0));
	TRY("swapoff", syscall(SYS_swapoff, "/escape-no-such-swapfile"));
})
SIMPLE(a_iopl, {
	TRY(name, syscall(SYS_iopl, 3));
	TRY("ioperm", syscall(SYS_ioperm, 0x80UL, 1UL, 1));
})
SIMPLE(a_syslog, TRY(name, syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0)))
SIMPLE(a_userfaultfd, {
	errno = 0;
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	report(name, fd, e);
})
SIMPLE(a_sethostname, {
	char host[256] = {0};
	gethostname(host, sizeof host - 1);
	TRY(name, sethostname(host, strlen(host)));
})
SIMPLE(a_fsapi, (void)name; try_fsapi())
SIMPLE(a_init_exe, (void)name; try_init_exe())
SIMPLE(a_host_fds, (void)name; try_host_fds())

static const struct attempt ATTEMPTS[] = {
	{"mount_tmpfs", a_mount_tmpfs},
	{"mount_proc", a_mount_proc},
	{"mount_sysfs", a_mount_sysfs},
	{"mount_cgroup2", a_mount_cgroup2},
	{"mount_cgroup_v1", a_mount_cgroup_v1},
	{"cgroup_release_agent", a_release_agent},
	{"bind_mount", a_bind_mount},
	{"remount_proc_sys", a_remount_proc_sys},
	{"umount_kcore", a_umount_kcore},
	{"read_kcore", a_read_kcore},
	{"sysrq_trigger", a_sysrq},
	{"proc_sys_hostname", a_proc_sys_hostname},
	{"proc_sys_panic", a_proc_sys_panic},
	{"sys_kernel", a_sys_kernel},
	{"mknod_block", a_block},
	{"mknod_mem", a_mem},
	{"init_module", a_modules},
	{"kexec_load", a_kexec},
	{"reboot", a_reboot},
	{"open_by_handle_at", a_shocker},
	{"bpf", a_bpf},
	{"perf_event_open", a_perf},
	{"keyctl", a_keys},
	{"unshare_user", a_unshare_user},
	{"unshare_mount", a_unshare_mount},
	{"unshare_net", a_unshare_net},
	{"clone_user", a_clone_user},
	{"clone_mount", a_clone_mount},
	{"clone3_user", a_clone3_user},
	{"setns", a_setns},
	{"pivot_root", a_pivot_root},
	{"chroot_breakout", a_chroot},
	{"clock_settime", a_clock},
	{"swapon", a_swap},
	{"iopl", a_iopl},
	{"syslog", a_syslog},
	{"userfaultfd", a_userfaultfd},
	{"sethostname", a_sethostname},
	{"fsopen", a_fsapi},
	{"write_init_exe", a_init_exe},
	{"host_fd", a_host_fds},
};
#define N_ATTEMPTS (sizeof ATTEMPTS / sizeof ATTEMPTS[0])

/* Not an attempt: `ready` sends READY=1 to $NOTIFY_SOCKET (kennel's readiness), so that
 * tests can use this static program where the layer has no `kennel notify`. */
static int send_ready(void) {
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	if (!path || strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "attempts: no usable NOTIFY_SOCKET\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, "READY=1\n", 8, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "attempts: notify %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 2 && !strcmp(argv[1], "ready"))
		return send_ready();
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-b") && i + 1 < argc) {
			if (sscanf(argv[++i], "%u:%u", &block_major, &block_minor) != 2) {
				fprintf(stderr, "attempts: -b MAJOR:MINOR\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "-h") && i + 1 < argc) {
			host_only = argv[++i];
		} else {
			break;
		}
	}
	if (i == argc) {
		for (size_t k = 0; k < N_ATTEMPTS; k++)
			ATTEMPTS[k].run(ATTEMPTS[k].name);
	}
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "status")) {
			print_status();
		} else if (!strncmp(argv[i], "open:", 5)) {
			try_open(argv[i] + 5);
		} else {
			size_t k = 0;
			while (k < N_ATTEMPTS && strcmp(ATTEMPTS[k].name, argv[i]))
				k++;
			if (k == N_ATTEMPTS) {
				fprintf(stderr, "attempts: unknown attempt %s\n", argv[i]);
				return 2;
			}
			ATTEMPTS[k].run(ATTEMPTS[k].name);
		}
	}
	printf("DONE\n");
	return 0;
}
