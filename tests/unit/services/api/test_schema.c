/* Migrations are dense and ordered (migrations.c indexes them by version),
 * and stored session values parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/api/migrations.h"
#include "../../../../services/api/sessions.h"

static void test_migrations_dense(void **state)
{
    (void)state;
    assert_true(migrations_count >= 1);
    for (size_t i = 0; i < migrations_count; i++) {
        assert_int_equal(migrations[i].version, (int)i + 1);
        assert_non_null(migrations[i].name);
        assert_true(strlen(migrations[i].sql) > 0);
    }
}

static void test_session_values(void **state)
{
    (void)state;
    struct session s;
    const char *ok = "{\"stream\":\"cam1\",\"mode\":\"request\",\"user\":3}";
    assert_int_equal(session_parse(ok, strlen(ok), &s), 0);
    assert_string_equal(s.stream, "cam1");
    assert_int_equal(s.mode, MODE_REQUEST);
    static const char *const bad[] = {
        "", "{}", "null", "{\"stream\":\"cam1\"}", "{\"stream\":\"a b\",\"mode\":\"publish\"}",
        "{\"stream\":\"cam1\",\"mode\":\"watch\"}", "{\"stream\":1,\"mode\":\"publish\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(session_parse(bad[i], strlen(bad[i]), &s), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations_dense),
        cmocka_unit_test(test_session_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
