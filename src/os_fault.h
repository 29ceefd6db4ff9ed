/*
 * os_fault.h - control of the fault-injecting OS backend (tests only).
 */
#ifndef DH_OS_FAULT_H
#define DH_OS_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* fail_commit_in: the commit that many calls from now fails (0 = the next
 * one), -1 for none.  fail_all_commits: every commit fails while set.
 * fail_reserve_in: likewise for reserve.  Call dh_fault_set(-1, false, -1)
 * to switch injection off. */
void dh_fault_set(long fail_commit_in, bool fail_all_commits,
                  long fail_reserve_in);

/* How many commits have been attempted since the process started. */
unsigned long dh_fault_commits_seen(void);

/* One call of dh_os_advise_huge. */
typedef struct dh_fault_advice {
    uintptr_t p;
    size_t size;
    bool huge;
} dh_fault_advice_t;
#define DH_FAULT_ADVICE_LOG 64u

/* Copy up to cap of the first DH_FAULT_ADVICE_LOG advice calls since the
 * last clear into out; returns how many calls there were. */
unsigned long dh_fault_advice(dh_fault_advice_t *out, unsigned long cap);
void dh_fault_advice_clear(void);

/* While refuse is set, huge-page advice fails as on a system without huge
 * pages. */
void dh_fault_refuse_advice(bool refuse);

/* While refuse is set, write tracking cannot be had, as on a kernel
 * without asynchronous userfaultfd write protection. */
void dh_fault_refuse_wp(bool refuse);

#endif /* DH_OS_FAULT_H */
