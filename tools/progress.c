/* SPDX-License-Identifier: MIT */
/* The progress bar (see progress.h). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

/* The bar on the terminal, if any: one terminal, one bar. */
static struct progress *shown;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_begin(struct progress *p, const char *label, uint64_t total, int quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->drawn = 0;
    p->label = label;
    p->total = total;
    p->start = p->last = now();
}

static void fmt_eta(double s, char *buf, size_t len)
{
    if (s < 0 || s > 359999) {
        snprintf(buf, len, "--:--");
        return;
    }
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%u:%02u", t / 60, t % 60);
}

void progress_update(struct progress *p, uint64_t done)
{
    if (!p->enabled)
        return;
    double t = now();
    if (t - p->start < 0.5 || t - p->last < 0.1)
        return;
    p->last = t;
    double el = t - p->start;
    double rate = (double)done / el;
    char d[32], tot[32], r[32], eta[32];
    cli_format_bytes(done, d, sizeof d);
    cli_format_bytes(p->total, tot, sizeof tot);
    cli_format_bytes((uint64_t)rate, r, sizeof r);
    fmt_eta(rate > 0 && p->total >= done ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    char bar[21];
    int fill = (int)(frac * 20.0);
    for (int i = 0; i < 20; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %s/s  ETA %s\033[K", p->label, bar,
            (int)(frac * 100.0), d, tot, r, eta);
    fflush(stderr);
    p->drawn = 1;
    shown = p;
}

void progress_note(struct progress *p, const char *what)
{
    if (!p->enabled || now() - p->start < 0.5)
        return;
    fprintf(stderr, "\r%s: %s...\033[K", p->label, what);
    fflush(stderr);
    p->drawn = 1;
    shown = p;
}

void progress_end(struct progress *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = 0;
    if (shown == p)
        shown = NULL;
}

void progress_hide(void)
{
    if (shown)
        progress_end(shown);
}
