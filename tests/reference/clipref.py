#!/usr/bin/python3
"""Independent numpy reference of the clipseg engine, written from
/work/shared/reference/algorithms.md (sections 1, 2.1, 2.3, 5, 6, 7), more-methods.md
(NACLIP, ClearCLIP, PAMR, SC-CLIP) and design.md.

Everything is computed in float64 from the values stored in the checkpoint
(F16/BF16 are widened exactly), with the checkpoint's own activation and
LayerNorm eps 1e-5: the "correct re-implementation" of SCLIP and MaskCLIP.

Pieces (all usable from Python):
  read_safetensors(path)            -> {name: ndarray}
  load_model(path, vocab=None, activation=None) -> Model
  Tokenizer.from_bpe_gz / from_hf   CLIP BPE (section 6), pure Python, no `regex`
  load_templates(spec)              'imagenet80' | 'single' | 'none' | file path
  parse_labels_file(text)           SCLIP class-file format
  Model.encode_text(ids)            pooled, projected (not normalised) text feature
  Model.class_queries(names, templates) -> [Q, E] L2-normalised
  Model.encode_dense(x, mode)       [(H/p)(W/p), E] L2-normalised patch features
  Model.segment(x, queries, class_index, ...) -> (probs [C,H,W], labels [H,W])
  maskclip_refine(logits, keys, pd_thresh, ks_thresh)  MaskCLIP's refine_output (2.3)
  pamr(image, logits, steps)        PAMR (1.6), dilations 8 and 16
  interp_pos_bicubic(grid, h0, w0)  SCLIP's positional-embedding resize
  resize_bilinear(x, h, w)          PyTorch bilinear, align_corners=False

CLI mirroring clipseg-engine (handy for debugging):
  clipref.py [--vocab PATH] info|tokenize|text|dense|segment ...
"""

import argparse
import gzip
import html
import json
import math
import os
import re
import struct
import sys
import unicodedata

if __name__ == '__main__':  # tiny products: one BLAS thread is fastest
    os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
    os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402

# ---------------------------------------------------------------- safetensors (section 7)

_DT = {'F64': ('<f8', 8), 'F32': ('<f4', 4), 'F16': ('<f2', 2), 'BF16': ('<u2', 2),
       'I64': ('<i8', 8), 'I32': ('<i4', 4), 'I16': ('<i2', 2), 'I8': ('i1', 1),
       'U8': ('u1', 1), 'U16': ('<u2', 2), 'U32': ('<u4', 4), 'U64': ('<u8', 8),
       'BOOL': ('?', 1)}


class FormatError(Exception):
    pass


def read_safetensors_header(path):
    with open(path, 'rb') as f:
        head = f.read(8)
        if len(head) != 8:
            raise FormatError('%s: shorter than 8 bytes' % path)
        (n,) = struct.unpack('<Q', head)
        if n > 100 * 1000 * 1000:
            raise FormatError('%s: header of %d bytes is too large' % (path, n))
        raw = f.read(n)
        if len(raw) != n:
            raise FormatError('%s: truncated header' % path)
    text = raw.decode('utf-8')
    if not text.startswith('{'):
        raise FormatError('%s: header is not a JSON object' % path)
    return n, json.loads(text)


def read_safetensors(path):
    """{name: ndarray}; floating tensors as float64 (BF16 widened as u16 << 16),
    integer tensors as int64."""
    n, header = read_safetensors_header(path)
    size = os.path.getsize(path)
    base = 8 + n
    out = {}
    with open(path, 'rb') as f:
        data = f.read()
    for name, d in header.items():
        if name == '__metadata__':
            continue
        dt, shape, (b, e) = d['dtype'], tuple(d['shape']), d['data_offsets']
        if dt not in _DT:
            raise FormatError('%s: tensor %s has unknown dtype %s' % (path, name, dt))
        npd, sz = _DT[dt]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= b <= e and base + e <= size) or e - b != count * sz:
            raise FormatError('%s: tensor %s has bad data_offsets' % (path, name))
        arr = np.frombuffer(data, dtype=npd, count=count, offset=base + b).reshape(shape)
        if dt == 'BF16':
            arr = (arr.reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(shape)
        if dt in ('F64', 'F32', 'F16', 'BF16'):
            arr = arr.astype(np.float64)
        else:
            arr = arr.astype(np.int64)
        out[name] = (arr, dt)
    return out


# ---------------------------------------------------------------- tokenizer (section 6)

def byte_encoder():
    """bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100+n."""
    printable = [b for b in range(256)
                 if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    # id order: printable bytes first (ascending), then the remapped ones (ascending)
    order = printable + [b for b in range(256) if b not in printable]
    return table, [table[b] for b in order]


_SPECIALS = ('<|startoftext|>', '<|endoftext|>')
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _is_letter(ch):
    return unicodedata.category(ch).startswith('L')


def _is_number(ch):
    return unicodedata.category(ch).startswith('N')


def _is_space(ch):
    return ch.isspace()


def pretokenize(text):
    """CLIP's pattern, scanned by hand:
    <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
    (alternatives tried in this order at every position; unmatched characters,
    i.e. whitespace, are skipped). The text is already lowercased, and IGNORECASE
    only matters for the literal alternatives, which are compared caselessly."""
    pieces = []
    i, n = 0, len(text)
    while i < n:
        matched = None
        for lit in _SPECIALS + _CONTRACTIONS:
            if text[i:i + len(lit)].lower() == lit:
                matched = text[i:i + len(lit)]
                break
        if matched is None:
            ch = text[i]
            if _is_letter(ch):
                j = i + 1
                while j < n and _is_letter(text[j]):
                    j += 1
                matched = text[i:j]
            elif _is_number(ch):
                matched = ch
            elif not _is_space(ch):
                j = i + 1
                while j < n and not (_is_space(text[j]) or _is_letter(text[j]) or
                                     _is_number(text[j])):
                    j += 1
                matched = text[i:j]
        if matched is None:
            i += 1
        else:
            pieces.append(matched)
            i += len(matched)
    return pieces


# ftfy.fix_text (ftfy 6, default configuration), the deterministic steps. The
# heuristic mojibake repair (fix_encoding) is left out: it is the identity on text
# that is not mis-decoded UTF-8, which is all the engine is tested on.

_FTFY_ENTITY_RE = re.compile(r'&#?[0-9A-Za-z]{1,24};')
_FTFY_ANSI_RE = re.compile('\033\\[((?:\\d|;)*)([a-zA-Z])')
_FTFY_LIGATURES = {
    'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž',
    'ǆ': 'dž', 'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
    'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
}
_FTFY_LIGATURES = {ord(k): v for k, v in _FTFY_LIGATURES.items()}


def _ftfy_tables():
    import html.entities
    ent = {}
    for name, ch in html.entities.html5.items():
        if name.endswith(';'):
            ent['&' + name] = ch
            if name == name.lower():
                up = '&' + name.upper()
                if html.unescape(up) == up:  # only all-caps spellings html does not know
                    ent[up] = ch.upper()
    width = {0x3000: ' '}
    for cp in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize('NFKC', chr(cp))
        if alt != chr(cp):
            width[cp] = alt
    control = {cp: None for cp in list(range(0x00, 0x09)) + [0x0B] + list(range(0x0E, 0x20)) +
               [0x7F] + list(range(0x206A, 0x2070)) + [0xFEFF] + list(range(0xFFF9, 0xFFFD))}
    c1 = {}
    for b in range(0x80, 0xA0):
        try:
            c1[b] = bytes([b]).decode('cp1252')
        except UnicodeDecodeError:  # "sloppy" windows-1252: undefined bytes stay latin-1
            c1[b] = chr(b)
    return ent, width, control, c1


_FTFY_ENT, _FTFY_WIDTH, _FTFY_CONTROL, _FTFY_C1 = _ftfy_tables()


def _ftfy_unescape(m):
    t = m.group(0)
    if t in _FTFY_ENT:
        return _FTFY_ENT[t]
    if t.startswith('&#'):
        u = html.unescape(t)
        return t if ';' in u else u
    return t


def _ftfy_segment(text, unescape):
    while True:
        orig = text
        if unescape:
            text = _FTFY_ENTITY_RE.sub(_ftfy_unescape, text)
        text = text.translate(_FTFY_C1)                                  # fix_c1_controls
        text = text.translate(_FTFY_LIGATURES)                           # fix_latin_ligatures
        text = text.translate(_FTFY_WIDTH)                               # fix_character_width
        text = re.sub('[\u02bc\u2018-\u201b]', "'", text)              # uncurl_quotes
        text = re.sub('[\u201c-\u201f]', '"', text)
        for lb in ('\r\n', '\r', '\u2028', '\u2029', '\u0085'):       # fix_line_breaks
            text = text.replace(lb, '\n')
        text = _FTFY_ANSI_RE.sub('', text)                               # remove_terminal_escapes
        text = text.translate(_FTFY_CONTROL)                             # remove_control_chars
        text = unicodedata.normalize('NFC', text)
        if text == orig:
            return text


def ftfy_fix_text(text):
    """ftfy.fix_text: line by line; HTML entities are unescaped ('auto') until a
    segment containing '<' is met."""
    out, pos, unescape = [], 0, True
    while pos < len(text):
        brk = text.find('\n', pos) + 1 or len(text)
        seg = text[pos:brk]
        if '<' in seg:
            unescape = False
        out.append(_ftfy_segment(seg, unescape))
        pos = brk
    return ''.join(out)


def clean_text(text):
    """basic_clean (ftfy.fix_text, html.unescape twice, strip), whitespace_clean
    (runs of whitespace -> one space, strip), lowercase."""
    text = html.unescape(html.unescape(ftfy_fix_text(text))).strip()
    text = re.sub(r'\s+', ' ', text).strip()
    return text.lower()


class Tokenizer:
    def __init__(self, encoder, merges):
        self.encoder = encoder
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.byte_table, _ = byte_encoder()
        self.start_id = encoder['<|startoftext|>']
        self.end_id = encoder['<|endoftext|>']
        self.vocab_size = max(encoder.values()) + 1
        self.cache = {s: s for s in _SPECIALS}

    @classmethod
    def from_bpe_gz(cls, path):
        opener = gzip.open if open(path, 'rb').read(2) == b'\x1f\x8b' else open
        with opener(path, 'rb') as f:
            lines = f.read().decode('utf-8').split('\n')
        merges = [tuple(l.split()) for l in lines[1:49152 - 256 - 2 + 1]]
        _, symbols = byte_encoder()
        vocab = symbols + [s + '</w>' for s in symbols] + [''.join(m) for m in merges] + \
            list(_SPECIALS)
        return cls(dict(zip(vocab, range(len(vocab)))), merges)

    @classmethod
    def from_hf(cls, vocab_json, merges_txt):
        with open(vocab_json, encoding='utf-8') as f:
            encoder = json.load(f)
        merges = []
        with open(merges_txt, encoding='utf-8') as f:
            for k, line in enumerate(f.read().split('\n')):
                if k == 0 and line.startswith('#version'):
                    continue
                if line.strip():
                    merges.append(tuple(line.split()))
        return cls(encoder, merges)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + '</w>']
        while len(word) > 1:
            best, best_rank = None, None
            for pair in zip(word, word[1:]):
                r = self.ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = ' '.join(word)
        self.cache[token] = out
        return out

    def encode_body(self, text):
        ids = []
        for piece in pretokenize(clean_text(text)):
            chars = ''.join(self.byte_table[b] for b in piece.encode('utf-8'))
            ids += [self.encoder[t] for t in self.bpe(chars).split(' ')]
        return ids

    def encode(self, text, context_length=77):
        """[start] + tokens + [end]; too long -> tokens cut so the sequence is
        exactly context_length long and still ends with the end token."""
        body = self.encode_body(text)
        if len(body) > context_length - 2:
            body = body[:context_length - 2]
        return [self.start_id] + body + [self.end_id]


# ---------------------------------------------------------------- templates and labels (1.2)

IMAGENET80 = [
    'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.',
    'a photo of the hard to see {}.', 'a low resolution photo of the {}.', 'a rendering of a {}.',
    'graffiti of a {}.', 'a bad photo of the {}.', 'a cropped photo of the {}.',
    'a tattoo of a {}.', 'the embroidered {}.', 'a photo of a hard to see {}.',
    'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.',
    'a dark photo of the {}.', 'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.',
    'a photo of the cool {}.', 'a close-up photo of a {}.', 'a black and white photo of the {}.',
    'a painting of the {}.', 'a painting of a {}.', 'a pixelated photo of the {}.',
    'a sculpture of the {}.', 'a bright photo of the {}.', 'a cropped photo of a {}.',
    'a plastic {}.', 'a photo of the dirty {}.', 'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.',
    'a rendering of the {}.', 'a {} in a video game.', 'a photo of one {}.', 'a doodle of a {}.',
    'a close-up photo of the {}.', 'a photo of a {}.', 'the origami {}.',
    'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.', 'a origami {}.',
    'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.',
    'a photo of the clean {}.', 'a photo of a large {}.', 'a rendition of a {}.',
    'a photo of a nice {}.', 'a photo of a weird {}.', 'a blurry photo of a {}.',
    'a cartoon {}.', 'art of a {}.', 'a sketch of the {}.', 'a embroidered {}.',
    'a pixelated photo of a {}.', 'itap of the {}.', 'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.',
    'a photo of the small {}.', 'a photo of the weird {}.', 'the cartoon {}.',
    'art of the {}.', 'a drawing of the {}.', 'a photo of the large {}.',
    'a black and white photo of a {}.', 'the plushie {}.', 'a dark photo of a {}.',
    'itap of a {}.', 'graffiti of the {}.', 'a toy {}.', 'itap of my {}.',
    'a photo of a cool {}.', 'a photo of a small {}.', 'a tattoo of the {}.',
]
assert len(IMAGENET80) == 80 and len(set(IMAGENET80)) == 80


def load_templates(spec):
    if spec == 'imagenet80':
        return list(IMAGENET80)
    if spec == 'single':
        return ['a photo of a {}.']
    if spec == 'none':
        return ['{}']
    with open(spec, encoding='utf-8') as f:
        lines = [l.rstrip('\r') for l in f.read().split('\n')]
    return [l for l in lines if l.strip()]


def fill_template(t, name):
    return t.replace('{}', name)


def parse_labels_file(text):
    """SCLIP class file: one class per line, synonyms split on exactly ', ';
    returns (names, class_index)."""
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines = lines[:-1]
    names, idx = [], []
    for c, line in enumerate(lines):
        for n in line.split(', '):
            names.append(n)
            idx.append(c)
    return names, idx


# ---------------------------------------------------------------- numeric helpers

def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def quick_gelu(x):
    return x / (1.0 + np.exp(-1.702 * x))


def softmax(x, axis=-1):
    m = x.max(axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis, keepdims=True)


def l2n(x, axis=-1):
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


def _cubic_weights(t, A=-0.75):
    def c1(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def _bicubic_matrix(n_in, n_out, inv_scale):
    """[n_out, n_in] matrix of PyTorch's bicubic (align_corners=False) along one axis:
    src = (dst + 0.5) * inv_scale - 0.5 (not clamped), taps floor(src)-1..+2 with
    indices clamped to the edge."""
    M = np.zeros((n_out, n_in))
    for d in range(n_out):
        src = (d + 0.5) * inv_scale - 0.5
        i0 = math.floor(src)
        t = src - i0
        for k, w in enumerate(_cubic_weights(t)):
            M[d, min(max(i0 - 1 + k, 0), n_in - 1)] += w
    return M


def interp_pos_bicubic(grid, h0, w0):
    """SCLIP's interpolate_pos_encoding on a [g0, g0, D] grid: bicubic by
    scale_factor ((h0+0.1)/g0, (w0+0.1)/g0), so PyTorch maps
    src = (dst+0.5) * g0/(h0+0.1) - 0.5; output floor(g0*scale) = h0 x w0."""
    g0h, g0w = grid.shape[:2]
    sh, sw = (h0 + 0.1) / g0h, (w0 + 0.1) / g0w
    oh, ow = int(math.floor(g0h * sh)), int(math.floor(g0w * sw))
    assert (oh, ow) == (h0, w0), (oh, ow, h0, w0)
    Mh = _bicubic_matrix(g0h, oh, 1.0 / sh)
    Mw = _bicubic_matrix(g0w, ow, 1.0 / sw)
    return np.einsum('ai,ijd->ajd', Mh, np.einsum('bj,ijd->ibd', Mw, grid))


def naclip_gaussian(h, w, sigma=5.0):
    """NACLIP's additive attention bias for a 1 + h*w token sequence: an
    unnormalised, untruncated Gaussian of the grid distance between patches;
    row and column 0 (CLS) are zero."""
    r, c = np.divmod(np.arange(h * w), w)
    d2 = (r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2
    out = np.zeros((1 + h * w, 1 + h * w))
    out[1:, 1:] = np.exp(-d2 / (2 * sigma ** 2))
    return out


def _bilinear_matrix(n_in, n_out):
    """PyTorch bilinear, align_corners=False, by size: src = (dst+0.5)*in/out - 0.5,
    clamped at 0; neighbours i0 and min(i0+1, in-1)."""
    M = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for d in range(n_out):
        src = max((d + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        M[d, i0] += 1.0 - lam
        M[d, i1] += lam
    return M


def resize_bilinear(x, h, w):
    """x [C, h_in, w_in] -> [C, h, w]."""
    return _bilinear_matrix(x.shape[1], h) @ x @ _bilinear_matrix(x.shape[2], w).T


# ---------------------------------------------------------------- refinements (2.3, 1.6)

class AmbiguousThreshold(Exception):
    """A refinement threshold lies within float32's error of a probability, where the
    engine's decision may differ from this reference's: choose other inputs."""


def log_softmax100(x):
    """log softmax(100 x) over axis 0 of x [Q, N], as 100 (x - max) - log1p(tail) with
    tail the sum over every query but the first best: exact for probabilities too close
    to 1 for floating point (P < 1 whenever tail > 0; MaskCLIP's float32 code rounds
    them to 1)."""
    z = 100.0 * (x - x.max(0, keepdims=True))
    e = np.exp(z)
    e[x.argmax(0), np.arange(x.shape[1])] = 0.0
    return z - np.log1p(e.sum(0, keepdims=True))


def below_threshold(log_p, thresh):
    """log_p < log(thresh); raises AmbiguousThreshold when they are closer than the
    float32 cosines' error times 100 could bridge (at threshold 1 the comparison is
    tail > 0, never ambiguous)."""
    t = math.log(thresh)
    if thresh < 1.0 and (np.abs(log_p - t) < 1e-3).any():
        raise AmbiguousThreshold('log probability %.9g is within 1e-3 of log(%g)'
                                 % (log_p[np.abs(log_p - t) < 1e-3][0], thresh))
    return log_p < t


def maskclip_refine(logits, keys, pd_thresh=0.0, ks_thresh=0.0):
    """MaskCLIP's refine_output on one window: logits [Q, h, w] cosines, keys [h*w, D]
    (the last block's out_proj(K) of the patch tokens). Prompt denoising, then key
    smoothing; the result replaces the logits."""
    Q, h, w = logits.shape
    out = np.array(logits, dtype=np.float64)
    if pd_thresh > 0:
        dropped = below_threshold(log_softmax100(out.reshape(Q, -1)).max(1), pd_thresh)
        out[dropped] = -100.0
    if ks_thresh > 0:
        P = softmax(100.0 * out, axis=0).reshape(Q, -1).T          # [N, Q]
        # F.normalize(k, p=2) of [1, N, D] keys: dim 1, each channel over the patches
        k = keys / np.maximum(np.linalg.norm(keys, axis=0, keepdims=True), 1e-12)
        smoothed = (k @ k.T) @ P
        sel = below_threshold(log_softmax100(out.reshape(Q, -1)).max(0), ks_thresh)
        P[sel] = smoothed[sel]
        out = P.T.reshape(Q, h, w)
    return out


PAMR_DILATIONS = (8, 16)


def _pamr_shifts(img, d):
    """img [K, H, W] -> [K, 9, H, W]: the 3x3 pattern at dilation d, row by row
    (centre at index 4), replicate padding."""
    K, H, W = img.shape
    pad = np.pad(img, ((0, 0), (d, d), (d, d)), mode='edge')
    return np.stack([pad[:, d + dy:d + dy + H, d + dx:d + dx + W]
                     for dy in (-d, 0, d) for dx in (-d, 0, d)], 1)


def pamr(image, logits, steps, dilations=PAMR_DILATIONS):
    """PAMR (pamr.py): image [3, H, W] (normalised pixels at the logits' size), logits
    [Q, H, W]. sigma = unbiased std over the 3x3 patterns of every dilation (centre
    included each time) per channel; affinity -|I(i) - I(n)| / (1e-8 + 0.1 sigma),
    mean over channels, softmax over the 8 * len(dilations) neighbours; each step
    m(i) = sum_n a_n(i) m(n)."""
    image = np.asarray(image, np.float64)
    pats = [_pamr_shifts(image, d) for d in dilations]
    sigma = np.concatenate(pats, 1).std(1, ddof=1)                    # [3, H, W]
    nb = np.concatenate([np.delete(p, 4, 1) for p in pats], 1)        # [3, 16, H, W]
    a = -np.abs(image[:, None] - nb) / (1e-8 + 0.1 * sigma[:, None])
    a = softmax(a.mean(0), axis=0)                                     # [16, H, W]
    m = np.asarray(logits, np.float64)
    for _ in range(steps):
        nbm = np.concatenate([np.delete(_pamr_shifts(m, d), 4, 1) for d in dilations], 1)
        m = (a[None] * nbm).sum(1)
    return m


# ---------------------------------------------------------------- model (section 5)

HF_TO_CANON = {
    'vision_model.embeddings.class_embedding': 'visual.class_embedding',
    'vision_model.embeddings.patch_embedding.weight': 'visual.conv1.weight',
    'vision_model.embeddings.position_embedding.weight': 'visual.positional_embedding',
    'vision_model.pre_layrnorm.weight': 'visual.ln_pre.weight',
    'vision_model.pre_layrnorm.bias': 'visual.ln_pre.bias',
    'vision_model.post_layernorm.weight': 'visual.ln_post.weight',
    'vision_model.post_layernorm.bias': 'visual.ln_post.bias',
    'text_model.embeddings.token_embedding.weight': 'token_embedding.weight',
    'text_model.embeddings.position_embedding.weight': 'positional_embedding',
    'text_model.final_layer_norm.weight': 'ln_final.weight',
    'text_model.final_layer_norm.bias': 'ln_final.bias',
    'logit_scale': 'logit_scale',
}
HF_LAYER = {'layer_norm1': 'ln_1', 'layer_norm2': 'ln_2', 'mlp.fc1': 'mlp.c_fc',
            'mlp.fc2': 'mlp.c_proj', 'self_attn.out_proj': 'attn.out_proj'}


# ---------------------------------------------------------------- SC-CLIP (more-methods.md 3)

SCCLIP_LOF_K = 30            # LOF neighbours
SCCLIP_TOP = 0.05            # share of the patches that are anomalies
SCCLIP_COSINE = 0.4          # similarities below weigh 0 in the aggregations
SCCLIP_CLS = 0.3             # weight of the class token added to the last block's output
# Near-tie margins, within which float32 rounding could take a threshold either way
# (AmbiguousThreshold: choose another image). The engine's cosines differ from these
# by about 1e-7: with a margin of 1e-9 one flipped at 448x448 (features 3e-5 apart).
SCCLIP_COSINE_MARGIN = 1e-6  # cosine (or cosine minus its mean) against its threshold
SCCLIP_LOF_MARGIN = 1e-5        # relative, LOF scores and neighbour distances


def scclip_blocks(n):
    """ViT-B/16's blocks 4, 9 and 10 (1-based, of 12) scaled to a depth of n blocks,
    as indices into the list of block outputs (0: the tokens after ln_pre, i: after
    block i), never the last block's. The description names the ViT-B/16 blocks;
    scaling them is this project's choice for other depths."""
    def f(b):
        return min(max((b * n + 6) // 12, 0), n - 1)
    return f(4), f(9), f(10)


def _near(values, threshold, margin, what):
    close = np.abs(values - threshold) < margin
    if close.any():
        raise AmbiguousThreshold('%s %.9g is within %g of %g' % (what, values[close][0], margin,
                                                                threshold))


def scclip_anomalies(X):
    """Boolean mask of the patches whose local outlier factor is among the top 5%:
    the ceil((N-1)/20) highest (torch.quantile(0.95) with a strict '>'), with LOF as
    SC-CLIP's code computes it on squared Euclidean distances: the reach distance is
    the point's own k-distance, so LOF(p) = mean over its k nearest o of
    kd(p)/kd(o), k = min(30, N-1). Raises AmbiguousThreshold when float32 rounding
    could change which patches are chosen."""
    N = X.shape[0]
    k, n_out = min(SCCLIP_LOF_K, N - 1), -(-(N - 1) // 20)
    mask = np.zeros(N, bool)
    if k < 1 or n_out < 1:
        return mask
    sq = (X * X).sum(1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind='stable')
    ds = np.take_along_axis(d, order, 1)
    kd = ds[:, k - 1]
    nb = order[:, :k]
    lof = (kd[:, None] / kd[nb]).mean(1)
    # a k-th and (k+1)-th neighbour at almost the same distance may swap: the score
    # then lies anywhere between the two choices
    lo, hi = lof.copy(), lof.copy()
    if k < N - 1:
        swap = ds[:, k] - ds[:, k - 1] <= SCCLIP_LOF_MARGIN * ds[:, k - 1]
        alt = lof + (kd / kd[order[:, k]] - kd / kd[order[:, k - 1]]) / k
        lo[swap] = np.minimum(lof, alt)[swap]
        hi[swap] = np.maximum(lof, alt)[swap]
    top = np.argsort(-lof, kind='stable')[:n_out]
    mask[top] = True
    if n_out < N and lo[mask].min() <= hi[~mask].max() * (1 + SCCLIP_LOF_MARGIN):
        raise AmbiguousThreshold('LOF scores %.9g (anomaly) and %.9g (not) are within %g'
                                 % (lo[mask].min(), hi[~mask].max(), SCCLIP_LOF_MARGIN))
    return mask


def scclip_fix(X, mask, h, w):
    """Each anomaly (mask) of X [h*w, D] becomes the mean of its 3x3 grid neighbours
    that are inside the grid and not anomalies; with none it stays."""
    out = X.copy()
    g = mask.reshape(h, w)
    for i in np.flatnonzero(mask):
        r, c = divmod(int(i), w)
        nb = [y * w + x for y in range(max(r - 1, 0), min(r + 2, h))
              for x in range(max(c - 1, 0), min(c + 2, w)) if not g[y, x]]
        if nb:
            out[i] = X[nb].mean(0)
    return out


def scclip_cosines(F):
    F = l2n(F)
    return F @ F.T


def scclip_aggregation(S):
    """Similarities below 0.4 weigh 0, rows normalised by their sum + 1e-6."""
    _near(S, SCCLIP_COSINE, SCCLIP_COSINE_MARGIN, 'cosine')
    A = np.where(S < SCCLIP_COSINE, 0.0, S)
    return A / (A.sum(1, keepdims=True) + 1e-6)


def scclip_prior(S):
    """softmax over each row of 3 (S - mean(S)), its negative entries -inf."""
    Z = 3.0 * (S - S.mean())
    _near(Z / 3.0, 0.0, SCCLIP_COSINE_MARGIN, 'cosine minus the mean')
    Z = np.where(Z < 0, -np.inf, Z)
    return softmax(Z, axis=1)


def mix_tokens(q, k, v, causal=False, mode='vanilla', grid=None):
    """[H, L, d] heads mixed as each mode's last block does (q, k, v [H, L, d])."""
    s = 1.0 / math.sqrt(q.shape[-1])
    if mode == 'vanilla':
        a = q @ k.transpose(0, 2, 1) * s
        if causal:
            L = a.shape[-1]
            a = a + np.triu(np.full((L, L), -np.inf), 1)
        return softmax(a) @ v
    if mode == 'sclip':  # correlative self-attention, rows sum to 2 (1.1)
        return (softmax(q @ q.transpose(0, 2, 1) * s) + softmax(k @ k.transpose(0, 2, 1) * s)) @ v
    if mode == 'maskclip':  # value path: out_proj(V) (2.1)
        return v
    if mode == 'clearclip':  # query-query attention (more-methods.md 2)
        return softmax(q @ q.transpose(0, 2, 1) * s) @ v
    if mode == 'naclip':  # key-key attention + Gaussian neighbourhood (more-methods.md 1)
        return softmax(k @ k.transpose(0, 2, 1) * s + naclip_gaussian(*grid)) @ v
    raise ValueError('unknown mode %r' % mode)


def silu(x):
    return x / (1.0 + np.exp(-x))


def interp_pos_bicubic_size(grid, h0, w0):
    """CLIPSelf's rescale_positional_embedding (3.1): bicubic, align_corners=False,
    by size, so src = (dst+0.5) * g0/h0 - 0.5."""
    g0h, g0w = grid.shape[:2]
    Mh = _bicubic_matrix(g0h, h0, g0h / h0)
    Mw = _bicubic_matrix(g0w, w0, g0w / w0)
    return np.einsum('ai,ijd->ajd', Mh, np.einsum('bj,ijd->ibd', Mw, grid))


EVA02_ROPE_SEQ = 16  # pt_hw_seq_len of EVA02-CLIP-B-16 and -L-14-336 (3.1)


def eva02_rope(gh, gw, d, seq=EVA02_ROPE_SEQ):
    """cos, sin [gh*gw, d] of EVA02's 2D RoPE (3.1, intp_freq): per axis of g patches
    t_i = i*seq/g; frequencies f_k = 10000^(-2k/(d/2)), k < d/4, each repeated twice
    in a row; the first d/2 angles are the row's t*f, the last d/2 the column's.
    Unlike EVA-CLIP's recalculate (one g = int(sqrt(gh*gw))), each axis uses its own
    length."""
    f = 10000.0 ** (-2.0 * np.arange(d // 4) / (d // 2))

    def axis(g):
        return np.repeat((np.arange(g) * seq / g)[:, None] * f[None], 2, axis=1)  # [g, d/2]
    ang = np.concatenate([np.broadcast_to(axis(gh)[:, None], (gh, gw, d // 2)),
                          np.broadcast_to(axis(gw)[None], (gh, gw, d // 2))], -1)
    ang = ang.reshape(gh * gw, d)
    return np.cos(ang), np.sin(ang)


def rope_apply(x, cos, sin):
    """x*cos + rotate_half(x)*sin, rotate_half: (x2j, x2j+1) -> (-x2j+1, x2j)."""
    rot = np.empty_like(x)
    rot[..., 0::2] = -x[..., 1::2]
    rot[..., 1::2] = x[..., 0::2]
    return x * cos + rot * sin


def _hf_tensors(path):
    idx = os.path.join(path, 'model.safetensors.index.json')
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)['weight_map']
        out = {}
        for shard in sorted(set(wm.values())):
            out.update(read_safetensors(os.path.join(path, shard)))
        missing = set(wm) - set(out)
        if missing:
            raise FormatError('%s: tensors missing from shards: %s' % (idx, sorted(missing)))
        return out
    return read_safetensors(os.path.join(path, 'model.safetensors'))


def _hf_to_canon(T):
    W = {}
    for k, v in T.items():
        if k.endswith('position_ids'):
            continue
        if k in HF_TO_CANON:
            W[HF_TO_CANON[k]] = v
        elif k == 'visual_projection.weight':
            W['visual.proj'] = v.T
        elif k == 'text_projection.weight':
            W['text_projection'] = v.T
        else:
            m = re.match(r'(vision_model|text_model)\.encoder\.layers\.(\d+)\.(.*)\.(weight|bias)$', k)
            if not m:
                raise FormatError('unexpected tensor %s' % k)
            tower, i, part, wb = m.groups()
            pre = ('visual.transformer' if tower == 'vision_model' else 'transformer') + \
                '.resblocks.%s.' % i
            if part in ('self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'):
                continue
            W[pre + HF_LAYER[part] + '.' + wb] = v
    for tower, pre in (('vision_model', 'visual.transformer'), ('text_model', 'transformer')):
        i = 0
        while '%s.encoder.layers.%d.self_attn.q_proj.weight' % (tower, i) in T:
            s = '%s.encoder.layers.%d.self_attn.' % (tower, i)
            d = '%s.resblocks.%d.attn.' % (pre, i)
            W[d + 'in_proj_weight'] = np.concatenate([T[s + n + '_proj.weight'] for n in 'qkv'])
            W[d + 'in_proj_bias'] = np.concatenate([T[s + n + '_proj.bias'] for n in 'qkv'])
            i += 1
    return W


class Model:
    """Canonical (OpenAI-named) float64 weights + hyperparameters + tokenizer."""

    def __init__(self, W, cfg, tokenizer):
        self.W = W
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.act = quick_gelu if cfg['activation'] == 'quick_gelu' else gelu
        self.eps = cfg.get('layer_norm_eps', 1e-5)

    # ------------------------------------------------ generic pieces
    def _attn_qkv(self, pre, y, heads):
        W = self.W
        qkv = y @ W[pre + 'attn.in_proj_weight'].T + W[pre + 'attn.in_proj_bias']
        L, D3 = qkv.shape
        D = D3 // 3
        d = D // heads
        q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
        split = lambda t: t.reshape(L, heads, d).transpose(1, 0, 2)  # noqa: E731
        return split(q), split(k), split(v), d

    def _merge_out(self, pre, o):
        H, L, d = o.shape
        o = o.transpose(1, 0, 2).reshape(L, H * d)
        return o @ self.W[pre + 'attn.out_proj.weight'].T + self.W[pre + 'attn.out_proj.bias']

    def _attention(self, pre, y, heads, causal=False, mode='vanilla', grid=None):
        q, k, v, d = self._attn_qkv(pre, y, heads)
        return self._merge_out(pre, mix_tokens(q, k, v, causal, mode, grid))

    def _block(self, pre, x, heads, causal=False, mode='vanilla', grid=None):
        W = self.W
        a = self._attention(pre, layer_norm(x, W[pre + 'ln_1.weight'], W[pre + 'ln_1.bias'],
                                            self.eps), heads, causal, mode, grid)
        if mode in ('clearclip', 'naclip'):  # residual and FFN dropped
            return a
        x = x + a
        h = layer_norm(x, W[pre + 'ln_2.weight'], W[pre + 'ln_2.bias'], self.eps)
        h = self.act(h @ W[pre + 'mlp.c_fc.weight'].T + W[pre + 'mlp.c_fc.bias'])
        return x + h @ W[pre + 'mlp.c_proj.weight'].T + W[pre + 'mlp.c_proj.bias']

    # ------------------------------------------------ text
    def tokenize(self, text):
        return self.tokenizer.encode(text, self.cfg['context_length'])

    def encode_text(self, ids):
        """Pooled, projected feature of one id sequence (causal: only tokens up to
        the first end token matter, so the sequence is cut there)."""
        W, c = self.W, self.cfg
        ids = list(ids)
        eot = ids.index(self.tokenizer.end_id) if self.tokenizer.end_id in ids else \
            int(np.argmax(ids))
        ids = ids[:eot + 1]
        x = W['token_embedding.weight'][ids] + W['positional_embedding'][:len(ids)]
        for i in range(c['text_layers']):
            x = self._block('transformer.resblocks.%d.' % i, x, c['text_heads'], causal=True)
        x = layer_norm(x, W['ln_final.weight'], W['ln_final.bias'], self.eps)
        return x[eot] @ W['text_projection']

    def class_queries(self, names, templates):
        """One unit row per name: normalised mean of normalised per-template features."""
        rows = []
        for n in names:
            feats = np.stack([l2n(self.encode_text(self.tokenize(fill_template(t, n))))
                              for t in templates])
            rows.append(l2n(feats.mean(0)))
        return np.stack(rows)

    # ------------------------------------------------ vision
    def positional(self, h0, w0):
        pos = self.W['visual.positional_embedding']
        g0 = int(round(math.sqrt(pos.shape[0] - 1)))
        if h0 == g0 and w0 == g0:
            return pos
        grid = pos[1:].reshape(g0, g0, -1)
        new = interp_pos_bicubic(grid, h0, w0).reshape(h0 * w0, -1)
        return np.concatenate([pos[:1], new], 0)

    def last_keys(self, t):
        """MaskCLIP's k (2.1, 2.3): out_proj applied to the last block's keys
        K = LN1(t) Wk^T + bk, patch tokens only. t: the last block's input [L, D]."""
        W, c = self.W, self.cfg
        pre = 'visual.transformer.resblocks.%d.' % (c['vision_layers'] - 1)
        D = t.shape[1]
        y = layer_norm(t, W[pre + 'ln_1.weight'], W[pre + 'ln_1.bias'], self.eps)
        K = y @ W[pre + 'attn.in_proj_weight'][D:2 * D].T + W[pre + 'attn.in_proj_bias'][D:2 * D]
        k = K @ W[pre + 'attn.out_proj.weight'].T + W[pre + 'attn.out_proj.bias']
        return k[1:]

    def _scclip_attention(self, pre, t, prior, cls):
        """SC-CLIP's last block on patch tokens t [N, D]: out_proj(1/2 [prior +
        softmax(s K K^T)] V) from ln_1(t), no residual, no MLP, + 0.3 cls."""
        W = self.W
        y = layer_norm(t, W[pre + 'ln_1.weight'], W[pre + 'ln_1.bias'], self.eps)
        q, k, v, d = self._attn_qkv(pre, y, self.cfg['vision_heads'])
        a = 0.5 * (prior[None] + softmax(k @ k.transpose(0, 2, 1) / math.sqrt(d)))
        return self._merge_out(pre, a @ v) + SCCLIP_CLS * cls

    def _scclip_last(self, outs, grid):
        """SC-CLIP (more-methods.md 3) from the block outputs outs (outs[0] after
        ln_pre, outs[i] after block i, the last one the last block's input): returns
        [1 + N, D] with the patch rows replaced (the class-token row unused)."""
        h, w = grid
        n = self.cfg['vision_layers']
        pre = 'visual.transformer.resblocks.%d.' % (n - 1)
        i4, i9, i10 = scclip_blocks(n)
        t = outs[-1]
        cls, X = t[0], t[1:]
        mask = scclip_anomalies(X)
        X = scclip_fix(X, mask, h, w)
        S9 = scclip_cosines(scclip_fix(outs[i9][1:], mask, h, w))
        prior = scclip_prior(S9)
        A4 = scclip_aggregation(scclip_cosines(outs[i4][1:]))
        y = self._scclip_attention(pre, scclip_aggregation(S9) @ X, prior, cls)
        fused = sum(outs[i] for i in range(i4, i10 + 1))
        z = self._scclip_attention(pre, fused[1:], prior, fused[0])
        return np.concatenate([t[:1], A4 @ y + A4 @ z], 0)

    def encode_dense(self, x, mode='sclip', normalise=True, keys=False):
        """x float [3, H, W] -> [(H//p)(W//p), E] patch features (L2-normalised),
        CLS dropped. Pixels beyond the last whole patch are ignored (the stride-p
        convolution floors). keys=True: (features, last_keys)."""
        W, c = self.W, self.cfg
        p = c['patch_size']
        h0, w0 = x.shape[1] // p, x.shape[2] // p
        x = np.asarray(x, dtype=np.float64)[:, :h0 * p, :w0 * p]
        patches = x.reshape(3, h0, p, w0, p).transpose(1, 3, 0, 2, 4).reshape(h0 * w0, 3 * p * p)
        conv = W['visual.conv1.weight']
        tok = patches @ conv.reshape(conv.shape[0], -1).T
        t = np.concatenate([W['visual.class_embedding'][None], tok], 0) + self.positional(h0, w0)
        t = layer_norm(t, W['visual.ln_pre.weight'], W['visual.ln_pre.bias'], self.eps)
        L = c['vision_layers']
        outs = [t]
        for i in range(L):
            if keys and i == L - 1:
                k = self.last_keys(t)
            if mode == 'scclip' and i == L - 1:
                t = self._scclip_last(outs, (h0, w0))
                break
            t = self._block('visual.transformer.resblocks.%d.' % i, t, c['vision_heads'],
                            mode=mode if i == L - 1 else 'vanilla', grid=(h0, w0))
            outs.append(t)
        t = layer_norm(t, W['visual.ln_post.weight'], W['visual.ln_post.bias'], self.eps)
        f = t @ W['visual.proj']
        if normalise:
            f = l2n(f)
        return (f[1:], k) if keys else f[1:]

    # ------------------------------------------------ segmentation (1.3, 1.4)
    def window_logits(self, x, queries, mode, ks_thresh=0.0, pd_thresh=0.0):
        p = self.cfg['patch_size']
        h, w = x.shape[1], x.shape[2]
        f, k = self.encode_dense(x, mode, keys=True)
        lg = (f @ queries.T).T.reshape(-1, h // p, w // p)
        if ks_thresh > 0 or pd_thresh > 0:
            lg = maskclip_refine(lg, k, pd_thresh, ks_thresh)
        return resize_bilinear(lg, h, w)

    @staticmethod
    def windows(H, W, crop, stride):
        if crop <= 0:
            return [(0, H, 0, W)]
        rows = max(H - crop + stride - 1, 0) // stride + 1
        cols = max(W - crop + stride - 1, 0) // stride + 1
        out = []
        for i in range(rows):
            for j in range(cols):
                y1, x1 = i * stride, j * stride
                y2, x2 = min(y1 + crop, H), min(x1 + crop, W)
                y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
                out.append((y1, y2, x1, x2))
        return out

    def segment_logits(self, x, queries, mode='sclip', crop=224, stride=112, out_size=None,
                       ks_thresh=0.0, pd_thresh=0.0, pamr_steps=0):
        _, H, W = x.shape
        acc = np.zeros((queries.shape[0], H, W))
        cnt = np.zeros((H, W))
        for y1, y2, x1, x2 in self.windows(H, W, crop, stride):
            acc[:, y1:y2, x1:x2] += self.window_logits(x[:, y1:y2, x1:x2], queries, mode,
                                                       ks_thresh, pd_thresh)
            cnt[y1:y2, x1:x2] += 1
        assert (cnt > 0).all()
        acc /= cnt
        oh, ow = out_size or (H, W)
        logits = resize_bilinear(acc, oh, ow)
        if pamr_steps > 0:  # SCLIP: the input image resized to the logits' size
            logits = pamr(resize_bilinear(np.asarray(x, np.float64), oh, ow), logits, pamr_steps)
        return logits

    def segment(self, x, queries, class_index, mode='sclip', crop=224, stride=112,
                logit_scale=40.0, prob_thd=0.0, area_thd=0.0, out_size=None, details=False,
                ks_thresh=0.0, pd_thresh=0.0, pamr_steps=0):
        logits = self.segment_logits(x, queries, mode, crop, stride, out_size, ks_thresh,
                                     pd_thresh, pamr_steps)
        probs_q = softmax(logit_scale * logits, axis=0)
        class_index = np.asarray(class_index)
        C = int(class_index.max()) + 1
        probs = np.stack([probs_q[class_index == c].max(0) for c in range(C)])
        kept = None
        if area_thd and area_thd > 0:
            am = probs.argmax(0)
            n = np.array([(am == c).sum() for c in range(C)])
            total = n[1:].sum()
            kept = np.ones(C, bool)
            for c in range(1, C):
                if not n[c] > area_thd * total:
                    kept[c] = False
                    probs[c] = 0.0
        labels = probs.argmax(0).astype(np.int32)
        labels[probs.max(0) < prob_thd] = 0
        if details:
            return probs, labels, dict(logits=logits, kept=kept)
        return probs, labels


class Eva02Model(Model):
    """EVA02-CLIP / CLIPSelf (algorithms.md 3): the vision tower under its EVA-CLIP
    names (visual.patch_embed.proj, visual.blocks.N.*, visual.norm, visual.head),
    OpenAI's text tower (canonical names, 'text.' prefix stripped). Vision layer
    norms use eps 1e-6; the text tower keeps self.eps."""

    VISION_EPS = 1e-6

    def _eva_block(self, pre, x, heads, mode, grid):
        """A block of 3.1; the last one in `mode`. maskclip is CLIPSelf's
        forward_without_attn: x + proj(inner_attn_ln(LN1(x) Wv + v_bias)), then the
        MLP. clearclip and naclip drop the residual and the MLP as on CLIP."""
        W, e = self.W, self.VISION_EPS
        ln = lambda t, n: layer_norm(t, W[pre + n + '.weight'], W[pre + n + '.bias'], e)  # noqa: E731
        y = ln(x, 'norm1')
        L, D = y.shape
        d = D // heads
        q = y @ W[pre + 'attn.q_proj.weight'].T + W[pre + 'attn.q_bias']
        k = y @ W[pre + 'attn.k_proj.weight'].T
        v = y @ W[pre + 'attn.v_proj.weight'].T + W[pre + 'attn.v_bias']
        split = lambda t: t.reshape(L, heads, d).transpose(1, 0, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        cos, sin = eva02_rope(grid[0], grid[1], d, self.cfg['rope_seq'])
        q[:, 1:] = rope_apply(q[:, 1:], cos, sin)  # patch tokens only, cls untouched
        k[:, 1:] = rope_apply(k[:, 1:], cos, sin)
        o = mix_tokens(q, k, v, False, mode, grid).transpose(1, 0, 2).reshape(L, D)
        a = ln(o, 'attn.inner_attn_ln') @ W[pre + 'attn.proj.weight'].T + W[pre + 'attn.proj.bias']
        if mode in ('clearclip', 'naclip'):
            return a
        x = x + a
        h = ln(x, 'norm2')
        h = silu(h @ W[pre + 'mlp.w1.weight'].T + W[pre + 'mlp.w1.bias']) * \
            (h @ W[pre + 'mlp.w2.weight'].T + W[pre + 'mlp.w2.bias'])
        h = ln(h, 'mlp.ffn_ln')
        return x + h @ W[pre + 'mlp.w3.weight'].T + W[pre + 'mlp.w3.bias']

    def positional(self, h0, w0):
        pos = self.W['visual.pos_embed'][0]
        g0 = int(round(math.sqrt(pos.shape[0] - 1)))
        if h0 == g0 and w0 == g0:
            return pos
        new = interp_pos_bicubic_size(pos[1:].reshape(g0, g0, -1), h0, w0).reshape(h0 * w0, -1)
        return np.concatenate([pos[:1], new], 0)

    def last_keys(self, t):
        """The keys of MaskCLIP's key smoothing on EVA02 (the engine's choice, as on
        CLIP: the last block's out projection applied to its keys, here after
        inner_attn_ln; no RoPE, no bias: EVA02 has no k bias)."""
        W, c, e = self.W, self.cfg, self.VISION_EPS
        pre = 'visual.blocks.%d.' % (c['vision_layers'] - 1)
        y = layer_norm(t, W[pre + 'norm1.weight'], W[pre + 'norm1.bias'], e)
        K = layer_norm(y @ W[pre + 'attn.k_proj.weight'].T, W[pre + 'attn.inner_attn_ln.weight'],
                       W[pre + 'attn.inner_attn_ln.bias'], e)
        return (K @ W[pre + 'attn.proj.weight'].T + W[pre + 'attn.proj.bias'])[1:]

    def encode_dense(self, x, mode='maskclip', normalise=True, keys=False):
        """CLIPSelf's encode_dense (3.1) for mode='maskclip'; other modes change the
        last block as _eva_block says. Returns [(H//p)(W//p), E] (and the keys)."""
        W, c, e = self.W, self.cfg, self.VISION_EPS
        p = c['patch_size']
        h0, w0 = x.shape[1] // p, x.shape[2] // p
        x = np.asarray(x, dtype=np.float64)[:, :h0 * p, :w0 * p]
        patches = x.reshape(3, h0, p, w0, p).transpose(1, 3, 0, 2, 4).reshape(h0 * w0, 3 * p * p)
        conv = W['visual.patch_embed.proj.weight']
        tok = patches @ conv.reshape(conv.shape[0], -1).T + W['visual.patch_embed.proj.bias']
        t = np.concatenate([W['visual.cls_token'][0], tok], 0) + self.positional(h0, w0)
        L = c['vision_layers']
        for i in range(L):
            if keys and i == L - 1:
                k = self.last_keys(t)
            t = self._eva_block('visual.blocks.%d.' % i, t, c['vision_heads'],
                                mode if i == L - 1 else 'vanilla', (h0, w0))
        t = layer_norm(t[1:], W['visual.norm.weight'], W['visual.norm.bias'], e)
        f = t @ W['visual.head.weight'].T + W['visual.head.bias']
        if normalise:
            f = l2n(f)
        return (f, k) if keys else f


def _eva02_config(W, conf):
    """Hyperparameters of EVA02 tensors (heads = width/64 in both towers, EVA-CLIP's
    head_width 64 and OpenAI's build_model); config.json, when given, for the text
    tower's activation and eps (EVA-CLIP builds it with nn.GELU, eps 1e-5)."""
    conv = W['visual.patch_embed.proj.weight']
    vl = len({k.split('.')[2] for k in W if k.startswith('visual.blocks.')})
    tl = len({k.split('.')[2] for k in W if k.startswith('transformer.resblocks.')})
    g = int(round(math.sqrt(W['visual.pos_embed'].shape[1] - 1)))
    vw, tw = conv.shape[0], W['ln_final.weight'].shape[0]
    tc = (conf or {}).get('text_config', {})
    vc = (conf or {}).get('vision_config', {})
    return dict(naming='eva02', rope_seq=vc.get('rope_pt_hw_seq_len', EVA02_ROPE_SEQ), activation=tc.get('hidden_act', 'gelu'),
                layer_norm_eps=tc.get('layer_norm_eps', 1e-5),
                embed_dim=W['visual.head.weight'].shape[0], image_size=conv.shape[-1] * g,
                patch_size=conv.shape[-1], vision_width=vw, vision_layers=vl,
                vision_heads=vw // 64, vision_mlp=W['visual.blocks.0.mlp.w1.weight'].shape[0],
                text_width=tw, text_layers=tl, text_heads=tw // 64,
                text_mlp=W['transformer.resblocks.0.mlp.c_fc.weight'].shape[0],
                context_length=W['positional_embedding'].shape[0],
                vocab_size=W['token_embedding.weight'].shape[0])


def _eva02_canon(T):
    """EVA-CLIP names: vision kept, 'text.' stripped, RoPE buffers dropped (recomputed)."""
    return {(k[5:] if k.startswith('text.') else k): v for k, v in T.items()
            if not k.endswith(('freqs_cos', 'freqs_sin'))}


def _find_vocab(dirname):
    gz = os.path.join(dirname, 'bpe_simple_vocab_16e6.txt.gz')
    txt = os.path.join(dirname, 'bpe_simple_vocab_16e6.txt')
    vj, mt = os.path.join(dirname, 'vocab.json'), os.path.join(dirname, 'merges.txt')
    if os.path.exists(vj) and os.path.exists(mt):
        return Tokenizer.from_hf(vj, mt)
    for f in (gz, txt):
        if os.path.exists(f):
            return Tokenizer.from_bpe_gz(f)
    return None


def load_tokenizer(vocab):
    if os.path.isdir(vocab):
        tok = _find_vocab(vocab)
        if tok is None:
            raise FormatError('%s: no vocabulary in this directory' % vocab)
        return tok
    return Tokenizer.from_bpe_gz(vocab)


def load_model(path, vocab=None, activation=None):
    """A Hugging Face directory or an OpenCLIP/OpenAI-named safetensors file, or
    either holding EVA02-CLIP names (a directory then has model_type eva02-clip)."""
    conf = None
    if os.path.isdir(path):
        with open(os.path.join(path, 'config.json')) as f:
            conf = json.load(f)
    eva_dir = conf is not None and conf.get('model_type') == 'eva02-clip'
    eva_file = conf is None and 'visual.patch_embed.proj.weight' in read_safetensors_header(path)[1]
    if eva_dir or eva_file:
        T = _hf_tensors(path) if eva_dir else read_safetensors(path)
        dtypes = {dt for k, (v, dt) in T.items()}
        W = _eva02_canon({k: v for k, (v, dt) in T.items()})
        cfg = _eva02_config(W, conf)
        d = path if eva_dir else os.path.dirname(os.path.abspath(path))
        tok = load_tokenizer(vocab) if vocab else _find_vocab(d)
        model_class = Eva02Model
    elif os.path.isdir(path):
        T = _hf_tensors(path)
        dtypes = {dt for k, (v, dt) in T.items() if dt != 'I64'}
        W = _hf_to_canon({k: v for k, (v, dt) in T.items()})
        tc, vc = conf['text_config'], conf['vision_config']
        act = tc.get('hidden_act', 'quick_gelu')
        cfg = dict(naming='huggingface', activation=act,
                   layer_norm_eps=vc.get('layer_norm_eps', 1e-5),
                   embed_dim=conf.get('projection_dim', W['visual.proj'].shape[1]),
                   image_size=vc['image_size'], patch_size=vc['patch_size'],
                   vision_width=vc['hidden_size'], vision_layers=vc['num_hidden_layers'],
                   vision_heads=vc['num_attention_heads'], vision_mlp=vc['intermediate_size'],
                   text_width=tc['hidden_size'], text_layers=tc['num_hidden_layers'],
                   text_heads=tc['num_attention_heads'], text_mlp=tc['intermediate_size'],
                   context_length=tc['max_position_embeddings'],
                   vocab_size=W['token_embedding.weight'].shape[0])
        tok = load_tokenizer(vocab) if vocab else _find_vocab(path)
        model_class = Model
    else:
        T = read_safetensors(path)
        dtypes = {dt for k, (v, dt) in T.items() if dt != 'I64'}
        W = {k: v for k, (v, dt) in T.items() if dt != 'I64'}
        conv = W['visual.conv1.weight']
        vl = len({k.split('.')[3] for k in W if k.startswith('visual.transformer.resblocks.')})
        tl = len({k.split('.')[2] for k in W if k.startswith('transformer.resblocks.')})
        g = int(round(math.sqrt(W['visual.positional_embedding'].shape[0] - 1)))
        vw, tw = conv.shape[0], W['ln_final.weight'].shape[0]
        act = 'quick_gelu'
        oc = os.path.join(os.path.dirname(os.path.abspath(path)), 'open_clip_config.json')
        if os.path.exists(oc):
            with open(oc) as f:
                mc = json.load(f).get('model_cfg', {})
            act = 'quick_gelu' if mc.get('quick_gelu') else 'gelu'
        cfg = dict(naming='openclip', activation=act, layer_norm_eps=1e-5,
                   embed_dim=W['text_projection'].shape[1], image_size=conv.shape[-1] * g,
                   patch_size=conv.shape[-1], vision_width=vw, vision_layers=vl,
                   vision_heads=vw // 64,
                   vision_mlp=W['visual.transformer.resblocks.0.mlp.c_fc.weight'].shape[0],
                   text_width=tw, text_layers=tl, text_heads=tw // 64,
                   text_mlp=W['transformer.resblocks.0.mlp.c_fc.weight'].shape[0],
                   context_length=W['positional_embedding'].shape[0],
                   vocab_size=W['token_embedding.weight'].shape[0])
        tok = load_tokenizer(vocab) if vocab else _find_vocab(os.path.dirname(
            os.path.abspath(path)))
        model_class = Model
    if tok is None:
        raise FormatError('%s: no BPE vocabulary beside the checkpoint; give one' % path)
    if activation:
        cfg['activation'] = activation
    cfg['dtype'] = dtypes.pop() if len(dtypes) == 1 else 'mixed'
    cfg['logit_scale'] = float(np.exp(W['logit_scale']))
    return model_class(W, cfg, tok)


# ---------------------------------------------------------------- CLI

def _npy_save(path, a):
    np.save(path, a)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vocab')
    ap.add_argument('--activation', choices=('quick_gelu', 'gelu'))
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('info')
    s.add_argument('model')
    s = sub.add_parser('tokenize')
    s.add_argument('model')
    s.add_argument('texts', nargs='+')
    s = sub.add_parser('text')
    s.add_argument('model')
    s.add_argument('--labels-file', required=True)
    s.add_argument('--templates', default='imagenet80')
    s.add_argument('--out', required=True)
    s = sub.add_parser('dense')
    s.add_argument('model')
    s.add_argument('--input', required=True)
    s.add_argument('--mode', default='sclip')
    s.add_argument('--out', required=True)
    s = sub.add_parser('segment')
    s.add_argument('model')
    s.add_argument('--input', required=True)
    s.add_argument('--labels-file', required=True)
    s.add_argument('--out', required=True)
    s.add_argument('--pred')
    s.add_argument('--mode', default='sclip')
    s.add_argument('--templates', default='imagenet80')
    s.add_argument('--crop', type=int, default=224)
    s.add_argument('--stride', type=int, default=112)
    s.add_argument('--logit-scale', type=float, default=40.0)
    s.add_argument('--prob-thd', type=float, default=0.0)
    s.add_argument('--area-thd', type=float, default=0.0)
    s.add_argument('--key-smoothing', type=float, default=0.0)
    s.add_argument('--prompt-denoising', type=float, default=0.0)
    s.add_argument('--pamr-steps', type=int, default=0)
    a = ap.parse_args(argv)
    m = load_model(a.model, a.vocab, a.activation)
    if a.cmd == 'info':
        for k, v in sorted(m.cfg.items()):
            print('%s: %s' % (k, v))
    elif a.cmd == 'tokenize':
        for t in a.texts:
            print(' '.join(str(i) for i in m.tokenize(t)))
    elif a.cmd in ('text', 'segment'):
        with open(a.labels_file, encoding='utf-8') as f:
            names, idx = parse_labels_file(f.read())
        q = m.class_queries(names, load_templates(a.templates))
        if a.cmd == 'text':
            _npy_save(a.out, q.astype(np.float32))
        else:
            x = np.load(a.input)
            probs, labels = m.segment(x, q, idx, a.mode, a.crop, a.stride, a.logit_scale,
                                      a.prob_thd, a.area_thd, ks_thresh=a.key_smoothing,
                                      pd_thresh=a.prompt_denoising, pamr_steps=a.pamr_steps)
            _npy_save(a.out, probs.astype(np.float32))
            if a.pred:
                _npy_save(a.pred, labels.astype(np.int32))
    elif a.cmd == 'dense':
        x = np.load(a.input)
        _npy_save(a.out, m.encode_dense(x, a.mode).astype(np.float32))
    return 0


if __name__ == '__main__':
    sys.exit(main())
