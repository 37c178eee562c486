/* test-util.h — what the engine's input tests share (test-loader.c,
 * test-labels.c, test-segment-args.c): checks of an expected error that fail
 * the case and go on, the base checkpoints generated at build time by
 * tests/reference/make_checkpoint.py into LOADER_DATA_DIR (see meson.build),
 * small files, random pixels and cases run in a subprocess. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdarg.h>

#include "clipseg-engine.h"

#define IO CLIPSEG_ENGINE_ERROR_IO
#define FORMAT CLIPSEG_ENGINE_ERROR_FORMAT
#define MODEL CLIPSEG_ENGINE_ERROR_MODEL
#define INVALID CLIPSEG_ENGINE_ERROR_INVALID

/* names of the base checkpoints inside LOADER_DATA_DIR */
#define HF "loader-hf"
#define SHARDED "loader-hf-sharded"
#define HF_F16 "loader-hf-f16"
#define HF_BF16 "loader-hf-bf16"
#define OPENCLIP "loader-openclip"
#define OPENCLIP_FILE "open_clip_model.safetensors"

/* the hyperparameters the bases are generated with (meson.build) */
#define HF_VISION_WIDTH 64
#define HF_TEXT_WIDTH 48
#define OC_WIDTH 128
#define N_LAYERS 2
#define PATCH 8
#define IMAGE 32
#define EMBED 32
#define VOCAB (256 + 256 + 100 + 2)

/* Fails the current case with the message and goes on. */
void check_failed (const char *format, ...) G_GNUC_PRINTF (1, 2);
/* Checks @error against the expected code and the substrings that follow
 * (NULL-terminated), failing the case for each that does not hold. */
void check_error (const char *what, GError *error, int code, ...);
void check_error_v (const char *what, GError *error, int code, va_list subs);

/* @path loaded, or the program stops naming why. */
struct clipseg_model *load_ok (const char *path);

/* The path of base checkpoint @name. */
char *base_path (const char *name);
/* Whether the bases were generated; skips the case with the reason when not. */
gboolean have_bases (void);

char *path_in (const char *dir, const char *file);
void write_file (const char *path, const void *data, gsize len);
void write_text (const char *path, const char *text);

/* 3 x @h x @w values in [-2, 2), the same for one @seed. */
float *random_pixels (int h, int w, guint32 seed);

/* Runs the current test path in a subprocess (@dir passed in
 * CLIPSEG_LOADER_CASE) and requires it to pass: for cases that could crash. */
void run_in_subprocess (const char *dir);

#endif
