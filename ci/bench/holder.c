/* Benchmark load: dlopen() every library named on the command line, then
 * fork N-1 children (N = argv[1]) that inherit those mappings, and sleep.
 *
 * Forking after dlopen() gives N processes with identical maps much faster
 * than N exec()s. Children die with the parent (PR_SET_PDEATHSIG), and the
 * parent prints "ready" once all of them exist; killing the process group
 * ends them all. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
	(void)sig;
	kill(0, SIGKILL); /* the whole process group, ourselves included */
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: holder N LIB...\n");
		return 2;
	}
	long n = strtol(argv[1], NULL, 10);
	for (int i = 2; i < argc; i++) {
		if (!dlopen(argv[i], RTLD_NOW | RTLD_LOCAL)) {
			fprintf(stderr, "holder: %s\n", dlerror());
			return 1;
		}
	}
	pid_t parent = getpid();
	for (long i = 1; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("holder: fork");
			kill(0, SIGKILL);
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
