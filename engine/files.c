/* files.c — opening inputs without surprises, writing outputs without replacing what is not ours. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "clipseg-engine.h"
#include "engine-log.h"
#include "files.h"

const char *
files_kind (mode_t mode)
{
  if (S_ISREG (mode))
    return "a regular file";
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISFIFO (mode))
    return "a FIFO";
  if (S_ISCHR (mode))
    return "a character device";
  if (S_ISBLK (mode))
    return "a block device";
  if (S_ISSOCK (mode))
    return "a socket";
  return "not a regular file";
}

static gboolean
fail_errno (GError **error, const char *path, int errsv)
{
  return engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "%s", g_strerror (errsv));
}

int
files_open_regular (const char *path, goffset max_bytes, goffset * size, GError **error)
{
  struct stat st;
  int fd;

  /* non-blocking: opening a FIFO nobody writes returns at once */
  fd = g_open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    fail_errno (error, path, errno);
    return -1;
  }
  if (fstat (fd, &st) != 0) {
    fail_errno (error, path, errno);
    close (fd);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "is %s, not a regular file",
        files_kind (st.st_mode));
    close (fd);
    return -1;
  }
  if (max_bytes > 0 && st.st_size > max_bytes) {
    engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "is %" G_GOFFSET_FORMAT " bytes, more "
        "than the %" G_GOFFSET_FORMAT " this file may have", (goffset) st.st_size, max_bytes);
    close (fd);
    return -1;
  }
  if (size)
    *size = st.st_size;
  return fd;
}

gboolean
files_read (const char *path, goffset max_bytes, char **data, gsize *len, GError **error)
{
  goffset size;
  gsize done = 0;
  char *buf;
  int fd = files_open_regular (path, max_bytes, &size, error);

  if (fd < 0)
    return FALSE;
  buf = g_try_malloc ((gsize) size + 1);
  if (!buf) {
    close (fd);
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "no memory for its %"
        G_GOFFSET_FORMAT " bytes", size);
  }
  /* a file that shrinks meanwhile ends early; one that grows is read as it was */
  while (done < (gsize) size) {
    ssize_t n = read (fd, buf + done, (gsize) size - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fail_errno (error, path, errno);
      g_free (buf);
      close (fd);
      return FALSE;
    }
    if (n == 0)
      break;
    done += n;
  }
  close (fd);
  buf[done] = '\0';
  *data = buf;
  if (len)
    *len = done;
  return TRUE;
}

static gboolean
write_fd (int fd, const char *path, const void *data, gsize len, GError **error)
{
  const char *p = data;

  while (len > 0) {
    ssize_t n = write (fd, p, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail_errno (error, path, errno);
    p += n;
    len -= n;
  }
  return TRUE;
}

/* Opens @path for writing through any symlink, as a shell's '>' does. */
static gboolean
write_through (const char *path, const void *data, gsize len, GError **error)
{
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  gboolean ok;

  if (fd < 0)
    return fail_errno (error, path, errno);
  ok = write_fd (fd, path, data, len, error);
  if (close (fd) != 0 && ok)
    ok = fail_errno (error, path, errno);
  return ok;
}

static gboolean
replace_atomically (const char *path, mode_t mode, const void *data, gsize len, GError **error)
{
  GError *set_error = NULL;

  if (g_file_set_contents_full (path, data, (gssize) len, G_FILE_SET_CONTENTS_CONSISTENT,
          (int) (mode & 07777), &set_error))
    return TRUE;
  /* GLib's message names the file */
  g_set_error_literal (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_IO, set_error->message);
  g_error_free (set_error);
  return FALSE;
}

gboolean
files_write (const char *path, const void *data, gsize len, GError **error)
{
  struct stat st;
  char *target;
  gboolean ok;

  if (g_stat (path, &st) != 0) {
    if (errno != ENOENT)
      return fail_errno (error, path, errno);
    /* a dangling symlink names the file to create */
    if (g_lstat (path, &st) == 0)
      return write_through (path, data, len, error);
    return replace_atomically (path, 0666, data, len, error);
  }
  if (S_ISFIFO (st.st_mode) || S_ISCHR (st.st_mode))
    return write_through (path, data, len, error);
  if (!S_ISREG (st.st_mode))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "is %s, not a file to write",
        files_kind (st.st_mode));
  /* the rename goes over the file a symlink leads to, not over the link */
  target = realpath (path, NULL);
  if (!target)
    return fail_errno (error, path, errno);
  ok = replace_atomically (target, st.st_mode, data, len, error);
  free (target);
  return ok;
}
