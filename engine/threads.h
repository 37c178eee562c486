/* threads.h — internal: the thread count an engine call runs with. */
#ifndef THREADS_H
#define THREADS_H

/* Resolves @n_threads (<= 0: every core) and makes it the calling thread's
 * OpenMP team size, which the OpenMP build of OpenBLAS follows too. */
int engine_use_threads (int n_threads);

#endif
