/* demo-otherdel: does not link libdemo. At start it copies
 * /usr/lib/<multiarch>/libother-demo.so to /var/lib/demo-otherdel/copy.so,
 * dlopen()s the copy and unlinks it. It then maps a deleted file that no
 * apt transaction touched: restart-stale must not blame a package upgrade
 * for it. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef OTHER_LIB
#error "build with -DOTHER_LIB=\"/usr/lib/.../libother-demo.so\""
#endif
#ifndef DAEMON_VERSION
#error "build with -DDAEMON_VERSION=\"x.y\""
#endif

#define STATE_DIR "/var/lib/demo-otherdel"
#define COPY STATE_DIR "/copy.so"

static void die(const char *what)
{
	fprintf(stderr, "demo-otherdel: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out;

	if (in < 0)
		die(from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		die(to);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die("write");
	if (n < 0)
		die("read");
	if (close(out) < 0)
		die("close");
	close(in);
}

int main(void)
{
	void *h;
	int (*hello)(void);

	if (mkdir(STATE_DIR, 0755) < 0 && errno != EEXIST)
		die(STATE_DIR);
	copy_file(OTHER_LIB, COPY);
	h = dlopen(COPY, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "demo-otherdel: dlopen: %s\n", dlerror());
		return 1;
	}
	hello = (int (*)(void))dlsym(h, "other_demo_hello");
	if (!hello) {
		fprintf(stderr, "demo-otherdel: dlsym: %s\n", dlerror());
		return 1;
	}
	if (unlink(COPY) < 0)
		die("unlink");
	printf("demo-otherdel %s started, other lib says %d\n", DAEMON_VERSION, hello());
	fflush(stdout);
	for (;;)
		sleep(3600);
}
