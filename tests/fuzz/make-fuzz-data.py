#!/usr/bin/python3
"""Write what the loader fuzzers start from, into one output directory:

  hf/                  a tiny Hugging Face CLIP directory (fuzz-config replaces its
                       config.json with every input)
  openclip/            a tiny OpenCLIP-named file with vocab.json + merges.txt (the
                       vocabulary fuzz-safetensors puts beside every input)
  corpus-safetensors/  seeds: small hand-made safetensors files (every dtype, an
                       empty tensor, a scalar, __metadata__, unaligned data, both
                       patch-embedding names)
  corpus-safetensors-full/  the tiny OpenCLIP file (600 KB), a seed that loads all
                       the way; kept apart because it makes every input that large
  corpus-config/       seeds: the real config.json and variants (GELU, legacy
                       *_config_dict keys, no optional fields)
  corpus-labels/       seeds: class files and inline lists
  corpus-npy/          seeds: .npy arrays (float32, int32, Fortran order, 0-d, empty,
                       version 2.0 and 3.0 headers)

Usage: make-fuzz-data.py OUTDIR (run by tests/fuzz/meson.build at build time).
"""

import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'reference'))

from make_checkpoint import make_checkpoint  # noqa: E402

TINY = dict(vision_layers=1, text_layers=1, merges=10, patch_size=8, image_size=16,
            context_length=8, embed_dim=16, seed=3)


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes), stored in that order."""
    header, data = {}, b''
    if metadata is not None:
        header['__metadata__'] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {'dtype': dtype, 'shape': list(shape),
                        'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(',', ':')).encode()
    if pad:
        text += b' ' * (-(8 + len(text)) % 8)
    return struct.pack('<Q', len(text)) + text + data


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    out = os.path.abspath(sys.argv[1])
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)

    make_checkpoint(os.path.join(out, 'hf'), layout='hf', vision_width=32, vision_heads=2,
                    text_width=32, text_heads=2, **TINY)
    make_checkpoint(os.path.join(out, 'openclip'), layout='openclip', vision_width=64,
                    text_width=64, **TINY)

    st = os.path.join(out, 'corpus-safetensors')
    f32 = struct.pack('<4f', 1.0, -2.0, 0.5, 3.0)
    write(os.path.join(st, 'empty.safetensors'), safetensors([]))
    write(os.path.join(st, 'metadata.safetensors'),
          safetensors([('a', 'F32', [2, 2], f32)], metadata={'format': 'pt'}))
    write(os.path.join(st, 'dtypes.safetensors'), safetensors([
        ('f32', 'F32', [4], f32), ('f16', 'F16', [2], b'\x00\x3c\x00\xc0'),
        ('bf16', 'BF16', [2], b'\x80\x3f\x00\xc0'), ('f64', 'F64', [1], struct.pack('<d', 1.0)),
        ('i64', 'I64', [1], struct.pack('<q', 7)), ('i32', 'I32', [1], struct.pack('<i', 7)),
        ('i16', 'I16', [1], b'\x07\x00'), ('i8', 'I8', [1], b'\x07'),
        ('u64', 'U64', [1], struct.pack('<Q', 7)), ('u32', 'U32', [1], struct.pack('<I', 7)),
        ('u16', 'U16', [1], b'\x07\x00'), ('u8', 'U8', [1], b'\x07'), ('bool', 'BOOL', [1], b'\x01'),
        ('e5m2', 'F8_E5M2', [1], b'\x3c'), ('e4m3', 'F8_E4M3', [1], b'\x38'),
        ('scalar', 'F32', [], f32[:4]), ('empty', 'F32', [0, 3], b''),
    ]))
    write(os.path.join(st, 'unaligned.safetensors'),
          safetensors([('x', 'F32', [4], f32)], pad=False))
    write(os.path.join(st, 'names.safetensors'), safetensors([
        ('visual.conv1.weight', 'F32', [1, 1, 2, 2], f32),
        ('vision_model.embeddings.patch_embedding.weight', 'F32', [1, 1, 2, 2], f32),
        ('logit_scale', 'F32', [], f32[:4]),
    ]))
    os.makedirs(st + '-full')
    shutil.copy(os.path.join(out, 'openclip', 'open_clip_model.safetensors'),
                os.path.join(st + '-full', 'openclip-tiny.safetensors'))

    cfg_dir = os.path.join(out, 'corpus-config')
    with open(os.path.join(out, 'hf', 'config.json')) as f:
        cfg = json.load(f)
    write(os.path.join(cfg_dir, 'config.json'), json.dumps(cfg, indent=2))
    gelu = json.loads(json.dumps(cfg))
    gelu['text_config']['hidden_act'] = gelu['vision_config']['hidden_act'] = 'gelu'
    write(os.path.join(cfg_dir, 'gelu.json'), json.dumps(gelu))
    legacy = {k: v for k, v in cfg.items() if k not in ('text_config', 'vision_config')}
    legacy['text_config_dict'] = cfg['text_config']
    legacy['vision_config_dict'] = cfg['vision_config']
    write(os.path.join(cfg_dir, 'legacy.json'), json.dumps(legacy))
    write(os.path.join(cfg_dir, 'minimal.json'),
          json.dumps({'model_type': 'clip', 'text_config': {}, 'vision_config': {}}))

    lab = os.path.join(out, 'corpus-labels')
    write(os.path.join(lab, 'file'), 'sky\nperson, man, woman\ncar\n')
    write(os.path.join(lab, 'list'), 'sky, person|man|woman, car')
    write(os.path.join(lab, 'unicode'), 'caf\u00e9, \u00fcber|\u0130stanbul\n\u4e2d\u6587, \U0001F600\n')
    write(os.path.join(lab, 'template'), 'a photo of a {}.\n{} in a video game.\r\n')

    npy_seeds(os.path.join(out, 'corpus-npy'))


def npy_seeds(d):
    """numpy's own .npy files in the dtypes and orders the engine's reader takes."""
    import numpy as np
    os.makedirs(d)
    arange = np.arange(24, dtype='<f4').reshape(2, 3, 4)
    np.save(os.path.join(d, 'f32.npy'), arange)
    np.save(os.path.join(d, 'i32.npy'), np.arange(6, dtype='<i4').reshape(3, 2))
    np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(arange))
    np.save(os.path.join(d, 'scalar.npy'), np.array(1.5, dtype='<f4'))
    np.save(os.path.join(d, 'empty.npy'), np.zeros((0, 5), dtype='<f4'))
    for version in ((2, 0), (3, 0)):
        with open(os.path.join(d, 'v%d.npy' % version[0]), 'wb') as f:
            np.lib.format.write_array(f, arange[0], version=version)


if __name__ == '__main__':
    main()
