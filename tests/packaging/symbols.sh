#!/bin/sh
# symbols.sh - the shared library's ABI surface.  Every exported function
# must be a public dh_ function declared in detheap.h, a malloc-family or
# C++ operator new/delete replacement, one of the pthread wrappers that
# give each thread its heap (src/thread.c), one of the exec wrappers
# that write a trace out before exec (src/override/exec.c), or _exit and
# _Exit, which finish the trace as exit does (src/override/exit.c); every function
# detheap.h
# declares must be exported; and the SONAME must be the expected one.
#
# usage: symbols.sh LIBDETHEAP.SO DETHEAP.H EXPECTED_SONAME
set -eu
lib=$1 header=$2 soname=$3
status=0

got=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$got" != "$soname" ]; then
    echo "SONAME is '$got', expected '$soname'" >&2
    status=1
fi

# Public functions: the name in each DH_API declaration of the header.
public=$(grep 'DH_API' "$header" | grep -v '#define' |
         grep -oE '\(?dh_[a-z0-9_]+\)? *\(' | tr -d '() ' | sort -u)
[ -n "$public" ] || { echo "no DH_API declaration found in $header" >&2; exit 1; }

malloc_family='malloc free calloc realloc reallocarray posix_memalign
aligned_alloc memalign valloc pvalloc malloc_usable_size mallinfo mallinfo2
malloc_trim malloc_stats malloc_info mallopt'
pthread_wrappers='pthread_create pthread_join pthread_tryjoin_np
pthread_timedjoin_np pthread_detach'
exec_wrappers='execve execv execvp execvpe execl execlp execle fexecve
execveat _exit _Exit'

exported=$(nm -D --defined-only "$lib" | awk 'NF == 3 {print $3}' |
           sed 's/@.*//' | sort -u)
for sym in $exported; do
    case " $(echo $public $malloc_family $pthread_wrappers $exec_wrappers) " in
        *" $sym "*) continue ;;
    esac
    case "$sym" in
        # operator new / new[] (plain, nothrow, aligned), delete / delete[]
        _Znwm | _Znam | _ZnwmRKSt9nothrow_t | _ZnamRKSt9nothrow_t | \
        _ZnwmSt11align_val_t* | _ZnamSt11align_val_t* | \
        _ZdlPv* | _ZdaPv*) continue ;;
    esac
    echo "unexpected exported symbol: $sym" >&2
    status=1
done

for sym in $public; do
    echo "$exported" | grep -qx "$sym" || {
        echo "declared in detheap.h but not exported: $sym" >&2
        status=1
    }
done

[ $status -eq 0 ] &&
    echo "packaging_symbols: $(echo "$exported" | wc -l) exported symbols ok, SONAME $got"
exit $status
