/* The worker pool: work runs off the loop, results come back on it, the queue
 * is bounded, and freeing cancels what never ran. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "../../../../services/api/workpool.h"
#include "testutil.h"

struct job {
    pthread_t worker, loop;
    bool ran, done, cancelled;
    atomic_bool *gate;   /* when set, the work spins until it opens */
};

static void work(void *arg)
{
    struct job *j = arg;
    j->worker = pthread_self();
    while (j->gate && !atomic_load(j->gate))
        usleep(1000);
    j->ran = true;
}

static void done(void *arg, bool cancelled)
{
    struct job *j = arg;
    j->loop = pthread_self();
    j->done = true;
    j->cancelled = cancelled;
}

static void test_work_off_loop_done_on_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct workpool *p = workpool_new(base, 2, 8);
    assert_non_null(p);
    struct job jobs[6] = { 0 };
    for (int i = 0; i < 6; i++)
        assert_int_equal(workpool_submit(p, work, done, &jobs[i]), 0);
    bool all = false;
    for (int64_t end = clock_mono_ms() + 5000; !all && clock_mono_ms() < end;) {
        event_base_loop(base, EVLOOP_ONCE);
        all = true;
        for (int i = 0; i < 6; i++)
            all = all && jobs[i].done;
    }
    assert_true(all);
    for (int i = 0; i < 6; i++) {
        assert_true(jobs[i].ran);
        assert_false(jobs[i].cancelled);
        assert_false(pthread_equal(jobs[i].worker, pthread_self()));
        assert_true(pthread_equal(jobs[i].loop, pthread_self()));
    }
    assert_int_equal(workpool_depth(p), 0);
    workpool_free(p);
    event_base_free(base);
}

static void test_bounded_and_cancelled(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct workpool *p = workpool_new(base, 1, 3);
    atomic_bool gate = false;
    struct job jobs[4] = { { .gate = &gate } };
    for (int i = 0; i < 3; i++) {
        jobs[i].gate = &gate;
        assert_int_equal(workpool_submit(p, work, done, &jobs[i]), 0);
    }
    assert_int_equal(workpool_submit(p, work, done, &jobs[3]), -1);   /* full */
    assert_int_equal(workpool_depth(p), 3);
    usleep(20000);              /* the worker now holds job 0 at the gate */
    atomic_store(&gate, true);  /* free() joins: job 0 finishes, 1 and 2 never run */
    workpool_free(p);
    assert_true(jobs[0].done);
    for (int i = 0; i < 3; i++) {
        assert_true(jobs[i].done);
        assert_int_equal(jobs[i].cancelled, !jobs[i].ran);
    }
    assert_false(jobs[3].done);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_work_off_loop_done_on_loop),
        cmocka_unit_test(test_bounded_and_cancelled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
