/* libdemo.so.1: built twice, with DEMO_VERSION "1.0" and "2.0", so the two
 * packages ship files with different content (as a real upgrade does). */
#include <stdio.h>
#include "demo.h"

#ifndef DEMO_VERSION
#error "build with -DDEMO_VERSION=\"x.y\""
#endif

static const char banner[] = "libdemo " DEMO_VERSION;

const char *demo_version(void)
{
	return DEMO_VERSION;
}

void demo_hello(const char *who)
{
	printf("%s: using %s\n", who, banner);
	fflush(stdout);
}
