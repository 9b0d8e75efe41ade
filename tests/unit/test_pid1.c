/* supervisor/pid1: what needs no machine — the kernel command line's corral.conf=, the power
 * actions' names and what each signal to PID 1 means. (The machine itself — mounts, orphans,
 * reboot(2) — is tested as the VM's PID 1: tests/integration/test_appliance.py.) */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pid1/pid1.h"

static void test_conf_from_cmdline(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(cr_pid1_conf_from_cmdline("console=ttyS0 corral.conf=/etc/a.ini quiet\n",
                                                  buf, sizeof buf), "/etc/a.ini");
    /* the last one wins; tabs and a trailing newline end a word */
    assert_string_equal(cr_pid1_conf_from_cmdline("corral.conf=/a\tcorral.conf=/b\n", buf,
                                                  sizeof buf), "/b");
    assert_null(cr_pid1_conf_from_cmdline("console=ttyS0 quiet", buf, sizeof buf));
    assert_null(cr_pid1_conf_from_cmdline("corral.conf= quiet", buf, sizeof buf));   /* empty */
    assert_null(cr_pid1_conf_from_cmdline("xcorral.conf=/a corral.confx=/b", buf, sizeof buf));
    assert_null(cr_pid1_conf_from_cmdline("", buf, sizeof buf));
    /* too long for the buffer: none, not a cut path */
    char small[4];
    assert_null(cr_pid1_conf_from_cmdline("corral.conf=/abcd", small, sizeof small));
    assert_string_equal(cr_pid1_conf_from_cmdline("corral.conf=/ab", small, sizeof small), "/ab");
}

static void test_power_names_and_signals(void **state)
{
    (void)state;
    for (int p = CR_POWER_HALT; p <= CR_POWER_REBOOT; p++)
        assert_int_equal(cr_power_parse(cr_power_name((enum cr_power)p)), p);
    assert_int_equal(cr_power_parse("shutdown"), CR_POWER_NONE);
    assert_int_equal(cr_power_parse(""), CR_POWER_NONE);
    /* s6-linux-init's: ctrl-alt-del reboots, USR1 and a UPS daemon's PWR power off, USR2
     * halts; TERM (busybox's reboot) and the rest mean nothing to PID 1 */
    assert_int_equal(cr_power_of_signal(SIGINT), CR_POWER_REBOOT);
    assert_int_equal(cr_power_of_signal(SIGUSR1), CR_POWER_POWEROFF);
    assert_int_equal(cr_power_of_signal(SIGPWR), CR_POWER_POWEROFF);
    assert_int_equal(cr_power_of_signal(SIGUSR2), CR_POWER_HALT);
    assert_int_equal(cr_power_of_signal(SIGTERM), CR_POWER_NONE);
    assert_int_equal(cr_power_of_signal(SIGQUIT), CR_POWER_NONE);
    assert_int_equal(cr_power_of_signal(SIGHUP), CR_POWER_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_from_cmdline),
        cmocka_unit_test(test_power_names_and_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
