/* net/addr: subnets, published ports, address allocation and interface names, without root. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/addr.h"
#include "net/host.h"
#include "net/unixsock.h"

static void test_cidr4(void **state)
{
    (void)state;
    struct cr_cidr4 c;
    char err[256], buf[32];
    assert_int_equal(cr_cidr4_parse("10.89.0.0/24", &c, err, sizeof err), 0);
    assert_int_equal(c.addr, 0x0A590000u);
    assert_int_equal(c.prefix, 24);
    cr_cidr4_format(&c, buf, sizeof buf);
    assert_string_equal(buf, "10.89.0.0/24");
    assert_int_equal(cr_gateway4(&c), 0x0A590001u);
    static const char *const bad[] = {
        "10.89.0.0", "10.89.0.0/", "10.89.0.0/33", "10.89.0.0/31", "10.0.0.0/7", "10.89.0/24",
        "10.89.0.1/24", "fd00::/64", "10.89.0.0/24x", "10.89.0.0/-4", "/24", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (cr_cidr4_parse(bad[i], &c, err, sizeof err) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err, bad[i]));
    }
    assert_int_equal(cr_cidr4_parse("10.89.0.1/24", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "host bits"));
}

static void test_cidr6(void **state)
{
    (void)state;
    struct cr_cidr6 a, b;
    char err[256];
    assert_int_equal(cr_cidr6_parse("fd00:89::/64", &a, err, sizeof err), 0);
    assert_int_equal(a.prefix, 64);
    assert_int_equal(a.addr[0], 0xfd);
    assert_int_equal(a.addr[3], 0x89);
    assert_int_equal(cr_cidr6_parse("fd00:89::1/64", &b, err, sizeof err), -EINVAL);
    assert_int_equal(cr_cidr6_parse("fd00:89::/8", &b, err, sizeof err), -EINVAL);
    assert_int_equal(cr_cidr6_parse("10.0.0.0/24", &b, err, sizeof err), -EINVAL);
    assert_int_equal(cr_cidr6_parse("fd00:89::/48", &b, err, sizeof err), 0);
    assert_true(cr_cidr6_overlap(&a, &b));
    assert_int_equal(cr_cidr6_parse("fd00:8a::/64", &b, err, sizeof err), 0);
    assert_false(cr_cidr6_overlap(&a, &b));
}

static void test_overlap4(void **state)
{
    (void)state;
    static const struct { const char *a, *b; bool overlap; } cases[] = {
        {"10.89.0.0/24", "10.89.0.0/24", true},  {"10.89.0.0/24", "10.89.1.0/24", false},
        {"10.89.0.0/16", "10.89.7.0/24", true},  {"10.89.7.0/24", "10.89.0.0/16", true},
        {"10.89.0.0/25", "10.89.0.128/25", false}, {"192.168.0.0/16", "10.0.0.0/8", false},
    };
    char err[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cr_cidr4 a, b;
        assert_int_equal(cr_cidr4_parse(cases[i].a, &a, err, sizeof err), 0);
        assert_int_equal(cr_cidr4_parse(cases[i].b, &b, err, sizeof err), 0);
        if (cr_cidr4_overlap(&a, &b) != cases[i].overlap)
            fail_msg("%s and %s", cases[i].a, cases[i].b);
    }
}

/* Addresses in a set, for taken(). */
struct used {
    uint32_t v[512];
    size_t n;
};

static bool is_used(uint32_t a, void *arg)
{
    struct used *u = arg;
    for (size_t i = 0; i < u->n; i++)
        if (u->v[i] == a)
            return true;
    return false;
}

static void test_pick4(void **state)
{
    (void)state;
    struct cr_cidr4 net;
    char err[128];
    assert_int_equal(cr_cidr4_parse("10.89.0.0/24", &net, err, sizeof err), 0);
    /* Stable: the same name gets the same address, whatever else exists, while it is free. */
    uint32_t a, b;
    assert_int_equal(cr_net_pick4(&net, "web", NULL, NULL, &a), 0);
    assert_int_equal(cr_net_pick4(&net, "web", NULL, NULL, &b), 0);
    assert_int_equal(a, b);
    /* Every name of a full /24 gets its own address, never .0, .1 (gateway) or .255. */
    static struct used u;
    u.n = 0;
    for (int i = 0; i < 253; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(cr_net_pick4(&net, name, is_used, &u, &a), 0);
        assert_false(is_used(a, &u));
        assert_true(a >= net.addr + 2 && a <= net.addr + 254);
        u.v[u.n++] = a;
    }
    assert_int_equal(cr_net_pick4(&net, "one-too-many", is_used, &u, &a), -ENOSPC);
    /* A taken address moves a name to the next free one, wrapping at the end. */
    u.n = 0;
    assert_int_equal(cr_net_pick4(&net, "web", NULL, NULL, &a), 0);
    u.v[u.n++] = a;
    assert_int_equal(cr_net_pick4(&net, "web", is_used, &u, &b), 0);
    assert_int_equal(b, a == net.addr + 254 ? net.addr + 2 : a + 1);
    /* A /30 has exactly one address for a service. */
    assert_int_equal(cr_cidr4_parse("10.89.0.4/30", &net, err, sizeof err), 0);
    assert_int_equal(cr_net_pick4(&net, "x", NULL, NULL, &a), 0);
    assert_int_equal(a, net.addr + 2);
}

static bool none6(const uint8_t addr[16], void *arg)
{
    (void)addr;
    (void)arg;
    return false;
}

static void test_pick6(void **state)
{
    (void)state;
    struct cr_cidr6 net;
    char err[128];
    uint8_t a[16], b[16];
    assert_int_equal(cr_cidr6_parse("fd00:89::/64", &net, err, sizeof err), 0);
    assert_int_equal(cr_net_pick6(&net, "web", none6, NULL, a), 0);
    assert_int_equal(cr_net_pick6(&net, "web", none6, NULL, b), 0);
    assert_memory_equal(a, b, 16);
    assert_memory_equal(a, net.addr, 8);
    assert_false(a[15] <= 1 && !a[14] && !a[13] && !a[12]);
}

static void test_ports(void **state)
{
    (void)state;
    struct cr_port p, q;
    char err[256], buf[64];
    assert_int_equal(cr_port_parse("8080:80", &p, err, sizeof err), 0);
    assert_int_equal(p.ip, 0);
    assert_int_equal(p.host, 8080);
    assert_int_equal(p.container, 80);
    assert_int_equal(p.proto, CR_PROTO_TCP);
    assert_int_equal(cr_port_parse("127.0.0.1:5353:53/udp", &q, err, sizeof err), 0);
    assert_int_equal(q.ip, 0x7F000001u);
    assert_int_equal(q.proto, CR_PROTO_UDP);
    cr_port_format(&q, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:5353->53/udp");
    cr_port_format(&p, buf, sizeof buf);
    assert_string_equal(buf, "8080->80/tcp");
    assert_int_equal(cr_port_parse("8080:80/TCP", &q, err, sizeof err), 0);
    assert_true(cr_port_clash(&p, &q));
    assert_int_equal(cr_port_parse("10.0.0.1:8080:81", &q, err, sizeof err), 0);
    assert_true(cr_port_clash(&p, &q));          /* every address includes 10.0.0.1 */
    assert_int_equal(cr_port_parse("8080:80/udp", &q, err, sizeof err), 0);
    assert_false(cr_port_clash(&p, &q));
    assert_int_equal(cr_port_parse("10.0.0.1:9000:80", &p, err, sizeof err), 0);
    assert_int_equal(cr_port_parse("10.0.0.2:9000:80", &q, err, sizeof err), 0);
    assert_false(cr_port_clash(&p, &q));
    static const char *const bad[] = {
        "80", "0:80", "80:0", "65536:80", "a:80", "8080:80/sctp", "1.2.3.4:5:6:7",
        "::1:80:80", "300.0.0.1:80:80", ":80", "8080:", "8080:80/", "-1:80", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cr_port_parse(bad[i], &p, err, sizeof err) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

static void test_ifnames(void **state)
{
    (void)state;
    char a[16], b[16], pre[16];
    cr_net_ifprefix("corral", pre);
    assert_int_equal(strlen(pre), 10);
    assert_int_equal(strncmp(pre, "corral", 6), 0);
    cr_net_ifname("corral", 'b', cr_net_hash("default"), a);
    assert_int_equal(strlen(a), 15);
    assert_int_equal(strncmp(a, pre, 10), 0);
    assert_int_equal(a[10], 'b');
    assert_true(cr_ifname_valid(a));
    /* The test suite's roots make crtest names; another root another prefix. */
    cr_net_ifname("crtest-1234-x/sub", 'v', 7, b);
    assert_int_equal(strncmp(b, "sub", 3), 0);
    cr_net_ifname("crtest-1234-x", 'v', 7, b);
    assert_int_equal(strncmp(b, "crtest", 6), 0);
    cr_net_ifname("crtest-1235-x", 'v', 7, a);
    assert_string_not_equal(a, b);
    cr_net_ifname("x", 'v', 7, a);
    assert_true(strlen(a) <= 15 && cr_ifname_valid(a));
    cr_net_ifname("--", 'v', 7, a);
    assert_true(cr_ifname_valid(a));
    assert_false(cr_ifname_valid("a/b"));
    assert_false(cr_ifname_valid("a:b"));
    assert_false(cr_ifname_valid("0123456789abcdef"));
    assert_false(cr_ifname_valid(""));
    assert_true(cr_ifname_valid("br-front"));
}

/* cr_net_hosts_ensure beside a writer of the same file (a supervisor connecting a run writes
 * the run's hosts file while the run makes it, run_net.h): the file is made, never emptied
 * once it holds text. Run many times over so that the writer lands between the look and the
 * making: an ensure that emptied a file there lost the services' names (a run got "Name or
 * service not known"). */
#define ENSURE_ROUNDS 3000
static const char hosts_text[] = "10.89.0.2\tsrv\n";
static pthread_barrier_t ensure_go;

static void *hosts_writer(void *arg)
{
    const char *path = arg;
    for (int i = 0; i < ENSURE_ROUNDS; i++) {
        pthread_barrier_wait(&ensure_go);
        /* as the supervisor writes it: in place (a bind of the file keeps its inode) */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (pwrite(fd, hosts_text, sizeof hosts_text - 1, 0) < 0)
                abort();
            close(fd);
        }
        pthread_barrier_wait(&ensure_go);
    }
    return NULL;
}

static void test_hosts_ensure_never_empties(void **state)
{
    (void)state;
    char top[] = "/tmp/test_net.XXXXXX", path[64];
    assert_non_null(mkdtemp(top));
    snprintf(path, sizeof path, "%s/sub", top);
    assert_int_equal(mkdir(path, 0755), 0);   /* both writers make it first */
    snprintf(path, sizeof path, "%s/sub/hosts", top);
    pthread_t t;
    assert_int_equal(pthread_barrier_init(&ensure_go, NULL, 2), 0);
    assert_int_equal(pthread_create(&t, NULL, hosts_writer, path), 0);
    int lost = 0;
    for (int i = 0; i < ENSURE_ROUNDS; i++) {
        unlink(path);
        pthread_barrier_wait(&ensure_go);
        cr_net_hosts_ensure(path);
        pthread_barrier_wait(&ensure_go);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        lost += st.st_size != (off_t)sizeof hosts_text - 1;
    }
    pthread_join(t, NULL);
    pthread_barrier_destroy(&ensure_go);
    assert_int_equal(lost, 0);
    /* alone: made empty where there is none, and an existing file is left as it is */
    unlink(path);
    cr_net_hosts_ensure(path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", top);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rmdir(top), 0);
}

/* cr_unix_listen: the file at path is the listening socket (a connect succeeds), with the
 * mode asked for; the sibling it was bound at is gone; a path no client could name is
 * refused. (That the file never shows before the listen is by the order of the calls: the
 * window it closes, a few microseconds, is too short for a test to hit without a loaded
 * machine; `make flake-check` hit it.) */
static void test_unix_listen_is_there_only_listening(void **state)
{
    (void)state;
    char top[] = "/tmp/test_net.XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(top));
    snprintf(path, sizeof path, "%s/ctl.sock", top);
    dev_t dev;
    ino_t ino;
    int fd = cr_unix_listen(path, 0640, (uid_t)-1, (gid_t)-1, 8, &dev, &ino, err, sizeof err);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_true(S_ISSOCK(st.st_mode) && st.st_dev == dev && st.st_ino == ino);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    close(c);
    close(fd);
    unlink(path);
    /* nothing else in the folder: the sibling it was bound at went with the rename */
    DIR *d = opendir(top);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    assert_int_equal(n, 0);
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_int_equal(cr_unix_listen(longp, 0600, (uid_t)-1, (gid_t)-1, 8, &dev, &ino, err,
                                     sizeof err), -ENAMETOOLONG);
    assert_int_equal(rmdir(top), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr4), cmocka_unit_test(test_cidr6),
        cmocka_unit_test(test_overlap4), cmocka_unit_test(test_pick4),
        cmocka_unit_test(test_pick6), cmocka_unit_test(test_ports),
        cmocka_unit_test(test_ifnames), cmocka_unit_test(test_hosts_ensure_never_empties),
        cmocka_unit_test(test_unix_listen_is_there_only_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
