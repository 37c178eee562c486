#!/usr/bin/env python3
"""clipseg-engine against special files, as a careless or hostile user would
run it: every input that is not a regular file ends in an error naming what
it is, at once; NaN weights are named; outputs replace regular files and
write through FIFOs, devices and symlinks without replacing them.

usage: test_cli_files.py CLIPSEG_ENGINE MODEL_DIR
Every run has a timeout: without the checks a FIFO would hang the tool.
"""
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading

import numpy as np

TOOL, MODEL = sys.argv[1], sys.argv[2]
failures = []


def run(*args, stdout=subprocess.PIPE):
    return subprocess.run([TOOL, *args], stdout=stdout, stderr=subprocess.PIPE, timeout=30)


def check(name, ok, detail=''):
    print('%s %s %s' % ('ok  ' if ok else 'FAIL', name, detail))
    if not ok:
        failures.append(name)


def expect_error(name, args, words):
    r = run(*args)
    err = r.stderr.decode()
    check(name, r.returncode == 1 and all(w in err for w in words), err.strip())


def copy_model(dst, replace=None, kind=None):
    shutil.copytree(MODEL, dst)
    if replace:
        path = os.path.join(dst, replace)
        os.unlink(path)
        if kind == 'fifo':
            os.mkfifo(path)
        else:
            os.mkdir(path)
    return dst


def poison(dst, tensor):
    """Sets the first element of @tensor to NaN."""
    path = os.path.join(copy_model(dst), 'model.safetensors')
    data = bytearray(open(path, 'rb').read())
    n = struct.unpack('<Q', data[:8])[0]
    entry = json.loads(data[8:8 + n])[tensor]
    at = 8 + n + entry['data_offsets'][0]
    nan = {'F16': np.float16, 'F32': np.float32, 'BF16': np.float32}[entry['dtype']]('nan').tobytes()
    data[at:at + len(nan)] = nan if entry['dtype'] != 'BF16' else nan[2:]
    open(path, 'wb').write(data)
    return dst


def main():
    tmp = tempfile.mkdtemp(prefix='clipseg-cli-files-')
    try:
        labels = os.path.join(tmp, 'labels.txt')
        open(labels, 'w').write('sky\nperson, man\n')
        fifo = os.path.join(tmp, 'in.fifo')
        os.mkfifo(fifo)
        text = ['text', MODEL, '--templates', 'single', '--threads', '2']

        # inputs
        expect_error('labels FIFO', text + ['--labels-file', fifo, '--out', os.devnull],
                     [fifo, 'is a FIFO'])
        expect_error('labels /dev/zero', text + ['--labels-file', '/dev/zero', '--out', os.devnull],
                     ['/dev/zero', 'is a character device'])
        expect_error('labels directory', text + ['--labels-file', tmp, '--out', os.devnull],
                     [tmp, 'is a directory'])
        big = os.path.join(tmp, 'big.txt')
        open(big, 'w').write('thing, object\n' * 400000)
        expect_error('labels 5 MB', text + ['--labels-file', big, '--out', os.devnull],
                     [big, 'more than the 1048576'])
        many = os.path.join(tmp, 'many.txt')
        open(many, 'w').write(', '.join('thing %d' % i for i in range(5000)) + '\n')
        expect_error('5000 synonyms', text + ['--labels-file', many, '--out', os.devnull],
                     ['at most 4096'])
        expect_error('templates FIFO', ['text', MODEL, '--labels-file', labels, '--templates', fifo,
                                        '--out', os.devnull], [fifo, 'is a FIFO'])
        expect_error('model /dev/zero', ['info', '/dev/zero'],
                     ['/dev/zero', 'is a character device, not a checkpoint'])
        for name in ('model.safetensors', 'config.json', 'vocab.json', 'merges.txt'):
            for kind in ('fifo', 'dir'):
                folder = copy_model(os.path.join(tmp, 'model-%s-%s' % (kind, name)), name, kind)
                expect_error('model %s as %s' % (name, kind), ['info', folder],
                             [os.path.join(folder, name),
                              'is a FIFO' if kind == 'fifo' else 'is a directory'])
        pixels = os.path.join(tmp, 'neg.npy')
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -8, 8), }"
        header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
        open(pixels, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode())
        expect_error('npy negative dimension', ['dense', MODEL, '--input', pixels, '--out', os.devnull],
                     [pixels, 'dimension 2 is -8, negative'])
        ints = os.path.join(tmp, 'ints.npy')
        np.save(ints, np.zeros((3, 16, 16), np.int32))
        expect_error('npy dtype', ['dense', MODEL, '--input', ints, '--out', os.devnull],
                     [ints, 'dtype is int32'])
        flat = os.path.join(tmp, 'flat.npy')
        np.save(flat, np.zeros((16, 16), np.float32))
        expect_error('npy rank', ['dense', MODEL, '--input', flat, '--out', os.devnull],
                     [flat, 'rank is not 3'])
        nan_model = poison(os.path.join(tmp, 'nan-model'), 'vision_model.embeddings.patch_embedding.weight')
        expect_error('NaN weight named', ['info', nan_model],
                     ['vision_model.embeddings.patch_embedding.weight', 'finite'])

        # outputs
        want = run(*text, '--labels-file', labels, '--out', os.path.join(tmp, 'want.npy'))
        check('text runs', want.returncode == 0, want.stderr.decode())
        want = np.load(os.path.join(tmp, 'want.npy'))
        regular = os.path.join(tmp, 'regular.npy')
        open(regular, 'w').write('old')
        r = run(*text, '--labels-file', labels, '--out', regular)
        check('regular file replaced', r.returncode == 0 and np.array_equal(np.load(regular), want))

        target = os.path.join(tmp, 'target.npy')
        link = os.path.join(tmp, 'link.npy')
        open(target, 'w').write('old')
        os.symlink(target, link)
        r = run(*text, '--labels-file', labels, '--out', link)
        check('symlink written through', r.returncode == 0 and os.path.islink(link)
              and np.array_equal(np.load(target), want), r.stderr.decode())

        out_fifo = os.path.join(tmp, 'out.fifo')
        os.mkfifo(out_fifo)
        got = {}
        reader = threading.Thread(target=lambda: got.update(data=open(out_fifo, 'rb').read()))
        reader.start()
        r = run(*text, '--labels-file', labels, '--out', out_fifo)
        reader.join(30)
        check('FIFO written with a reader', r.returncode == 0
              and stat.S_ISFIFO(os.lstat(out_fifo).st_mode) and got.get('data', b'')[:6] == b'\x93NUMPY',
              r.stderr.decode())

        r = run(*text, '--labels-file', labels, '--out', '/dev/null')
        check('/dev/null stays a character device', r.returncode == 0
              and stat.S_ISCHR(os.lstat('/dev/null').st_mode), r.stderr.decode())

        r = run(*text, '--labels-file', labels, '--out', '/dev/stdout')
        check('/dev/stdout into a pipe', r.returncode == 0 and r.stdout[:6] == b'\x93NUMPY'
              and stat.S_ISLNK(os.lstat('/dev/stdout').st_mode), r.stderr.decode())
        redirected = os.path.join(tmp, 'redirected.npy')
        with open(redirected, 'wb') as f:
            r = run(*text, '--labels-file', labels, '--out', '/dev/stdout', stdout=f)
        check('/dev/stdout into a file', r.returncode == 0 and np.array_equal(np.load(redirected), want),
              r.stderr.decode())
        expect_error('directory output', text + ['--labels-file', labels, '--out', tmp],
                     [tmp, 'is a directory'])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('%d failed' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
