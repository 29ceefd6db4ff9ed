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

#endif /* DH_OS_FAULT_H */
