"""CLIP's byte-level BPE vocabulary as files: the merges of OpenAI's
bpe_simple_vocab_16e6.txt.gz, CLIP's id layout, and the Hugging Face pair
vocab.json + merges.txt the engine loads (algorithms.md section 6). Shared by
convert-checkpoint.py and the tests' make_checkpoint.py."""

import gzip
import json
import os

FULL_MERGES = 49152 - 256 - 2  # 48894 merges used by CLIP


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table, in CLIP's order."""
    keep = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    chars = list(keep)
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, [chr(c) for c in chars]))


def read_bpe_merges(path):
    """The merge pairs CLIP uses (lines 2..48895 of the gz file)."""
    with gzip.open(path, 'rb') as f:
        lines = f.read().decode('utf-8').split('\n')
    merges = [tuple(line.split()) for line in lines[1:FULL_MERGES + 1]]
    return merges


def build_vocab(merges):
    """CLIP's id layout: bytes, bytes + </w>, one id per merge, start, end."""
    base = list(bytes_to_unicode().values())
    vocab = base + [c + '</w>' for c in base]
    vocab += [''.join(m) for m in merges]
    vocab += ['<|startoftext|>', '<|endoftext|>']
    encoder = {}
    for i, tok in enumerate(vocab):
        encoder[tok] = i  # later duplicates win, exactly like dict(zip(vocab, range))
    return encoder, len(vocab)


def write_hf_vocab(dirname, merges, encoder):
    with open(os.path.join(dirname, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(os.path.join(dirname, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n')
        for a, b in merges:
            f.write('%s %s\n' % (a, b))
