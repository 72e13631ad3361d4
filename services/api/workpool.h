/* Worker threads for slow, CPU-bound work (password hashing), so that the
 * event loop never waits on it. A job's <work> runs on a worker thread; its
 * <done> runs afterwards on the event loop, handed back through an eventfd.
 * The queue is bounded: a full queue refuses new jobs at once. */
#ifndef SLUICE_API_WORKPOOL_H
#define SLUICE_API_WORKPOOL_H

#include <stdbool.h>

struct event_base;
struct workpool;

/* <work> must touch nothing but <arg> (and thread-safe libraries). <done>
 * gets <cancelled> = true when the pool was freed before the work ran. */
typedef void (*work_fn)(void *arg);
typedef void (*work_done_fn)(void *arg, bool cancelled);

/* Starts <threads> workers. NULL (logged) on failure. */
struct workpool *workpool_new(struct event_base *base, unsigned threads,
                              unsigned max_queue);

/* Queues a job. Returns 0, or -1 when the queue is full or the pool stopping,
 * in which case neither callback runs. */
int workpool_submit(struct workpool *p, work_fn work, work_done_fn done, void *arg);

/* Jobs queued or running, not yet handed back. */
unsigned workpool_depth(const struct workpool *p);

/* Stops the workers (a job running finishes first), then calls <done> for
 * every job not yet handed back: cancelled if its work never ran. */
void workpool_free(struct workpool *p);

#endif
