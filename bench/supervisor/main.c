/* supbench [OPTIONS]: our supervisor against crun/runc and against s6, runit and supervisord;
 * prints one table per benchmark.
 *   --ours PATH (build/supervisor)  --init PATH (build/init)  --rootfs DIR (build/rootfs)
 *   --containers N (100)   starts per runtime, sequential and two at a time
 *   --services LIST (100,1000)  --idle SECS (10)  --kills N (5)
 *   --only LIST            containers,bridge,services (default all)
 *   --podman-runs N (20)   1c: podman's starts per network mode (ours: --containers)
 *   --no-pid-only          skip the ours-nohard, `namespaces = pid` and `namespaces =` columns
 *   --no-bare              skip the bare floor
 *   --no-userns            skip the user_namespace = auto columns of the container starts
 *   --quick                --containers 20 --services 50 --idle 2 --kills 2
 *   --log FILE             output of every supervisor and runtime (default /dev/null)
 * The whole run happens in a private mount namespace where /sys/fs/cgroup/unified is unmounted
 * and covered by an empty tmpfs (crun 1.8.1 refuses this machine's hybrid layout otherwise). */
#include "supbench.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static struct sb_opts opts;

static void on_signal(int sig)
{
	sb_cleanup();
	_exit(128 + sig);
}

static void usage(void)
{
	fprintf(stderr, "usage: supbench [--ours P] [--init P] [--rootfs DIR] [--containers N]\n"
			"       [--services N,N] [--idle SECS] [--kills N] [--only containers,bridge,services]\n"
			"       [--podman-runs N]\n"
			"       [--no-pid-only] [--no-bare] [--no-userns] [--quick] [--log FILE]\n");
	exit(2);
}

static int num(const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || (*end != '\0' && *end != ',') || v < min || v > max)
		usage();
	return (int)v;
}

static const char *absolute(const char *p)
{
	static char bufs[3][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 3];
	if (!realpath(p, b)) {
		fprintf(stderr, "supbench: %s: %s\n", p, strerror(errno));
		exit(1);
	}
	return b;
}

static void parse(int argc, char **argv, struct sb_opts *o, const char **log)
{
	o->ours = "build/supervisor";
	o->init = "build/init";
	o->rootfs = "build/rootfs";
	o->crun = "/usr/bin/crun";
	o->runc = "/usr/sbin/runc";
	o->s6svscan = "/usr/bin/s6-svscan";
	o->runsvdir = "/usr/bin/runsvdir";
	o->supervisord = "/usr/bin/supervisord";
	o->containers = 100;
	o->nsizes = 2;
	o->sizes[0] = 100;
	o->sizes[1] = 1000;
	o->idle_s = 10;
	o->kills = 5;
	o->podman_runs = 20;
	o->run_containers = o->run_bridge = o->run_services = o->pid_only = o->bare = o->userns = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--quick")) {
			o->containers = 20;
			o->nsizes = 1;
			o->sizes[0] = 50;
			o->idle_s = 2;
			o->kills = 2;
			o->podman_runs = 5;
			continue;
		}
		if (!strcmp(a, "--no-pid-only")) {
			o->pid_only = false;
			continue;
		}
		if (!strcmp(a, "--no-userns")) {
			o->userns = false;
			continue;
		}
		if (!strcmp(a, "--no-bare")) {
			o->bare = false;
			continue;
		}
		const char *v = i + 1 < argc ? argv[++i] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--ours"))
			o->ours = v;
		else if (!strcmp(a, "--init"))
			o->init = v;
		else if (!strcmp(a, "--rootfs"))
			o->rootfs = v;
		else if (!strcmp(a, "--containers"))
			o->containers = num(v, 1, 100000);
		else if (!strcmp(a, "--idle"))
			o->idle_s = num(v, 1, 600);
		else if (!strcmp(a, "--podman-runs"))
			o->podman_runs = num(v, 1, 1000);
		else if (!strcmp(a, "--kills"))
			o->kills = num(v, 1, 32);
		else if (!strcmp(a, "--log"))
			*log = v;
		else if (!strcmp(a, "--services")) {
			o->nsizes = 0;
			for (const char *p = v; p && *p && o->nsizes < 4; p = strchr(p, ','), p = p ? p + 1 : NULL)
				o->sizes[o->nsizes++] = num(p, 1, 4000);
		} else if (!strcmp(a, "--only")) {
			o->run_containers = strstr(v, "container") != NULL;
			o->run_bridge = strstr(v, "bridge") != NULL;
			o->run_services = strstr(v, "service") != NULL;
		} else
			usage();
	}
}

/* crun 1.8.1 sees the cgroup2 mount at /sys/fs/cgroup/unified (which lists hugetlb) and
 * refuses "hybrid mode": in our own mount namespace, unmount it and cover the directory with an
 * empty tmpfs. Everything else (the v1 hierarchies, /tmp) is the host's. */
static int private_mounts(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		perror("supbench: private mount namespace");
		return -1;
	}
	struct stat st;
	if (stat("/sys/fs/cgroup/unified", &st) == 0) {
		if (umount2("/sys/fs/cgroup/unified", MNT_DETACH) < 0 && errno != EINVAL)
			perror("supbench: umount /sys/fs/cgroup/unified");
		if (mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=1m,mode=755") < 0)
			perror("supbench: tmpfs over /sys/fs/cgroup/unified");
	}
	return 0;
}

/* What podman's CNI plugins (1c) leave on the host: iptables-nft tables (the bridge and portmap
 * plugins' top chains; "ip6 nat" too, on a host with IPv6) and net.ipv4.ip_forward set to 1.
 * Bit i of cni_tables(): CNI_TABLES[i] is there now. At the end, what was not there before is
 * deleted and ip_forward given back, as bench-net does and the tests' host_network_restored. */
static const char *const CNI_TABLES[] = {
	"ip nat", "ip filter", "ip mangle", "ip raw", "ip6 nat", "ip6 filter", "ip6 mangle", "ip6 raw",
};
#define NCNI (sizeof(CNI_TABLES) / sizeof(CNI_TABLES[0]))
static const char IP_FORWARD[] = "/proc/sys/net/ipv4/ip_forward";

static unsigned cni_tables(void)
{
	FILE *f = popen("nft list tables 2>/dev/null", "r");
	char line[128];
	unsigned have = 0;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		for (unsigned i = 0; i < NCNI; i++)
			if (!strncmp(line, "table ", 6) && !strcmp(line + 6, CNI_TABLES[i]))
				have |= 1u << i;
	}
	if (f)
		pclose(f);
	return have;
}

/* ip_forward's value (its one character), or '\0' when it cannot be read. */
static char ip_forward(void)
{
	char v = '\0';
	int fd = open(IP_FORWARD, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &v, 1) != 1)
			v = '\0';
		close(fd);
	}
	return v;
}

static void host_network_restore(unsigned tables_there, char forward_was)
{
	unsigned made = cni_tables() & ~tables_there;
	for (unsigned i = 0; i < NCNI; i++)
		if (made >> i & 1) {
			char cmd[64];
			snprintf(cmd, sizeof(cmd), "nft delete table %s", CNI_TABLES[i]);
			if (system(cmd) != 0)
				fprintf(stderr, "supbench: %s failed\n", cmd);
		}
	if (forward_was && ip_forward() != forward_was) {
		int fd = open(IP_FORWARD, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, &forward_was, 1) != 1)
			perror("supbench: giving net.ipv4.ip_forward back");
		if (fd >= 0)
			close(fd);
	}
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	if (!strcmp(base ? base + 1 : argv[0], "run"))
		return role_run();

	struct sb_opts *o = &opts;
	const char *log = "/dev/null";
	parse(argc, argv, o, &log);
	if (geteuid() != 0) {
		fprintf(stderr, "supbench: needs root (namespaces, cgroups)\n");
		return 1;
	}
	if (bc_self_exe(o->self, sizeof(o->self), "supbench") < 0)
		return 1;
	o->ours = absolute(o->ours);
	o->init = absolute(o->init);
	o->rootfs = absolute(o->rootfs);
	setenv("CORRAL_INIT", o->init, 1);
	snprintf(o->cgprefix, sizeof(o->cgprefix), "%s-%d", SB_PREFIX, (int)getpid());
	snprintf(o->tmp, sizeof(o->tmp), "/tmp/%s", o->cgprefix);
	snprintf(o->magic, sizeof(o->magic), "%d", 900000000 + (int)getpid());
	o->log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->log_fd < 0) {
		perror(log);
		return 1;
	}
	if (mkdir(o->tmp, 0755) < 0) {
		perror(o->tmp);
		return 1;
	}
	sb_cleanup_register(o);
	bc_on_stop_signals(on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* Orphans of a stopped supervision tree come back to us, to be reaped (and, if they should
	 * not be there, killed by pid). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* podman (1c) makes /run/netns and mounts it on itself: the mount stays in our namespace,
	 * the folder would stay on the host (and then look like someone else's to the tests). */
	bool netns_there = access("/run/netns", F_OK) == 0;
	unsigned tables_there = cni_tables();
	char forward_was = ip_forward();
	if (private_mounts() < 0) {
		sb_cleanup();
		return 1;
	}

	struct utsname u;
	uname(&u);
	printf("supbench: kernel %s, %ld CPUs; ours = %s (init %s); output of the runtimes -> %s\n",
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), o->ours, o->init, log);
	fflush(stdout);

	int failures = 0, pass = 0, miss = 0;
	if (o->run_containers) {
		struct sb_table seq, conc;
		if (bench_containers(o, &seq, &conc) < 0)
			failures++;
		sb_table_print(&seq, &pass, &miss);
		sb_table_print(&conc, &pass, &miss);
	}
	if (o->run_bridge) {
		struct sb_table t;
		memset(&t, 0, sizeof(t));
		if (bench_bridge(o, &t) < 0)
			failures++;
		sb_table_print(&t, &pass, &miss);
	}
	if (o->run_services)
		for (int i = 0; i < o->nsizes; i++) {
			struct sb_table t;
			memset(&t, 0, sizeof(t));
			if (bench_services(o, o->sizes[i], &t) < 0)
				failures++;
			sb_table_print(&t, &pass, &miss);
		}
	printf("\nsupbench: %d PASS, %d MISS%s\n", pass, miss,
	       failures ? " (some measurements FAILED, see above and the log)" : "");
	sb_cleanup();
	host_network_restore(tables_there, forward_was);
	if (!netns_there) {
		umount2("/run/netns", MNT_DETACH);   /* ours: this namespace is private */
		rmdir("/run/netns");                 /* only when empty */
	}
	return failures ? 1 : 0;
}
