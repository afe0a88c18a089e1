/* Public interface of libdemo.so.1, the library whose upgrade the e2e
 * tests use to make running daemons stale. */
#ifndef DEMO_H
#define DEMO_H
const char *demo_version(void);
void demo_hello(const char *who);
#endif
