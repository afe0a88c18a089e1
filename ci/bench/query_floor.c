/* The PROCMAP_QUERY floor: for every process, open /proc/PID/maps and ask
 * the kernel (Linux 6.11+) for each executable file-backed VMA with its
 * path, as restart-stale's auto mode does, and throw the answers away.
 * Nothing that uses the ioctl this way can be faster. Exits 3 when the
 * kernel lacks the ioctl. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* struct procmap_query from linux/fs.h (6.11); spelled out because the
 * build machine's headers may be older than the running kernel. */
struct procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#define PROCMAP_QUERY_VMA_EXECUTABLE 0x04
#define PROCMAP_QUERY_COVERING_OR_NEXT_VMA 0x10
#define PROCMAP_QUERY_FILE_BACKED_VMA 0x20

static char name[4096 + 16];

/* Returns the number of VMAs, or -1 when the ioctl is missing. */
static long query(int fd) {
	long n = 0;
	unsigned long long addr = 0;
	for (;;) {
		struct procmap_query q;
		memset(&q, 0, sizeof q);
		q.size = sizeof q;
		q.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_FILE_BACKED_VMA |
		                PROCMAP_QUERY_VMA_EXECUTABLE;
		q.query_addr = addr;
		q.vma_name_size = sizeof name;
		q.vma_name_addr = (unsigned long long)(unsigned long)name;
		if (ioctl(fd, PROCMAP_QUERY, &q) < 0)
			return (errno == ENOTTY || errno == EINVAL) && addr == 0 ? -1 : n;
		n++;
		addr = q.vma_end;
	}
}

int main(void) {
	DIR *proc = opendir("/proc");
	if (!proc) {
		perror("query_floor: /proc");
		return 1;
	}
	unsigned long files = 0, vmas = 0;
	struct dirent *e;
	char path[300];
	while ((e = readdir(proc))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/maps", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		long n = query(fd);
		close(fd);
		if (n < 0) {
			fprintf(stderr, "query_floor: no PROCMAP_QUERY on this kernel\n");
			return 3;
		}
		vmas += n;
		files++;
	}
	closedir(proc);
	printf("%lu maps files, %lu executable file-backed VMAs\n", files, vmas);
	return 0;
}
