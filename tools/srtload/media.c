/* The TS file cut into paced messages: see srtload.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srtload.h"

#define PCR_HZ 27000000LL
#define PCR_JUMP_MAX (PCR_HZ * 2)      /* a larger step is a discontinuity, not time */

struct pcr_mark {
    size_t pkt;                        /* packet index */
    int64_t pcr;                       /* 27 MHz */
};

static int64_t pcr_of(const uint8_t *p)
{
    if (!(p[3] & 0x20) || p[4] < 7 || !(p[5] & 0x10))
        return -1;
    int64_t base = (int64_t)p[6] << 25 | (int64_t)p[7] << 17 | (int64_t)p[8] << 9 |
                   (int64_t)p[9] << 1 | p[10] >> 7;
    return base * 300 + ((p[10] & 1) << 8 | p[11]);
}

/* The PCRs of the first PID that carries one, as a time line that only goes
 * forward: a jump back or a jump of more than 2 s is a discontinuity and
 * counts as the mean step. Returns the number of marks (0: none). */
static size_t pcr_marks(const uint8_t *ts, size_t npkts, struct pcr_mark *marks)
{
    int pcr_pid = -1;
    size_t n = 0;
    int64_t last = 0, line = 0;
    for (size_t i = 0; i < npkts; i++) {
        const uint8_t *p = ts + i * TS_PACKET;
        int pid = (p[1] & 0x1f) << 8 | p[2];
        int64_t pcr = pcr_of(p);
        if (pcr < 0 || (pcr_pid != -1 && pid != pcr_pid))
            continue;
        pcr_pid = pid;
        if (n > 0) {
            int64_t step = pcr - last;
            if (step <= 0 || step > PCR_JUMP_MAX)
                step = n > 1 ? (line - 0) / (int64_t)(n - 1) : PCR_HZ / 25;
            line += step;
        }
        last = pcr;
        marks[n++] = (struct pcr_mark){ i, line };
    }
    return n;
}

/* The time of packet <i> in µs, interpolated by bytes between the marks
 * around it (extrapolated with the nearest pair's rate outside them). */
static int64_t packet_us(const struct pcr_mark *m, size_t n, size_t i, size_t *hint)
{
    size_t k = *hint;
    while (k + 2 < n && m[k + 1].pkt <= i)
        k++;
    *hint = k;
    const struct pcr_mark *a = &m[k], *b = &m[k + 1];
    double per_pkt = (double)(b->pcr - a->pcr) / (double)(b->pkt - a->pkt);
    double pcr = (double)a->pcr + per_pkt * ((double)i - (double)a->pkt);
    return (int64_t)(pcr / (PCR_HZ / 1000000.0));
}

int media_time(const uint8_t *ts, size_t len, int64_t rate, struct media *m, char *err,
               size_t errlen)
{
    size_t npkts = len / TS_PACKET;
    m->nmsgs = (npkts + MSG_PACKETS - 1) / MSG_PACKETS;
    if (npkts == 0) {
        snprintf(err, errlen, "no TS packets");
        return -1;
    }
    for (size_t i = 0; i < npkts; i++) {
        if (ts[i * TS_PACKET] != 0x47) {
            snprintf(err, errlen, "packet %zu has no sync byte: not MPEG-TS", i);
            return -1;
        }
    }
    m->msgs = calloc(m->nmsgs, sizeof(*m->msgs));
    struct pcr_mark *marks = rate > 0 ? NULL : calloc(npkts, sizeof(*marks));
    if (m->msgs == NULL || (rate == 0 && marks == NULL)) {
        free(marks);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t nmarks = rate > 0 ? 0 : pcr_marks(ts, npkts, marks);
    if (rate == 0 && (nmarks < 2 || marks[nmarks - 1].pcr <= marks[0].pcr)) {
        free(marks);
        snprintf(err, errlen, "fewer than two PCRs to pace by: give --rate");
        return -1;
    }
    size_t hint = 0;
    int64_t t0 = rate > 0 ? 0 : packet_us(marks, nmarks, 0, &hint);
    for (size_t k = 0; k < m->nmsgs; k++) {
        size_t first = k * MSG_PACKETS;
        size_t count = npkts - first < MSG_PACKETS ? npkts - first : MSG_PACKETS;
        m->msgs[k].off = (uint32_t)(first * TS_PACKET);
        m->msgs[k].len = (uint32_t)(count * TS_PACKET);
        m->msgs[k].at_us = rate > 0 ? (int64_t)((double)first * TS_PACKET * 8 * 1e6 / rate)
                                    : packet_us(marks, nmarks, first, &hint) - t0;
    }
    /* one pass: up to where a packet after the last one would be due */
    m->loop_us = rate > 0 ? (int64_t)((double)npkts * TS_PACKET * 8 * 1e6 / rate)
                          : packet_us(marks, nmarks, npkts, &hint) - t0;
    free(marks);
    if (m->loop_us <= 0) {
        snprintf(err, errlen, "the file lasts no time by its PCR: give --rate");
        return -1;
    }
    m->bitrate = (double)npkts * TS_PACKET * 8 * 1e6 / (double)m->loop_us;
    return 0;
}

int media_load(const char *path, int64_t rate, struct media *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd == -1 || fstat(fd, &st) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size / TS_PACKET * TS_PACKET;
    m->data = malloc(len ? len : 1);
    size_t got = 0;
    while (m->data != NULL && got < len) {
        ssize_t n = read(fd, m->data + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (m->data == NULL || got < len) {
        snprintf(err, errlen, "%s: cannot read it whole", path);
        media_free(m);
        return -1;
    }
    m->len = len;
    if (media_time(m->data, len, rate, m, err, errlen) == -1) {
        media_free(m);
        return -1;
    }
    return 0;
}

void media_free(struct media *m)
{
    free(m->data);
    free(m->msgs);
    memset(m, 0, sizeof(*m));
}
