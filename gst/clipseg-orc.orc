# ORC kernels of the clipseg element (gst/clipseg-pixels.c, clipseg-overlay.c).
# After editing, run `ninja update-orc-dist` in the build directory to refresh
# the committed clipseg-orc-dist.{c,h} used where orcc is missing.

# Vertical bilinear step: d = (s1 * p1 + s2 * p2 + 128) >> 8 per byte,
# p1 + p2 = 256.
.function gst_clipseg_orc_lerp_u8
.dest 1 d1 guint8
.source 1 s1 guint8
.source 1 s2 guint8
.param 2 p1
.param 2 p2
.temp 2 a
.temp 2 b

convubw a, s1
convubw b, s2
mullw a, a, p1
mullw b, b, p2
addw a, a, b
addw a, a, 128
shruw a, a, 8
convwb d1, a

# Horizontal bilinear resampling of 32-bit pixels: output pixel i reads the
# source at (p1 + i * p2) / 65536, interpolating the four bytes separately.
# Reads one pixel past the last one it lands on.
.function gst_clipseg_orc_resample_bilinear_u32
.dest 4 d1 guint8
.source 4 s1 guint8
.param 4 p1
.param 4 p2

ldreslinl d1, s1, p1, p2

# One normalised float plane from unpacked ARGB or AYUV pixels: bytes 1, 2, 3
# (R G B or Y U V) weighted by p1, p2, p3, plus p4. The weights hold the
# YUV->RGB matrix and the model's (x / 255 - mean) / std together.
.function gst_clipseg_orc_pixel_to_plane
.dest 4 d1 float
.source 4 s1 guint32
.floatparam 4 p1
.floatparam 4 p2
.floatparam 4 p3
.floatparam 4 p4
.temp 2 hi
.temp 2 lo
.temp 1 b1
.temp 1 b2
.temp 1 b3
.temp 2 w
.temp 4 l
.temp 4 f
.temp 4 acc

select0lw lo, s1
select1lw hi, s1
select1wb b1, lo
splitwb b3, b2, hi
convubw w, b1
convuwl l, w
convlf f, l
mulf acc, f, p1
addf acc, acc, p4
convubw w, b2
convuwl l, w
convlf f, l
mulf f, f, p2
addf acc, acc, f
convubw w, b3
convuwl l, w
convlf f, l
mulf f, f, p3
addf d1, acc, f

# Overlay blend over a plane: d = (d * (255 - a) + c * a) / 255 per byte,
# with colours c in s1 and alphas a in s2 laid out like the frame's plane.
.function gst_clipseg_orc_blend_u8
.flags 2d
.dest 1 d1 guint8
.source 1 s1 guint8
.source 1 s2 guint8
.temp 2 t1
.temp 2 t2
.temp 2 a
.temp 2 ia

convubw a, s2
subw ia, 255, a
convubw t1, d1
mullw t1, t1, ia
convubw t2, s1
mullw t2, t2, a
addw t1, t1, t2
div255w t1, t1
convwb d1, t1
