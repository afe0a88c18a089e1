/* Profiling aid, not run by run.sh: the per-process system calls that
 * restart-stale's auto mode makes, with no user-space work, to tell what the
 * kernel side of its design costs. Run with a load in place:
 *   probe_syscalls               the query floor (open maps, PROCMAP_QUERY, close)
 *   probe_syscalls exe root mnt cgroup comm
 *                                plus any of: readlink exe, stat root, stat ns/mnt,
 *                                read cgroup, read comm
 *   probe_syscalls dirfd ...     the same through one O_PATH fd on /proc/PID
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)

static char name[4112], buf[4096];

static void query(int fd) {
	uint64_t addr = 0;
	for (;;) {
		struct procmap_query q = {.size = sizeof q, .query_flags = 0x04 | 0x10 | 0x20, .query_addr = addr,
		                          .vma_name_size = sizeof name, .vma_name_addr = (uintptr_t)name};
		if (ioctl(fd, PROCMAP_QUERY, &q) < 0)
			return;
		addr = q.vma_end;
	}
}

static void slurp(int at, const char *path) {
	int fd = openat(at, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
}

int main(int argc, char **argv) {
	int use_dirfd = 0, exe = 0, root = 0, mnt = 0, cgroup = 0, comm = 0;
	for (int i = 1; i < argc; i++) {
		use_dirfd |= !strcmp(argv[i], "dirfd");
		exe |= !strcmp(argv[i], "exe");
		root |= !strcmp(argv[i], "root");
		mnt |= !strcmp(argv[i], "mnt");
		cgroup |= !strcmp(argv[i], "cgroup");
		comm |= !strcmp(argv[i], "comm");
	}
	DIR *proc = opendir("/proc");
	struct dirent *e;
	char p[300];
	struct stat st;
	while ((e = readdir(proc))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		int at = AT_FDCWD;
		const char *pre = p;
		if (use_dirfd) {
			snprintf(p, sizeof p, "/proc/%s", e->d_name);
			at = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (at < 0)
				continue;
		}
#define PATH(leaf) (use_dirfd ? (leaf) : (snprintf(p, sizeof p, "/proc/%s/%s", e->d_name, leaf), pre))
		if (exe)
			readlinkat(at, PATH("exe"), name, sizeof name);
		if (root)
			fstatat(at, PATH("root"), &st, 0);
		if (mnt)
			fstatat(at, PATH("ns/mnt"), &st, 0);
		if (cgroup)
			slurp(at, PATH("cgroup"));
		if (comm)
			slurp(at, PATH("comm"));
		int fd = openat(at, PATH("maps"), O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			query(fd);
			close(fd);
		}
		if (use_dirfd)
			close(at);
	}
	closedir(proc);
	return 0;
}
