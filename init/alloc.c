/* init's malloc (the static musl build only: CR_INIT_ALLOC): blocks of 16 B to 64 KiB in
 * power-of-two classes carved from one static arena, each class with a free list; larger
 * blocks, and any once the arena is used up, are mapped on their own. musl's allocator maps a
 * group of its own for each size class in use: the few dozen small blocks of a spec took six
 * page faults there at every container's start (~15 us of CPU each on a virtual machine),
 * two here. init is one thread (its vfork'ed children do not allocate). */
#ifdef CR_INIT_ALLOC
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* the functions' names: tests/unit/test_alloc.c includes this file with names of its own */
#ifndef CR_ALLOC
#define CR_ALLOC(name) name
#endif

#define MIN_SHIFT 4                    /* 16 B */
#define NCLASS 13                      /* to 64 KiB */
#define BIG NCLASS
#define ARENA_SIZE (256u << 10)

struct head {                          /* before each block; 16 B keeps blocks 16-aligned */
    size_t cls;                        /* a class, or BIG */
    size_t len;                        /* BIG: the whole mapping's length */
};

static unsigned char arena[ARENA_SIZE] __attribute__((aligned(16)));
static size_t used;
static void *free_list[NCLASS];

static size_t class_of(size_t n)
{
    size_t c = 0;
    while (c < NCLASS && ((size_t)1 << (c + MIN_SHIFT)) < n)
        c++;
    return c;
}

static void *big(size_t n)
{
    if (n > SIZE_MAX - sizeof(struct head) - 4096) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = (n + sizeof(struct head) + 4095) & ~(size_t)4095;
    struct head *h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    *h = (struct head){.cls = BIG, .len = len};
    return h + 1;
}

void *CR_ALLOC(malloc)(size_t n)
{
    size_t c = class_of(n ? n : 1);
    if (c == BIG)
        return big(n);
    if (free_list[c]) {
        void *p = free_list[c];
        free_list[c] = *(void **)p;
        return p;
    }
    size_t need = sizeof(struct head) + ((size_t)1 << (c + MIN_SHIFT));
    if (ARENA_SIZE - used < need)
        return big(n);
    struct head *h = (struct head *)(arena + used);
    used += need;
    h->cls = c;
    return h + 1;
}

void CR_ALLOC(free)(void *p)
{
    if (!p)
        return;
    struct head *h = (struct head *)p - 1;
    if (h->cls == BIG) {
        munmap(h, h->len);
        return;
    }
    *(void **)p = free_list[h->cls];
    free_list[h->cls] = p;
}

static size_t room(const void *p)
{
    const struct head *h = (const struct head *)p - 1;
    return h->cls == BIG ? h->len - sizeof *h : (size_t)1 << (h->cls + MIN_SHIFT);
}

void *CR_ALLOC(realloc)(void *p, size_t n)
{
    if (!p)
        return CR_ALLOC(malloc)(n);
    if (n && n <= room(p))
        return p;
    void *q = CR_ALLOC(malloc)(n);
    if (q) {
        size_t keep = room(p);
        memcpy(q, p, keep < n ? keep : n);
        CR_ALLOC(free)(p);
    }
    return q;
}

void *CR_ALLOC(calloc)(size_t n, size_t m)
{
    if (m && n > SIZE_MAX / m) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = CR_ALLOC(malloc)(n * m);
    if (p)
        memset(p, 0, n * m);
    return p;
}

size_t CR_ALLOC(malloc_usable_size)(void *p)
{
    return p ? room(p) : 0;
}
#endif
