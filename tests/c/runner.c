/*
 * runner.c -- runs the C core tests, each in a forked child.
 *
 *   el-tests            run every test
 *   el-tests NAME...    run the named tests (exit status of a single test
 *                       is passed through: 0 pass, 77 skip, else fail)
 *   el-tests --list     print the test names, one a line
 *
 * EL_TEST_TIMEOUT sets the per-test alarm in seconds (default 30).
 */
#define _GNU_SOURCE

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST_ENTRY(name) {#name, test_##name},
static const test_case tests[] = {TEST_LIST(TEST_ENTRY)};
#undef TEST_ENTRY

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

/* Returns the child's exit status, or 1 for a signal or timeout. */
static int
run_one(const test_case *t, unsigned timeout)
{
    fflush(NULL);   /* or buffered output would be printed twice */
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        alarm(timeout);
        t->fn();
        exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return 1;
        }
    }
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        printf("%-4s %s\n", code == 0 ? "ok" : code == 77 ? "SKIP" : "FAIL",
               t->name);
        return code;
    }
    int sig = WTERMSIG(status);
    printf("FAIL %s (%s)\n", t->name,
           sig == SIGALRM ? "timeout" : strsignal(sig));
    return 1;
}

int
main(int argc, char **argv)
{
    const char *env = getenv("EL_TEST_TIMEOUT");
    unsigned timeout = env != NULL ? (unsigned)atoi(env) : 30;
    int failed = 0, skipped = 0, ran = 0, last = 0;

    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NTESTS; i++) {
            printf("%s\n", tests[i].name);
        }
        return 0;
    }
    for (size_t i = 0; i < NTESTS; i++) {
        int wanted = argc == 1;
        for (int a = 1; a < argc && !wanted; a++) {
            wanted = strcmp(argv[a], tests[i].name) == 0;
        }
        if (!wanted) {
            continue;
        }
        last = run_one(&tests[i], timeout);
        ran++;
        failed += last != 0 && last != 77;
        skipped += last == 77;
    }
    if (ran < argc - 1) {
        fprintf(stderr, "unknown test name (see --list)\n");
        return 2;
    }
    if (argc == 2) {
        return last;
    }
    printf("%d passed, %d skipped, %d failed\n", ran - failed - skipped,
           skipped, failed);
    return failed ? 1 : 0;
}
