/* Runs a libFuzzer target on files, without libFuzzer: `make test` replays every saved
 * reproducer (tests/fuzz/regress/TARGET/) through it, built with gcc's ASan and UBSan. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0;
        for (;;) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                if (!(buf = realloc(buf, cap)))
                    return 2;
            }
            size_t r = fread(buf + n, 1, cap - n, f);
            if (!r)
                break;
            n += r;
        }
        fclose(f);
        /* An exact-size copy, so ASan sees a read one past the input as libFuzzer would. */
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact)
            return 2;
        for (size_t k = 0; k < n; k++)
            exact[k] = buf[k];
        free(buf);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        printf("ok %s\n", argv[i]);
    }
    return 0;
}
