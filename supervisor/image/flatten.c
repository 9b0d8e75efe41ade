/* An image's unpacked layers as one plain directory (image.h: cr_image_flatten). */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The merged tree at from, copied to to by libarchive (owners, modes, times, xattrs, ACLs,
 * devices, symlinks as they are). Returns 0 or -1 with err set. */
static int copy_tree(const char *from, const char *to, char *err, size_t errlen)
{
    struct archive *in = archive_read_disk_new(), *out = archive_write_disk_new();
    int r = -1;
    if (!in || !out) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    archive_read_disk_set_symlink_physical(in);
    archive_read_disk_set_standard_lookup(in);
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                                            ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                                            ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    archive_write_disk_set_standard_lookup(out);
    if (archive_read_disk_open(in, from) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", from, archive_error_string(in));
        goto done;
    }
    size_t plen = strlen(from);
    struct archive_entry *e = archive_entry_new();
    char path[8192], buf[65536];
    for (;;) {
        int s = archive_read_next_header2(in, e);
        if (s == ARCHIVE_EOF) {
            r = 0;
            break;
        }
        if (s < ARCHIVE_WARN) {
            snprintf(err, errlen, "reading %s: %s", from, archive_error_string(in));
            break;
        }
        archive_read_disk_descend(in);
        const char *p = archive_entry_pathname(e);
        if (strncmp(p, from, plen) != 0) {
            snprintf(err, errlen, "%s: outside %s", p, from);
            break;
        }
        snprintf(path, sizeof path, "%s%s", to, p + plen);
        archive_entry_set_pathname(e, path);
        if (archive_write_header(out, e) < ARCHIVE_WARN) {
            snprintf(err, errlen, "writing %.512s: %s", path, archive_error_string(out));
            break;
        }
        if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
            FILE *f = fopen(archive_entry_sourcepath(e), "re");
            size_t n = 0;
            while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
                if (archive_write_data(out, buf, n) < 0)
                    break;
            bool bad = !f || ferror(f) || n > 0;
            if (f)
                fclose(f);
            if (bad) {
                snprintf(err, errlen, "copying %.512s: %s", path,
                         f ? archive_error_string(out) : strerror(errno));
                break;
            }
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
            snprintf(err, errlen, "writing %.512s: %s", path, archive_error_string(out));
            break;
        }
    }
    archive_entry_free(e);
done:
    if (in)
        archive_read_free(in);
    if (out) {
        if (archive_write_close(out) < ARCHIVE_WARN && r == 0) {
            snprintf(err, errlen, "writing %s: %s", to, archive_error_string(out));
            r = -1;
        }
        archive_write_free(out);
    }
    return r;
}

int cr_image_flatten(char *const *layers, size_t n, const char *dst, char *err, size_t errlen)
{
    char opts[8192], mnt[] = "/tmp/corral-flatten-XXXXXX";
    size_t len = (size_t)snprintf(opts, sizeof opts, "lowerdir=");
    for (size_t i = 0; i < n && len < sizeof opts; i++)
        len += (size_t)snprintf(opts + len, sizeof opts - len, "%s%s", i ? ":" : "", layers[i]);
    if (!n || len >= sizeof opts) {
        snprintf(err, errlen, n ? "too many layers for one overlay mount" : "no layers");
        return -EINVAL;
    }
    if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dst, strerror(errno));
        return -errno;
    }
    if (!mkdtemp(mnt)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -errno;
    }
    /* The overlay in a mount namespace of a child's own: nothing of it outlives the copy. */
    int pipefd[2];
    if (pipe(pipefd) < 0) {
        rmdir(mnt);
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        char e[1024] = "";
        /* one layer is the tree itself (overlayfs wants two lower dirs without an upper) */
        int r = n == 1 ? copy_tree(layers[0], dst, e, sizeof e) < 0
                : unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0
                    ? (snprintf(e, sizeof e, "private mount namespace: %s", strerror(errno)), 1)
                : mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0
                    ? (snprintf(e, sizeof e, "overlay of %zu layers: %s", n, strerror(errno)), 1)
                    : copy_tree(mnt, dst, e, sizeof e) < 0;
        if (r && write(pipefd[1], e, strlen(e)) < 0)
            r = 2;
        _exit(r);
    }
    close(pipefd[1]);
    int status = 0;
    ssize_t got = pid < 0 ? -1 : read(pipefd[0], err, errlen - 1);
    close(pipefd[0]);
    if (pid > 0)
        waitpid(pid, &status, 0);
    rmdir(mnt);
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (got > 0)
            err[got] = '\0';
        else
            snprintf(err, errlen, pid < 0 ? "fork: %s" : "the copy failed (%s)",
                     pid < 0 ? strerror(errno) : "no reason given");
        return -EIO;
    }
    return 0;
}
