/* files.h — internal: how the engine and its tool open the files they read and write.
 *
 * Every input is opened without blocking and checked with fstat before a
 * byte is read, so a FIFO nobody writes, /dev/zero or a directory in place of
 * a file is an error naming the path and what it is, never a hang or a read
 * without end. Text inputs have a size limit, checked from fstat too.
 * Outputs replace regular files atomically and write through anything else
 * that may be written (FIFOs, character devices, symlinks), as cp does.
 */
#ifndef FILES_H
#define FILES_H

#include <glib.h>
#include <sys/types.h>

/* Size limits of text inputs, far above any real file: a labels file with
 * LVIS's 1,203 classes and their synonyms is 20 kB, CLIP's vocab.json 1.6 MB. */
#define FILES_MAX_LABELS_BYTES (1 << 20)     /* labels and templates files */
#define FILES_MAX_JSON_BYTES (16 << 20)      /* config.json and the other JSON side files */
#define FILES_MAX_VOCAB_BYTES (64 << 20)     /* vocab.json, merges.txt, the BPE file (also inflated) */

/* "a directory", "a FIFO", "a character device", ... for a file type in @mode. */
const char *files_kind (mode_t mode);

/* Opens @path read-only (O_NONBLOCK, O_CLOEXEC) and checks that it is a
 * regular file of at most @max_bytes bytes (0: any size). Returns the
 * descriptor with *@size (if not NULL) set, or -1 with an IO error ("PATH: is a FIFO, not a
 * regular file"). */
int files_open_regular (const char *path, goffset max_bytes, goffset *size, GError **error);

/* Reads the regular file @path of at most @max_bytes whole, NUL-terminated
 * (*@len excludes the NUL; @len may be NULL). Errors as files_open_regular. */
gboolean files_read (const char *path, goffset max_bytes, char **data, gsize *len,
    GError **error);

/* Writes @len bytes to @path: a regular file or a new path through a
 * temporary file renamed over it (a symlink to a regular file: over its
 * target), so readers never see half a file; a FIFO or a character device
 * (/dev/stdout, /dev/null) is opened and written directly; a dangling
 * symlink creates its target. A directory or another kind of file is an
 * error. */
gboolean files_write (const char *path, const void *data, gsize len, GError **error);

#endif
