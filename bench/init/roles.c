/* The workloads the inits run: this same binary, entered with a role argument. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void reply(int sig)
{
	(void)sig;
	int e = errno;
	ssize_t r = write(1, "s", 1);
	(void)r;
	errno = e;
}

/* Answers every SIGUSR1 with one byte on stdout, from the handler itself, so the harness
 * times kill() to the handler running. "R" first says the handler is in place. */
int role_sigreply(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = reply;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGTERM, SIG_DFL);
	if (write(1, "R", 1) != 1)
		return 1;
	for (;;)
		pause();
}

/* One orphan: counted, blocked on the release pipe (stdin) until the harness closes it. */
static void orphan(struct storm_shm *s)
{
	__atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
	/* poll, not read: read() would make 20,000 woken orphans queue on the pipe's mutex one
	 * by one; poll lets them all run and exit at once. */
	struct pollfd p = { 0, POLLIN, 0 };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	__atomic_add_fetch(&s->exited, 1, __ATOMIC_SEQ_CST);
	_exit(0);
}

#define BATCH 200

/* Makes n orphans: short-lived spawners, each forking up to BATCH orphans and exiting, so the
 * orphans are reparented to PID 1 at once (a double fork, with fewer forks to wait for). When
 * the harness closes the release pipe they all exit together and the init has to reap the
 * lot. The maker itself stays until a signal ends it, so the init does not start its shutdown
 * during the storm. */
int role_storm(int n, const char *shm_path)
{
	int fd = open(shm_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 1;
	struct storm_shm *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (s == MAP_FAILED)
		return 1;
	signal(SIGTERM, SIG_DFL);
	for (int i = 0; i < n && !s->failed; i += BATCH) {
		int k = n - i < BATCH ? n - i : BATCH;
		pid_t spawner = fork();
		if (spawner < 0) {
			__atomic_store_n(&s->failed, errno, __ATOMIC_SEQ_CST);
			break;
		}
		if (spawner == 0) {
			for (int j = 0; j < k; j++) {
				pid_t pid = fork();
				if (pid == 0)
					orphan(s);
				if (pid < 0) {
					__atomic_store_n(&s->failed, errno, __ATOMIC_SEQ_CST);
					break;
				}
			}
			_exit(0);
		}
		while (waitpid(spawner, NULL, 0) < 0 && errno == EINTR)
			;
	}
	__atomic_store_n(&s->made, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}
