/* Configuration tables: defaults, environment, flags, secrets from files,
 * checked numbers and bounds, and the errors a user sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/config.h"

struct conf {
    char *listen;
    char *secret;
    int64_t workers;
    int64_t timeout_ms;
    int64_t buffer;
    bool takeover;
};

static const struct config_opt opts[] = {
    { "listen", CONF_STR, offsetof(struct conf, listen), "0.0.0.0:7700", 1, 0, "address" },
    { "jwt-secret", CONF_SECRET, offsetof(struct conf, secret), NULL, 0, 0, "secret" },
    { "workers", CONF_INT, offsetof(struct conf, workers), "4", 1, 64, "threads" },
    { "timeout", CONF_MS, offsetof(struct conf, timeout_ms), "2s", 10, 60000, "timeout" },
    { "buffer", CONF_BYTES, offsetof(struct conf, buffer), "64k", 1024, 1 << 30, "bytes" },
    { "takeover", CONF_BOOL, offsetof(struct conf, takeover), "true", 0, 0, "takeover" },
    { NULL },
};

static void clear_env(void)
{
    static const char *const vars[] = { "SLUICE_LISTEN", "SLUICE_JWT_SECRET",
        "SLUICE_JWT_SECRET_FILE", "SLUICE_WORKERS", "SLUICE_TIMEOUT", "SLUICE_BUFFER",
        "SLUICE_TAKEOVER" };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* Loads <argv> (NULL-terminated, without the program name) into <c>. */
static enum config_result load(struct conf *c, char **err, ...)
{
    char *argv[16] = { "prog" };
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    struct config_table t = { opts, c };
    return config_load(&t, 1, "prog", argc, argv, err);
}

static void release(struct conf *c, char *err)
{
    struct config_table t = { opts, c };
    config_free(&t, 1);
    free(err);
}

static void test_defaults(void **state)
{
    (void)state;
    clear_env();
    struct conf c = { 0 };
    char *err = NULL;
    assert_int_equal(load(&c, &err, NULL), CONFIG_OK);
    assert_string_equal(c.listen, "0.0.0.0:7700");
    assert_null(c.secret);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.timeout_ms, 2000);
    assert_int_equal(c.buffer, 65536);
    assert_true(c.takeover);
    release(&c, err);
}

static void test_env_then_flags(void **state)
{
    (void)state;
    clear_env();
    setenv("SLUICE_WORKERS", "8", 1);
    setenv("SLUICE_TIMEOUT", "250ms", 1);
    setenv("SLUICE_LISTEN", "127.0.0.1:1", 1);
    struct conf c = { 0 };
    char *err = NULL;
    assert_int_equal(load(&c, &err, "--workers=16", "--takeover=no", "--buffer", "2M",
                          NULL), CONFIG_OK);
    assert_int_equal(c.workers, 16);          /* flag beats environment */
    assert_int_equal(c.timeout_ms, 250);      /* environment beats default */
    assert_string_equal(c.listen, "127.0.0.1:1");
    assert_false(c.takeover);
    assert_int_equal(c.buffer, 2 * 1048576);
    release(&c, err);
    clear_env();
}

static void test_bare_bool_flag(void **state)
{
    (void)state;
    clear_env();
    setenv("SLUICE_TAKEOVER", "off", 1);
    struct conf c = { 0 };
    char *err = NULL;
    assert_int_equal(load(&c, &err, "--takeover", NULL), CONFIG_OK);
    assert_true(c.takeover);
    release(&c, err);
    clear_env();
}

/* Each bad value is refused with a message naming the option and the source. */
static void test_bad_numbers(void **state)
{
    (void)state;
    static const struct { const char *arg, *expect; } cases[] = {
        { "--workers=abc", "workers" }, { "--workers=", "workers" },
        { "--workers=0", "in [1, 64]" }, { "--workers=65", "in [1, 64]" },
        { "--workers=4x", "workers" }, { "--workers= 4", "workers" },
        { "--workers=99999999999999999999", "workers" }, { "--timeout=5", "in [10," },
        { "--timeout=-1s", "timeout" }, { "--timeout=2 s", "timeout" },
        { "--timeout=3d", "timeout" }, { "--buffer=1T", "buffer" },
        { "--buffer=9999999999G", "buffer" }, { "--takeover=maybe", "not a boolean" },
        { "--listen=", "must not be empty" }, { "--nope=1", "unknown option --nope" },
        { "stray", "unexpected argument" },
    };
    clear_env();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf c = { 0 };
        char *err = NULL;
        assert_int_equal(load(&c, &err, cases[i].arg, NULL), CONFIG_ERROR);
        assert_non_null(err);
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("%s: got \"%s\", want it to mention \"%s\"", cases[i].arg, err,
                     cases[i].expect);
        release(&c, err);
    }
}

static void test_bad_env_names_its_variable(void **state)
{
    (void)state;
    clear_env();
    setenv("SLUICE_WORKERS", "lots", 1);
    struct conf c = { 0 };
    char *err = NULL;
    assert_int_equal(load(&c, &err, NULL), CONFIG_ERROR);
    assert_non_null(strstr(err, "SLUICE_WORKERS"));
    release(&c, err);
    clear_env();
}

static void test_missing_value(void **state)
{
    (void)state;
    clear_env();
    struct conf c = { 0 };
    char *err = NULL;
    assert_int_equal(load(&c, &err, "--workers", NULL), CONFIG_ERROR);
    assert_non_null(strstr(err, "needs a value"));
    release(&c, err);
}

static char *write_temp(const char *content)
{
    char *path = strdup("/tmp/sluice-test-secret-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void test_secret_files(void **state)
{
    (void)state;
    clear_env();
    char *path = write_temp("s3cret-from-file\n");
    setenv("SLUICE_JWT_SECRET_FILE", path, 1);
    struct conf c = { 0 };
    char *err = NULL;
    assert_int_equal(load(&c, &err, NULL), CONFIG_OK);
    assert_string_equal(c.secret, "s3cret-from-file");   /* newline stripped */
    release(&c, err);

    /* the flag form, overriding the environment */
    char *other = write_temp("from-flag");
    char flag[64];
    snprintf(flag, sizeof(flag), "--jwt-secret-file=%s", other);
    c = (struct conf){ 0 };
    err = NULL;
    assert_int_equal(load(&c, &err, flag, NULL), CONFIG_OK);
    assert_string_equal(c.secret, "from-flag");
    release(&c, err);

    /* a missing file is an error naming the variable and the path */
    setenv("SLUICE_JWT_SECRET_FILE", "/nonexistent/secret", 1);
    c = (struct conf){ 0 };
    err = NULL;
    assert_int_equal(load(&c, &err, NULL), CONFIG_ERROR);
    assert_non_null(strstr(err, "SLUICE_JWT_SECRET_FILE"));
    assert_non_null(strstr(err, "/nonexistent/secret"));
    release(&c, err);

    /* only secrets take _FILE */
    c = (struct conf){ 0 };
    err = NULL;
    unsetenv("SLUICE_JWT_SECRET_FILE");
    assert_int_equal(load(&c, &err, "--workers-file=/tmp/x", NULL), CONFIG_ERROR);
    release(&c, err);
    unlink(path);
    unlink(other);
    free(path);
    free(other);
}

static void test_help_exits(void **state)
{
    (void)state;
    clear_env();
    struct conf c = { 0 };
    char *err = NULL;
    fflush(stdout);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    enum config_result rc = load(&c, &err, "--workers=bad", "--help", NULL);
    fclose(stdout);
    stdout = saved;
    assert_int_equal(rc, CONFIG_EXIT);
    release(&c, err);
}

static void test_parsers(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(config_parse_ms("1m", 0, INT64_MAX, &v), 0);
    assert_int_equal(v, 60000);
    assert_int_equal(config_parse_ms("2h", 0, INT64_MAX, &v), 0);
    assert_int_equal(v, 7200000);
    assert_int_equal(config_parse_bytes("1G", 0, INT64_MAX, &v), 0);
    assert_int_equal(v, 1073741824);
    assert_int_equal(config_parse_int("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(config_parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
    bool b;
    assert_int_equal(config_parse_bool("YES", &b), 0);
    assert_true(b);
    assert_int_equal(config_parse_bool("", &b), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_bare_bool_flag),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_bad_env_names_its_variable),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_help_exits),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
