/* threads.h — internal: the thread count an engine call runs with. */
#ifndef THREADS_H
#define THREADS_H

/* @n_threads with <= 0 meaning every core, capped at CLIPSEG_MAX_THREADS and
 * at OpenMP's thread limit (OMP_THREAD_LIMIT). */
int engine_resolve_threads (int n_threads);

/* Resolves @n_threads as engine_resolve_threads() does and makes it the
 * calling thread's OpenMP team size, which the OpenMP build of OpenBLAS
 * follows too; turns off dynamic team sizes for the calling thread. */
int engine_use_threads (int n_threads);

#endif
