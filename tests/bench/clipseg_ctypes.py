"""The C engine (libclipseg-engine.so) through ctypes, and the element's view of a frame.

Shared by tests/bench/quality.py (the quality benchmark) and tests/world/test_quality.py
(the regression test of the shipped model), so both measure exactly the same thing:

  - `Engine(lib).segmenter(model_dir, class_names)` loads a checkpoint, encodes the class
    queries (imagenet80 templates, no background class) and returns a `Segmenter` whose
    `label_map(rgb_u8, ...)` preprocesses a frame as the clipseg element does (keep-ratio
    resize so the short side is `resolution`, long side at most 2048, CLIP mean/std) and
    calls clipseg_state_segment; the label map comes back at the inference size, as in the
    element's GstClipsegMeta.
  - `frame_index(...)` and `gt_to_map(...)` bring a label map and a ground truth onto one
    grid the way the element maps its label map onto the frame (gst/clipseg-overlay.c:
    frame pixel x takes label map pixel floor(x * map_w / frame_w)).
  - `Confusion` accumulates a dataset-level confusion matrix: mIoU over the classes present
    (intersection and union summed over all images), pixel accuracy, per-class IoU.

Nothing here re-implements the segmentation: the dense modes, windows and the per-pixel
decision are the engine's.  Only the input resize is done in numpy (bilinear with centre
alignment and edge clamping, the interpolation of gst/clipseg-pixels.c, in float instead
of the element's 8-bit steps).
"""
import ctypes
import os

import numpy as np

LONG_SIDE_MAX = 2048  # gst/gstclipseg.c
MODES = ("vanilla", "maskclip", "sclip", "clearclip", "naclip", "scclip")
# A mode may carry refinements: "maskclip+ks1+pd0.5" (MaskCLIP's key smoothing and prompt
# denoising thresholds), "sclip+pamr10" (PAMR steps); see mode_spec().
REFINED_MODES = ("maskclip+ks1+pd0.5", "sclip+pamr10")
_REFINEMENTS = {"ks": ("ks_thresh", float), "pd": ("pd_thresh", float), "pamr": ("pamr_steps", int)}


def mode_spec(spec):
    """'MODE[+ksT][+pdT][+pamrN]' -> (MODE, {segment params field: value})."""
    name, *opts = spec.split("+")
    fields = {}
    for o in opts:
        key = next((k for k in sorted(_REFINEMENTS, key=len, reverse=True) if o.startswith(k)), None)
        if key is None:
            raise ValueError("unknown refinement %r in mode %r" % (o, spec))
        field, kind = _REFINEMENTS[key]
        fields[field] = kind(o[len(key):])
    return name, fields

# The regression set of tests/world/test_quality.py, measured by quality.py as well: the first
# scenes of the benchmark's set, sclip at the element's defaults for the 64-px world model
# (resolution 96 = 1.5 x 64, window 64, stride 32).
REGRESSION = {"seeds": list(range(40)), "size": (256, 192), "mode": "sclip", "resolution": 96, "window": 64,
              "stride": 32}


class GError(ctypes.Structure):
    _fields_ = [("domain", ctypes.c_uint32), ("code", ctypes.c_int), ("message", ctypes.c_char_p)]


class ModelParams(ctypes.Structure):
    _fields_ = [("vocab_path", ctypes.c_char_p), ("activation", ctypes.c_int), ("precision", ctypes.c_int)]


class SegmentParams(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("crop", ctypes.c_int), ("stride", ctypes.c_int),
                ("logit_scale", ctypes.c_float), ("prob_thd", ctypes.c_float),
                ("area_thd", ctypes.c_float), ("ks_thresh", ctypes.c_float),
                ("pd_thresh", ctypes.c_float), ("pamr_steps", ctypes.c_int)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("naming", ctypes.c_char_p), ("dtype", ctypes.c_char_p), ("activation", ctypes.c_int),
                ("layer_norm_eps", ctypes.c_float), ("embed_dim", ctypes.c_int),
                ("image_size", ctypes.c_int), ("patch_size", ctypes.c_int),
                ("vision_width", ctypes.c_int), ("vision_layers", ctypes.c_int),
                ("vision_heads", ctypes.c_int), ("vision_mlp", ctypes.c_int),
                ("text_width", ctypes.c_int), ("text_layers", ctypes.c_int),
                ("text_heads", ctypes.c_int), ("text_mlp", ctypes.c_int),
                ("context_length", ctypes.c_int), ("vocab_size", ctypes.c_int),
                ("logit_scale", ctypes.c_float), ("image_mean", ctypes.c_float * 3),
                ("image_std", ctypes.c_float * 3), ("n_params", ctypes.c_int64),
                ("precision", ctypes.c_int), ("gemm_library", ctypes.c_char_p),
                ("gemm_isa", ctypes.c_char_p), ("attention_kernel", ctypes.c_char_p)]


class EngineError(RuntimeError):
    pass


def find_library(build_dir):
    """libclipseg-engine.so in a meson build directory."""
    path = os.path.join(build_dir, "engine", "libclipseg-engine.so")
    if not os.path.exists(path):
        raise EngineError("%s not found: build first (meson setup %s && ninja -C %s)"
                          % (path, build_dir, build_dir))
    return path


class Engine:
    def __init__(self, lib_path):
        L = self.lib = ctypes.CDLL(lib_path)
        self.glib = ctypes.CDLL("libglib-2.0.so.0")
        P, I, F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
        E = ctypes.POINTER(ctypes.POINTER(GError))

        def fn(name, res, *args):
            f = getattr(L, name)
            f.restype, f.argtypes = res, list(args)
            return f

        fn("clipseg_model_default_params", ModelParams)
        fn("clipseg_precision_from_name", I, ctypes.c_char_p, ctypes.POINTER(I))
        fn("clipseg_precision_name", ctypes.c_char_p, I)
        fn("clipseg_model_load", P, ctypes.c_char_p, ModelParams, E)
        fn("clipseg_model_unref", None, P)
        fn("clipseg_model_get_info", ctypes.POINTER(ModelInfo), P)
        fn("clipseg_labels_parse_file_text", P, ctypes.c_char_p, E)
        fn("clipseg_labels_free", None, P)
        fn("clipseg_labels_n_classes", I, P)
        fn("clipseg_templates_load", P, ctypes.c_char_p, E)
        fn("clipseg_queries_new", P, P, P, P, I, E)
        fn("clipseg_queries_free", None, P)
        fn("clipseg_state_new", P, P, I)
        fn("clipseg_state_free", None, P)
        fn("clipseg_segment_default_params", SegmentParams)
        fn("clipseg_mode_from_name", I, ctypes.c_char_p, ctypes.POINTER(I))
        fn("clipseg_state_segment", I, P, ctypes.POINTER(F), I, I, P,
           ctypes.POINTER(SegmentParams), I, I, ctypes.POINTER(F), ctypes.POINTER(ctypes.c_int32), E)
        fn("clipseg_resize_dims", None, I, I, I, I, ctypes.POINTER(I), ctypes.POINTER(I))
        self.glib.g_strfreev.argtypes = [P]
        self.glib.g_error_free.argtypes = [ctypes.POINTER(GError)]

    def _check(self, ok, err, what):
        if not ok:
            msg = err.contents.message.decode("utf-8", "replace") if err else "unknown error"
            if err:
                self.glib.g_error_free(err)
            raise EngineError("%s: %s" % (what, msg))

    def mode(self, name):
        m = ctypes.c_int()
        if not self.lib.clipseg_mode_from_name(name.encode(), ctypes.byref(m)):
            raise EngineError("unknown mode %r" % name)
        return m.value

    def resize_dims(self, width, height, short_side, long_max=LONG_SIDE_MAX):
        w, h = ctypes.c_int(), ctypes.c_int()
        self.lib.clipseg_resize_dims(width, height, short_side, long_max, ctypes.byref(w), ctypes.byref(h))
        return w.value, h.value

    def segmenter(self, model_dir, class_names, templates="imagenet80", n_threads=2, precision="auto"):
        return Segmenter(self, model_dir, class_names, templates, n_threads, precision)


class Segmenter:
    """One model, one class list (one name per class, no background), one engine state."""

    def __init__(self, engine, model_dir, class_names, templates, n_threads, precision="auto"):
        self.e = engine
        L = engine.lib
        self.model = self.labels = self.queries = self.state = None
        err = ctypes.POINTER(GError)()
        params = L.clipseg_model_default_params()
        asked = ctypes.c_int()
        if not L.clipseg_precision_from_name(precision.encode(), ctypes.byref(asked)):
            raise EngineError("unknown precision %r" % precision)
        params.precision = asked.value
        self.model = L.clipseg_model_load(os.fsencode(model_dir), params, ctypes.byref(err))
        engine._check(self.model, err, "loading %s" % model_dir)
        self.info = L.clipseg_model_get_info(self.model).contents
        self.mean = np.array(self.info.image_mean[:], np.float32)
        self.std = np.array(self.info.image_std[:], np.float32)
        text = "\n".join(class_names).encode()
        self.labels = L.clipseg_labels_parse_file_text(text, ctypes.byref(err))
        engine._check(self.labels, err, "labels")
        self.n_classes = L.clipseg_labels_n_classes(self.labels)
        tmpl = L.clipseg_templates_load(templates.encode(), ctypes.byref(err))
        engine._check(tmpl, err, "templates %s" % templates)
        self.queries = L.clipseg_queries_new(self.model, self.labels, tmpl, n_threads, ctypes.byref(err))
        engine.glib.g_strfreev(tmpl)
        engine._check(self.queries, err, "text queries")
        self.state = L.clipseg_state_new(self.model, n_threads)

    def runs_in(self):
        """(precision, GEMM library, ISA) the model's linears actually run in."""
        return (self.e.lib.clipseg_precision_name(self.info.precision).decode(),
                (self.info.gemm_library or b"?").decode(), (self.info.gemm_isa or b"?").decode())

    def close(self):
        L = self.e.lib
        if self.state:
            L.clipseg_state_free(self.state)
        if self.queries:
            L.clipseg_queries_free(self.queries)
        if self.labels:
            L.clipseg_labels_free(self.labels)
        if self.model:
            L.clipseg_model_unref(self.model)
        self.model = self.labels = self.queries = self.state = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def inference_size(self, width, height, resolution):
        """(w, h) the element infers at: 0 = 1.5x the native size, at least 128, as the
        element's default."""
        short = resolution if resolution > 0 else max(self.info.image_size * 3 // 2, 128)
        w, h = self.e.resize_dims(width, height, short)
        p = self.info.patch_size
        return max(w, p), max(h, p)

    def preprocess(self, rgb, resolution):
        """uint8 [H,W,3] -> normalised float32 [3,h,w] at the element's inference size."""
        H, W = rgb.shape[:2]
        w, h = self.inference_size(W, H, resolution)
        x = resize_bilinear(rgb.astype(np.float32) / 255.0, h, w)
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1), np.float32)

    def segment(self, pixels, mode="sclip", window=-1, stride=0, logit_scale=40.0, out_size=None):
        """Label map int32 [oh, ow] of normalised pixels [3,h,w] (out_size (oh, ow), default
        the input size); mode as mode_spec() reads it.  window -1: the model's native size; 0: one whole-image pass;
        stride 0: half the window (the element's meanings)."""
        _, h, w = pixels.shape
        oh, ow = out_size or (h, w)
        p = self.e.lib.clipseg_segment_default_params()
        mode, refinements = mode_spec(mode)
        p.mode = self.e.mode(mode)
        for field, value in refinements.items():
            setattr(p, field, value)
        p.crop = self.info.image_size if window < 0 else window
        p.stride = stride if stride > 0 else max(1, p.crop // 2)
        p.logit_scale = logit_scale
        p.prob_thd = 0.0
        p.area_thd = 0.0
        pixels = np.ascontiguousarray(pixels, np.float32)
        out = np.empty((oh, ow), np.int32)
        err = ctypes.POINTER(GError)()
        ok = self.e.lib.clipseg_state_segment(
            self.state, pixels.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), h, w, self.queries,
            ctypes.byref(p), oh, ow, None, out.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            ctypes.byref(err))
        self.e._check(ok, err, "segment")
        return out

    def label_map(self, rgb, mode="sclip", resolution=0, window=-1, stride=0):
        """The element's label map of one frame (class indices, at the inference size)."""
        return self.segment(self.preprocess(rgb, resolution), mode, window, stride)


def resize_bilinear(img, oh, ow):
    """float [H,W,C] -> [oh,ow,C]: bilinear, centre-aligned, edges clamped (cv2/torch
    align_corners=False without antialiasing, as gst/clipseg-pixels.c)."""
    H, W = img.shape[:2]
    if (H, W) == (oh, ow):
        return img.copy()

    def taps(n_in, n_out):
        s = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(s.astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (s - i0).astype(np.float32)

    y0, y1, fy = taps(H, oh)
    x0, x1, fx = taps(W, ow)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def frame_index(frame_size, map_size):
    """For each frame pixel along one axis, the label map pixel the element draws there."""
    return (np.arange(frame_size, dtype=np.int64) * map_size) // frame_size


def map_to_frame(label_map, height, width):
    """A label map at the inference size drawn on the frame grid as the element overlays it."""
    mh, mw = label_map.shape
    return label_map[frame_index(height, mh)][:, frame_index(width, mw)]


def gt_index(frame_size, map_size):
    """For each label map pixel along one axis, the frame pixel whose ground truth it is
    compared with: the middle one of the frame pixels the element paints with it (nearest
    sampling consistent with map_to_frame; the nearest frame pixel when it paints none)."""
    fwd = frame_index(frame_size, map_size)
    out = np.empty(map_size, np.int64)
    for m in range(map_size):
        hit = np.nonzero(fwd == m)[0]
        out[m] = hit[len(hit) // 2] if len(hit) else min(int((m + 0.5) * frame_size / map_size), frame_size - 1)
    return out


def gt_to_map(gt, map_height, map_width):
    """Ground truth [..., H, W] sampled to the label map's size."""
    H, W = gt.shape[-2:]
    return gt[..., gt_index(H, map_height)[:, None], gt_index(W, map_width)[None, :]]


def scenes_confusion(seg, scenes, mode, resolution, window=-1, stride=0):
    """Confusion of @seg's label maps (element protocol: inference size, drawn on the frame grid)
    over @scenes (dicts with "image" and "gt", as world.render_scene returns)."""
    conf = Confusion(seg.n_classes)
    for sc in scenes:
        H, W = sc["gt"].shape
        conf.add(sc["gt"], map_to_frame(seg.label_map(sc["image"], mode, resolution, window, stride), H, W))
    return conf


class Confusion:
    """Dataset-level confusion matrix over n classes (rows: ground truth, cols: prediction)."""

    def __init__(self, n):
        self.n = n
        self.m = np.zeros((n, n), np.int64)

    def add(self, gt, pred):
        """Adds one image (or stack); returns its own confusion matrix."""
        gt = np.asarray(gt, np.int64).ravel()
        pred = np.asarray(pred, np.int64).ravel()
        ok = (gt >= 0) & (gt < self.n) & (pred >= 0) & (pred < self.n)
        m = np.bincount(gt[ok] * self.n + pred[ok], minlength=self.n * self.n).reshape(self.n, self.n)
        self.m += m
        return m

    def iou(self):
        inter = np.diag(self.m).astype(np.float64)
        union = self.m.sum(0) + self.m.sum(1) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, inter / union, np.nan)

    def miou(self):
        return float(np.nanmean(self.iou()))

    @staticmethod
    def miou_of(m):
        """mIoU of confusion matrices [..., n, n] (classes with no pixels at all left out)."""
        inter = np.diagonal(m, axis1=-2, axis2=-1).astype(np.float64)
        union = m.sum(-1) + m.sum(-2) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / union, np.nan)
        return np.nanmean(iou, axis=-1)

    def accuracy(self):
        return float(np.trace(self.m) / max(self.m.sum(), 1))
