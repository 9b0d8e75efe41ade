/* Capability names (libcap's table) and this kernel's set. */
#include "policy/caps.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

uint64_t cr_caps_all(void)
{
    static uint64_t all;
    if (!all) {
        int last = CAP_LAST_CAP;
        FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
        if (f) {
            if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
                last = CAP_LAST_CAP;
            fclose(f);
        }
        all = last >= 63 ? UINT64_MAX : (1ULL << (last + 1)) - 1;
    }
    return all;
}

int cr_cap_number(const char *word)
{
    char name[64] = "cap_";
    if (!word)
        return -1;
    size_t skip = strncasecmp(word, "cap_", 4) ? 0 : 4;
    if (!strcasecmp(word + skip, "all"))
        return -2;
    size_t n = strlen(word + skip);
    if (n == 0 || n + 5 > sizeof name)
        return -1;
    for (size_t i = 0; i <= n; i++)
        name[4 + i] = (char)tolower((unsigned char)word[skip + i]);
    cap_value_t v;
    if (cap_from_name(name, &v) < 0 || v < 0 || v > 63 || !((1ULL << v) & cr_caps_all()))
        return -1;
    return v;
}

int cr_cap_name(int n, char *buf, size_t len)
{
    char *name = n >= 0 && n <= 63 ? cap_to_name((cap_value_t)n) : NULL;
    if (!name)
        return -1;
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (char)toupper((unsigned char)name[i]);
    buf[i] = '\0';
    cap_free(name);
    return 0;
}
