/* A demo daemon linked against libdemo: calls into the library once (so
 * the library is certainly mapped), then sleeps forever. Used for
 * demo-allowed, demo-denied and demo-slow. argv[1], if any, names the
 * instance in the log. */
#include <stdio.h>
#include <unistd.h>
#include "demo.h"

#ifndef DAEMON_NAME
#error "build with -DDAEMON_NAME=\"...\""
#endif
#ifndef DAEMON_VERSION
#error "build with -DDAEMON_VERSION=\"x.y\""
#endif

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : DAEMON_NAME;

	printf("%s %s started\n", name, DAEMON_VERSION);
	demo_hello(name);
	for (;;)
		sleep(3600);
}
