/* demo-unrelated: does not link libdemo, so a libdemo upgrade leaves it
 * untouched; restart-stale must not restart it. */
#include <stdio.h>
#include <unistd.h>

#ifndef DAEMON_VERSION
#error "build with -DDAEMON_VERSION=\"x.y\""
#endif

int main(void)
{
	printf("demo-unrelated %s started\n", DAEMON_VERSION);
	fflush(stdout);
	for (;;)
		sleep(3600);
}
