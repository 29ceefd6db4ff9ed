/*
 * threads_many.c - 10,000 threads alive at once.  Each has a 64 KiB stack,
 * mallocs and writes a small block, then waits on a condition variable
 * until every thread has started; then all are released, check and free
 * their block, and are joined.  Every pthread_create must succeed.
 *
 * Run with libdetheap.so preloaded (by run_preloaded.sh), or without it:
 * libc's malloc must pass too.  When the machine cannot start that many
 * threads at all (kernel.threads-max, kernel.pid_max, the cgroup's
 * pids.max, RLIMIT_NPROC, vm.max_map_count), the program says which limit
 * and exits 77 (skipped) before starting any.
 *
 * Usage: threads_many [N]   (default 10000)
 */
#include "thread_common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define STACK_SIZE (64 * 1024)

static long nthreads = 10000;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_started = PTHREAD_COND_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static long started;
static int go;

static void *worker(void *arg) {
    long i = (long)(intptr_t)arg;
    th_blk_t b = {NULL, (uint32_t)(16 + i % 113), 0};
    b.p = malloc(b.n);
    if (b.p == NULL) return (void *)1;
    th_mark(&b, (unsigned char)(i * 7 + 1));
    pthread_mutex_lock(&lock);
    if (++started == nthreads) pthread_cond_signal(&all_started);
    while (!go) pthread_cond_wait(&released, &lock);
    pthread_mutex_unlock(&lock);
    int ok = th_marked(&b);
    free(b.p);
    return ok ? NULL : (void *)2;
}

static void release_all(void) {
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&released);
    pthread_mutex_unlock(&lock);
}

static void test_many_alive(void **state) {
    (void)state;
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    assert_non_null(tid);
    pthread_attr_t attr;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, STACK_SIZE), 0);
    long created = 0;
    int rc = 0;
    for (; created < nthreads; created++) {
        rc = pthread_create(&tid[created], &attr, worker,
                            (void *)(intptr_t)created);
        if (rc != 0) break;
    }
    if (rc == 0) {
        pthread_mutex_lock(&lock);
        while (started < nthreads) pthread_cond_wait(&all_started, &lock);
        pthread_mutex_unlock(&lock);
        print_message("all %ld threads started and alive at once\n", nthreads);
    }
    release_all(); /* also when a create failed: the others must end */
    long bad = 0;
    for (long i = 0; i < created; i++) {
        void *ret = NULL;
        assert_int_equal(pthread_join(tid[i], &ret), 0);
        if (ret != NULL) bad++;
    }
    pthread_attr_destroy(&attr);
    free(tid);
    if (rc != 0)
        fail_msg("pthread_create of thread #%ld (of %ld, %ld alive) failed: "
                 "%d (%s)", created, nthreads, created, rc, strerror(rc));
    if (bad != 0) fail_msg("%ld threads found their block corrupted", bad);
}

/* ---- can the machine run N threads at all? ------------------------------ */

static long read_long(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char buf[64];
    long v = -1;
    if (fgets(buf, sizeof buf, f) != NULL) {
        if (strncmp(buf, "max", 3) == 0)
            v = -1; /* cgroup: no limit */
        else
            v = atol(buf);
    }
    fclose(f);
    return v;
}

/* Threads (tasks) in the whole system now: /proc/loadavg "r/total". */
static long system_tasks(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    long running = 0, total = 0;
    if (f == NULL) return 0;
    if (fscanf(f, "%*s %*s %*s %ld/%ld", &running, &total) != 2) total = 0;
    fclose(f);
    return total;
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* The pids.max of this process's cgroup (v2, else v1's pids controller),
 * and its pids.current; -1 when unlimited or unknown. */
static long cgroup_pids(long *current) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[512], path[700];
    long max = -1;
    *current = 0;
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = 0;
        char *rest = NULL;
        if (strncmp(line, "0::", 3) == 0)
            rest = line + 3, snprintf(path, sizeof path, "/sys/fs/cgroup%s", rest);
        else if ((rest = strstr(line, ":pids:")) != NULL)
            snprintf(path, sizeof path, "/sys/fs/cgroup/pids%s", rest + 6);
        else
            continue;
        char file[760];
        snprintf(file, sizeof file, "%s/pids.max", path);
        long m = read_long(file);
        if (m >= 0 && (max < 0 || m < max)) {
            max = m;
            snprintf(file, sizeof file, "%s/pids.current", path);
            *current = read_long(file);
        }
    }
    fclose(f);
    return max;
}

/* NULL when n threads can start under libc's malloc, else which limit
 * does not allow it (in why). */
static const char *machine_limit(long n, char *why, size_t len) {
    const long margin = 200;
    long tasks = system_tasks();
    long v = read_long("/proc/sys/kernel/threads-max");
    if (v >= 0 && v - tasks < n + margin) {
        snprintf(why, len, "kernel.threads-max is %ld with %ld tasks running: "
                 "room for fewer than %ld more threads", v, tasks, n);
        return why;
    }
    v = read_long("/proc/sys/kernel/pid_max");
    if (v >= 0 && v - tasks < n + margin) {
        snprintf(why, len, "kernel.pid_max is %ld with %ld tasks running: "
                 "fewer than %ld free thread ids", v, tasks, n);
        return why;
    }
    long current;
    v = cgroup_pids(&current);
    if (v >= 0 && v - current < n + margin) {
        snprintf(why, len, "the cgroup's pids.max is %ld (%ld in use)", v,
                 current);
        return why;
    }
    struct rlimit rl;
    /* RLIMIT_NPROC counts every thread of the user; root is exempt */
    if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 &&
        rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < n + margin) {
        snprintf(why, len, "RLIMIT_NPROC (ulimit -u) is %ld, below %ld threads",
                 (long)rl.rlim_cur, n + margin);
        return why;
    }
    /* each thread's stack is a mapping and its guard page another */
    long maps = count_lines("/proc/self/maps");
    v = read_long("/proc/sys/vm/max_map_count");
    if (v >= 0 && v - maps < 2 * n + 1000) {
        snprintf(why, len, "vm.max_map_count is %ld (%ld maps in use): "
                 "%ld threads need about %ld", v, maps, n, 2 * n + 1000);
        return why;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && atol(argv[1]) > 0) nthreads = atol(argv[1]);
    printf("allocator: %s\n", th_allocator());
    char why[256];
    if (machine_limit(nthreads, why, sizeof why) != NULL) {
        printf("SKIP: this machine cannot run %ld threads at once: %s\n",
               nthreads, why);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
