#include "text.h"

static bool is_control(unsigned char c, bool keep_nl)
{
    return (c < 0x20 && !(keep_nl && c == '\n')) || c == 0x7f;
}

size_t cr_text_escape(char *dst, size_t cap, const char *src, bool keep_nl)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        if (is_control(*p, keep_nl)) {
            if (o + 4 >= cap)
                break;
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[*p >> 4];
            dst[o++] = hex[*p & 15];
        } else {
            if (o + 1 >= cap)
                break;
            dst[o++] = (char)*p;
        }
    }
    dst[o] = '\0';
    return o;
}

bool cr_text_needs_escape(const char *src, bool keep_nl)
{
    for (const unsigned char *p = (const unsigned char *)src; *p; p++)
        if (is_control(*p, keep_nl))
            return true;
    return false;
}

int cr_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint32_t cr_fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}
