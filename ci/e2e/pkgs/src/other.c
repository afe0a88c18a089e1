/* libother-demo.so: a small library that demo-otherdel loads from a
 * private copy it then deletes. */
#include <stdio.h>

int other_demo_hello(void)
{
	printf("libother-demo loaded\n");
	fflush(stdout);
	return 42;
}
