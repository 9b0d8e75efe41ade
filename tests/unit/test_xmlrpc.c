/* Unit tests for api/xmlrpc.c: methodCalls read with expat into values (every type, nesting,
 * members), what is refused (structure, types, depth, DOCTYPE), and responses written (escaping,
 * text XML cannot carry, faults) — each written response read back by expat itself. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <expat.h>

#include "api/xmlrpc.h"

static struct cr_xv *parse_ok(const char *xml, const char *method)
{
    char *m = NULL, err[256] = "";
    struct cr_xv *p = NULL;
    int r = cr_xmlrpc_parse(xml, strlen(xml), &m, &p, err, sizeof err);
    if (r != 0)
        fail_msg("'%s': %d %s", xml, r, err);
    assert_string_equal(m, method);
    free(m);
    return p;
}

static void parse_bad(const char *xml, const char *want)
{
    char *m = NULL, err[256] = "";
    struct cr_xv *p = NULL;
    int r = cr_xmlrpc_parse(xml, strlen(xml), &m, &p, err, sizeof err);
    assert_int_equal(r, -EINVAL);
    assert_null(m);
    assert_null(p);
    if (!strstr(err, want))
        fail_msg("'%s': error '%s' lacks '%s'", xml, err, want);
}

#define CALL(m, params) "<?xml version='1.0'?><methodCall><methodName>" m \
    "</methodName><params>" params "</params></methodCall>"
#define P(v) "<param><value>" v "</value></param>"

static void test_values(void **state)
{
    (void)state;
    struct cr_xv *p = parse_ok(CALL("supervisor.startProcess",
        P("<string>grp:a &amp; &lt;b&gt;</string>") P("<boolean>1</boolean>") P("<int>-42</int>")
        P("<i4>7</i4>") P("plain text") P("<double>1.5</double>") P("<nil/>")
        P("<array><data><value><int>1</int></value><value>two</value></data></array>")
        P("<struct><member><name>methodName</name><value><string>x</string></value></member>"
          "<member><name>params</name><value><array><data/></array></value></member>"
          "</struct>")), "supervisor.startProcess");
    assert_int_equal(p->t, CR_XV_ARRAY);
    assert_int_equal(p->n, 9);
    assert_int_equal(p->v[0]->t, CR_XV_STRING);
    assert_string_equal(p->v[0]->s, "grp:a & <b>");
    assert_int_equal(p->v[1]->t, CR_XV_BOOL);
    assert_int_equal(p->v[1]->i, 1);
    assert_int_equal(p->v[2]->i, -42);
    assert_int_equal(p->v[3]->i, 7);
    assert_string_equal(p->v[4]->s, "plain text");
    assert_true(p->v[5]->d == 1.5);
    assert_int_equal(p->v[6]->t, CR_XV_NIL);
    assert_int_equal(p->v[7]->n, 2);
    assert_int_equal(p->v[7]->v[0]->i, 1);
    assert_string_equal(p->v[7]->v[1]->s, "two");
    assert_int_equal(p->v[8]->t, CR_XV_STRUCT);
    assert_string_equal(cr_xv_member(p->v[8], "methodName")->s, "x");
    assert_int_equal(cr_xv_member(p->v[8], "params")->n, 0);
    assert_null(cr_xv_member(p->v[8], "other"));
    cr_xv_free(p);
    /* no params at all */
    p = parse_ok("<methodCall><methodName>system.listMethods</methodName></methodCall>",
                 "system.listMethods");
    assert_int_equal(p->n, 0);
    cr_xv_free(p);
}

static void test_refused(void **state)
{
    (void)state;
    parse_bad("", "no element found");
    parse_bad("<methodCall><methodName>x", "no element found");
    parse_bad("<a/>", "<a> is not allowed as the root");
    parse_bad("<methodCall><params/></methodCall>", "no <methodName>");
    parse_bad(CALL("x", "<value>1</value>"), "<value> is not allowed there");
    parse_bad(CALL("x", P("<int>12a</int>")), "'12a' is not an integer");
    parse_bad(CALL("x", P("<int>99999999999999999999</int>")), "is not an integer");
    parse_bad(CALL("x", P("<boolean>true</boolean>")), "is not a boolean");
    parse_bad(CALL("x", P("<double>x</double>")), "is not a double");
    parse_bad(CALL("x", P("<int>1</int><int>2</int>")), "<value> holds one value");
    parse_bad(CALL("x", P("<struct><member><value>1</value></member></struct>")),
              "without a <name>");
    parse_bad(CALL("x", P("<script/>")), "<script> is not allowed there");
    /* entities: no DOCTYPE at all (no billion laughs, no external entities) */
    parse_bad("<?xml version='1.0'?><!DOCTYPE m [<!ENTITY a 'aaaa'>]>"
              "<methodCall><methodName>&a;</methodName></methodCall>", "DOCTYPE");
    /* nesting beyond CR_XV_DEPTH */
    char deep[8192] = "<methodCall><methodName>x</methodName><params><param>";
    for (int i = 0; i < CR_XV_DEPTH + 1; i++)
        strcat(deep, "<value><array><data>");
    parse_bad(deep, "nested deeper");
}

/* Expat reads it back as a methodResponse: the text of every <string>, concatenated. */
struct back {
    char text[4096];
    bool in_string;
};

static void b_start(void *ud, const XML_Char *n, const XML_Char **a)
{
    (void)a;
    ((struct back *)ud)->in_string = !strcmp(n, "string");
}

static void b_end(void *ud, const XML_Char *n)
{
    (void)n;
    ((struct back *)ud)->in_string = false;
}

static void b_text(void *ud, const XML_Char *s, int len)
{
    struct back *b = ud;
    if (b->in_string)
        strncat(b->text, s, (size_t)len);
}

static void read_back(const struct cr_xw *w, struct back *b)
{
    memset(b, 0, sizeof *b);
    XML_Parser p = XML_ParserCreate("UTF-8");
    XML_SetUserData(p, b);
    XML_SetElementHandler(p, b_start, b_end);
    XML_SetCharacterDataHandler(p, b_text);
    if (XML_Parse(p, w->p, (int)w->len, XML_TRUE) != XML_STATUS_OK)
        fail_msg("not XML: %s\n%s", XML_ErrorString(XML_GetErrorCode(p)), w->p);
    XML_ParserFree(p);
}

static void test_writing(void **state)
{
    (void)state;
    struct cr_xw w = {0};
    cr_xw_begin(&w);
    cr_xw_array_begin(&w);
    /* markup, a CR, a control byte, bytes that are not UTF-8, a real UTF-8 letter */
    static const char raw[] = "a<b>&c\r\nd\x1b[0m\xff\xfe e\xc3\xa9";
    cr_xw_strn(&w, raw, sizeof raw - 1);
    cr_xw_struct_begin(&w);
    cr_xw_member(&w, "n");
    cr_xw_int(&w, 1LL << 40);   /* XML-RPC ints are 32 bits */
    cr_xw_member_end(&w);
    cr_xw_struct_end(&w);
    cr_xw_array_end(&w);
    cr_xw_end(&w);
    assert_false(w.oom);
    struct back b;
    read_back(&w, &b);
    assert_string_equal(b.text, "a<b>&c\r\nd\xef\xbf\xbd[0m\xef\xbf\xbd\xef\xbf\xbd e\xc3\xa9");
    assert_non_null(strstr(w.p, "<int>2147483647</int>"));
    free(w.p);

    struct cr_xw f = {0};
    cr_xw_fault(&f, 10, "BAD_NAME: %s", "x<y");
    read_back(&f, &b);
    assert_string_equal(b.text, "BAD_NAME: x<y");
    assert_non_null(strstr(f.p, "<fault>"));
    assert_non_null(strstr(f.p, "<int>10</int>"));
    free(f.p);

    /* a value read is written back as it was (system.multicall's arguments) */
    struct cr_xv *p = parse_ok(CALL("m", P("<struct><member><name>k&amp;</name><value><array>"
                                           "<data><value><i4>3</i4></value></data></array>"
                                           "</value></member></struct>")), "m");
    struct cr_xw v = {0};
    cr_xw_value(&v, p->v[0]);
    assert_string_equal(v.p, "<value><struct><member><name>k&amp;</name><value><array><data>"
                             "<value><int>3</int></value></data></array></value></member>"
                             "</struct></value>");
    free(v.p);
    cr_xv_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
