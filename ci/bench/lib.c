/* A tiny shared library: the benchmark copies it to K names and replaces
 * every copy after the holders have mapped it. */
int restart_stale_bench_value(void) { return 42; }
