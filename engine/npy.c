/* npy.c — the .npy format: magic, version, a Python-dict header, raw data. */
#include <string.h>

#include "files.h"
#include "npy.h"

#define NPY_ERROR (npy_error_quark ())
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

/* *INDENT-OFF* (indent cannot read the quark name) */
static G_DEFINE_QUARK (npy-error-quark, npy_error)
/* *INDENT-ON* */

static const char magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

void
npy_array_clear (struct npy_array *a)
{
  g_clear_pointer (&a->data, g_free);
}

static gboolean
fail (GError **error, const char *path, const char *what)
{
  g_set_error (error, NPY_ERROR, 0, "%s: %s", path, what);
  return FALSE;
}

/* The value text after 'key': in the header dict, or NULL. */
static const char *
dict_value (const char *header, const char *key)
{
  char *quoted = g_strdup_printf ("'%s'", key);
  const char *p = strstr (header, quoted);

  if (p) {
    p += strlen (quoted);
    while (*p == ' ' || *p == ':')
      p++;
  }
  g_free (quoted);
  return p;
}

/* NULL when the shape tuple at @p is good, else what is wrong with it. */
static char *
parse_shape (const char *p, struct npy_array *a)
{
  if (!p || *p != '(')
    return g_strdup ("the header has no shape tuple");
  p++;
  a->n_dims = 0;
  a->n_elements = 1;
  for (;;) {
    char *end;
    int64_t v;

    while (*p == ' ' || *p == ',')
      p++;
    if (*p == ')')
      return NULL;
    v = g_ascii_strtoll (p, &end, 10);
    if (end == p)
      return g_strdup_printf ("shape: dimension %d is not a number", a->n_dims + 1);
    if (v < 0)
      return g_strdup_printf ("shape: dimension %d is %" G_GINT64_FORMAT ", negative",
          a->n_dims + 1, v);
    if (a->n_dims == NPY_MAX_DIMS)
      return g_strdup_printf ("shape: more than %d dimensions", NPY_MAX_DIMS);
    if (v && a->n_elements > G_MAXINT32 * 16LL / v)
      return g_strdup_printf ("shape: more than %" G_GINT64_FORMAT " elements",
          (gint64) G_MAXINT32 * 16);
    a->shape[a->n_dims++] = v;
    a->n_elements *= v;
    p = end;
  }
}

/* NULL when the header describes an array this reader takes, else why not. */
static char *
parse_header (const char *header, struct npy_array *a, gboolean *fortran_order)
{
  const char *descr = dict_value (header, "descr");
  const char *fortran = dict_value (header, "fortran_order");

  if (!descr || !fortran)
    return g_strdup ("the header has no 'descr' or no 'fortran_order'");
  if (strncmp (fortran, "True", 4) == 0)
    *fortran_order = TRUE;
  else if (strncmp (fortran, "False", 5) == 0)
    *fortran_order = FALSE;
  else
    return g_strdup ("fortran_order is neither True nor False");
  if (strncmp (descr, "'<f4'", 5) == 0)
    a->dtype = NPY_FLOAT32;
  else if (strncmp (descr, "'<i4'", 5) == 0)
    a->dtype = NPY_INT32;
  else
    return g_strdup_printf ("dtype %.*s is not supported: need little-endian float32 ('<f4') "
        "or int32 ('<i4')", (int) strcspn (descr, ",}"), descr);
  return parse_shape (dict_value (header, "shape"), a);
}

/* Fortran order stores the first index fastest; the engine wants C order. */
static void *
to_c_order (const guint8 *src, const struct npy_array *a)
{
  guint8 *dst = g_malloc (MAX (a->n_elements, 1) * 4);
  int64_t index[NPY_MAX_DIMS] = { 0 };

  for (int64_t f = 0; f < a->n_elements; f++) {
    int64_t c = 0;

    for (int d = 0; d < a->n_dims; d++)
      c = c * a->shape[d] + index[d];
    memcpy (dst + c * 4, src + f * 4, 4);
    for (int d = 0; d < a->n_dims && ++index[d] == a->shape[d]; d++)
      index[d] = 0;
  }
  return dst;
}

gboolean
npy_read (const char *path, struct npy_array *out, GError **error)
{
  gboolean fortran_order = FALSE;
  char *bytes = NULL, *header, *problem;
  gsize size = 0, header_len, offset;

  memset (out, 0, sizeof *out);
  if (!files_read (path, 0, &bytes, &size, error))
    return FALSE;
  if (size < 10 || memcmp (bytes, magic, 6) != 0 || bytes[6] < 1 || bytes[6] > 3) {
    g_free (bytes);
    return fail (error, path, "not a .npy file (bad magic or version)");
  }
  if (bytes[6] == 1) {
    header_len = (guint8) bytes[8] | ((gsize) (guint8) bytes[9] << 8);
    offset = 10;
  } else {
    header_len = size < 12 ? G_MAXSIZE / 2 : (guint8) bytes[8] | ((gsize) (guint8) bytes[9] << 8)
        | ((gsize) (guint8) bytes[10] << 16) | ((gsize) (guint8) bytes[11] << 24);
    offset = 12;
  }
  if (size < offset || header_len > size - offset) {
    g_free (bytes);
    return fail (error, path, "truncated header");
  }
  header = g_strndup (bytes + offset, header_len);
  problem = parse_header (header, out, &fortran_order);
  g_free (header);
  if (problem) {
    fail (error, path, problem);
    g_free (problem);
    g_free (bytes);
    return FALSE;
  }
  offset += header_len;
  if ((gsize) out->n_elements * 4 != size - offset) {
    g_free (bytes);
    return fail (error, path, "data size does not match the shape");
  }
  out->data = fortran_order ? to_c_order ((const guint8 *) bytes + offset, out)
      : g_memdup2 (bytes + offset, out->n_elements * 4);
  g_free (bytes);
  return TRUE;
}

gboolean
npy_write (const char *path, enum npy_dtype dtype, int n_dims, const int64_t *shape,
    const void *data, GError **error)
{
  GString *h = g_string_new (NULL);
  GString *file = g_string_new_len (magic, 6);
  int64_t n = 1;
  gboolean ok;

  g_string_append_printf (h, "{'descr': '%s', 'fortran_order': False, 'shape': (",
      dtype == NPY_FLOAT32 ? "<f4" : "<i4");
  for (int i = 0; i < n_dims; i++) {
    g_string_append_printf (h, "%" G_GINT64_FORMAT "%s", shape[i],
        n_dims == 1 ? "," : (i + 1 < n_dims ? ", " : ""));
    n *= shape[i];
  }
  g_string_append (h, "), }");
  /* pad with spaces so the data starts on a 64-byte boundary, newline last */
  while ((10 + h->len + 1) % 64)
    g_string_append_c (h, ' ');
  g_string_append_c (h, '\n');
  g_string_append_c (file, 1);
  g_string_append_c (file, 0);
  g_string_append_c (file, (char) (h->len & 0xff));
  g_string_append_c (file, (char) (h->len >> 8));
  g_string_append_len (file, h->str, h->len);
  g_string_append_len (file, data, n * 4);
  ok = files_write (path, file->str, file->len, error);
  g_string_free (h, TRUE);
  g_string_free (file, TRUE);
  return ok;
}
