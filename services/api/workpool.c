/* Worker threads: see workpool.h. Jobs move from <todo> (under the lock) to a
 * worker, then to <finished> (under the lock); one 8-byte write to the eventfd
 * wakes the loop, which takes the whole finished list and runs the <done>
 * callbacks without the lock held. */
#include "workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "sluice/log.h"

#define MAX_THREADS 64

struct job {
    work_fn work;
    work_done_fn done;
    void *arg;
    struct job *next;
};

/* A FIFO of jobs. */
struct jobq {
    struct job *head, *tail;
};

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct jobq todo, finished;    /* under <lock> */
    bool stopping;                 /* under <lock> */
    unsigned depth;                /* loop only: submitted, not handed back */
    unsigned max_queue;
    int efd;
    struct event *ev;
    pthread_t thread[MAX_THREADS];
    unsigned nthreads;
};

static void jobq_push(struct jobq *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct job *jobq_pop(struct jobq *q)
{
    struct job *j = q->head;
    if (j) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return j;
}

static void notify_loop(struct workpool *p)
{
    uint64_t one = 1;
    while (write(p->efd, &one, sizeof(one)) == -1 && errno == EINTR)
        ;   /* EAGAIN: the counter is saturated, the loop will wake anyway */
}

static void *worker_main(void *arg)
{
    struct workpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && p->todo.head == NULL)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping)
            break;
        struct job *j = jobq_pop(&p->todo);
        pthread_mutex_unlock(&p->lock);
        j->work(j->arg);
        pthread_mutex_lock(&p->lock);
        jobq_push(&p->finished, j);
        notify_loop(p);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Runs <done> for every job in <q>, freeing each. */
static void run_done(struct workpool *p, struct job *j, bool cancelled)
{
    while (j) {
        struct job *next = j->next;
        p->depth--;
        j->done(j->arg, cancelled);
        free(j);
        j = next;
    }
}

static void on_wakeup(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct workpool *p = arg;
    uint64_t n;
    while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
        ;
    pthread_mutex_lock(&p->lock);
    struct job *list = p->finished.head;
    p->finished.head = p->finished.tail = NULL;
    pthread_mutex_unlock(&p->lock);
    run_done(p, list, false);
}

struct workpool *workpool_new(struct event_base *base, unsigned threads, unsigned max_queue)
{
    struct workpool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->max_queue = max_queue;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd == -1 ||
        (p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_wakeup, p)) == NULL ||
        event_add(p->ev, NULL) == -1) {
        log_error("workpool: cannot set up the wake-up eventfd: %s", strerror(errno));
        workpool_free(p);
        return NULL;
    }
    for (; p->nthreads < threads && p->nthreads < MAX_THREADS; p->nthreads++) {
        int rc = pthread_create(&p->thread[p->nthreads], NULL, worker_main, p);
        if (rc != 0) {
            log_error("workpool: cannot start a thread: %s", strerror(rc));
            workpool_free(p);
            return NULL;
        }
    }
    return p;
}

int workpool_submit(struct workpool *p, work_fn work, work_done_fn done, void *arg)
{
    if (p->depth >= p->max_queue)
        return -1;
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -1;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&p->lock);
    bool stopping = p->stopping;
    if (!stopping) {
        jobq_push(&p->todo, j);
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    if (stopping) {
        free(j);
        return -1;
    }
    p->depth++;
    return 0;
}

unsigned workpool_depth(const struct workpool *p)
{
    return p->depth;
}

void workpool_free(struct workpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->thread[i], NULL);
    /* the threads are gone: the lists are ours alone */
    run_done(p, p->finished.head, false);
    run_done(p, p->todo.head, true);
    if (p->ev)
        event_free(p->ev);
    if (p->efd != -1)
        close(p->efd);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
