#!/usr/bin/python3
"""A small byte-level BPE vocabulary in CLIP's exact layout, and CLIP's tokenizer.

Layout of the ids (as OpenAI CLIP builds its 49,408-id vocabulary, only shorter):
    0..255      the 256 byte characters in GPT-2 bytes_to_unicode order
    256..511    the same characters followed by "</w>"
    512..       one id per merge, in rank order (the two halves joined)
    then        <|startoftext|>, <|endoftext|>
written as Hugging Face `vocab.json` + `merges.txt` ("#version: 0.2" header).

The tokenizer follows CLIP's simple_tokenizer (algorithms.md §6): HTML-unescape twice,
collapse whitespace, strip, lowercase; split with CLIP's pre-tokenising pattern; map each
piece's UTF-8 bytes to unicode characters; put "</w>" on the last symbol; repeatedly merge
the lowest-ranked adjacent pair (every occurrence, left to right).  ftfy's text repair is not
applied (not installed here; it is the identity on the ASCII captions of the world).

    bpe.py build --out DIR [--merges N] [--scenes N]   learn merges from world captions
    bpe.py encode --vocab DIR TEXT...                   print ids
"""
import argparse
import html
import json
import os
import re
import sys

try:
    import regex
    _PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                         regex.IGNORECASE)
except ImportError:  # same classes for everything but exotic scripts
    _PAT = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""",
                      re.IGNORECASE)

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character table, in its order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    order = keep + [b for b in range(256) if b not in keep]
    return {b: table[b] for b in order}  # insertion order = id order


B2U = bytes_to_unicode()


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


def pieces(text):
    """Pre-tokenised pieces of cleaned text, each as its byte-unicode string."""
    return ["".join(B2U[b] for b in p.encode("utf-8")) for p in _PAT.findall(clean(text))]


def word_symbols(piece):
    return list(piece[:-1]) + [piece[-1] + "</w>"]


def apply_merges(symbols, ranks):
    """CLIP's BPE loop on one word."""
    word = list(symbols)
    while len(word) > 1:
        best, best_rank = None, None
        for pair in zip(word, word[1:]):
            r = ranks.get(pair)
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = pair, r
        if best is None:
            break
        a, b = best
        out, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


class Tokenizer:
    def __init__(self, vocab, merges):
        """vocab: token -> id; merges: list of (a, b) in rank order."""
        self.encoder = dict(vocab)
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.sot = self.encoder[SOT]
        self.eot = self.encoder[EOT]
        self.cache = {}

    @classmethod
    def load(cls, d):
        vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
        merges = []
        for line in open(os.path.join(d, "merges.txt"), encoding="utf-8"):
            line = line.rstrip("\n")
            if not line or line.startswith("#version"):
                continue
            a, b = line.split(" ")
            merges.append((a, b))
        return cls(vocab, merges)

    def bpe(self, piece):
        if piece not in self.cache:
            self.cache[piece] = apply_merges(word_symbols(piece), self.ranks)
        return self.cache[piece]

    def encode(self, text, context=77):
        """[sot] + tokens + [eot], cut (keeping eot last) to at most @context ids."""
        ids = [self.sot]
        for p in pieces(text):
            if p in (SOT, EOT):  # the special strings as typed: CLIP maps them to their ids
                ids.append(self.encoder[p])
                continue
            ids.extend(self.encoder[t] for t in self.bpe(p))
        ids = ids[:context - 1] + [self.eot]
        return ids

    def decode(self, ids):
        u2b = {u: b for b, u in B2U.items()}
        text = "".join(self.decoder[i] for i in ids if i not in (self.sot, self.eot))
        raw = bytes(u2b[c] for c in text).decode("utf-8", errors="replace")
        return raw.replace("</w>", " ").strip()


def learn(texts, n_merges):
    """Learns up to n_merges merges from word frequencies (most frequent pair first; ties by
    the pair itself, so the result is deterministic).  A merge whose result string already
    exists is skipped so every merge has its own id, as the layout requires."""
    freq = {}
    for t in texts:
        for p in pieces(t):
            freq[p] = freq.get(p, 0) + 1
    words = [(word_symbols(p), f) for p, f in sorted(freq.items())]
    tokens = set(B2U.values()) | {c + "</w>" for c in B2U.values()}
    merges = []
    while len(merges) < n_merges:
        counts = {}
        for sym, f in words:
            for pair in zip(sym, sym[1:]):
                counts[pair] = counts.get(pair, 0) + f
        cands = sorted(((c, p) for p, c in counts.items() if p[0] + p[1] not in tokens),
                       key=lambda cp: (-cp[0], cp[1]))
        if not cands or cands[0][0] < 2:
            break
        a, b = cands[0][1]
        merges.append((a, b))
        tokens.add(a + b)
        for i, (sym, f) in enumerate(words):
            if len(sym) < 2:
                continue
            out, j = [], 0
            while j < len(sym):
                if j < len(sym) - 1 and sym[j] == a and sym[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(sym[j])
                    j += 1
            words[i] = (out, f)
    return merges


def vocab_from_merges(merges):
    toks = list(B2U.values())
    toks += [t + "</w>" for t in list(B2U.values())]
    toks += [a + b for a, b in merges]
    toks += [SOT, EOT]
    vocab = {t: i for i, t in enumerate(toks)}
    assert len(vocab) == len(toks), "duplicate token"
    return vocab


def write(d, merges):
    os.makedirs(d, exist_ok=True)
    vocab = vocab_from_merges(merges)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(a + " " + b + "\n")
    return Tokenizer(vocab, merges)


def corpus(n_scenes=3000, seed=7_000_000):
    """Captions of world scenes, every template with every class name, colour words."""
    import numpy as np
    import world
    texts = []
    rng = np.random.default_rng(seed)
    for i in range(n_scenes):
        objs = [(str(rng.choice(world.OBJECTS)), str(rng.choice(world.COLOUR_NAMES)))
                for _ in range(int(rng.integers(0, 5)))]
        stuff = [s for s in world.STUFF if rng.random() < 0.5]
        adj = str(rng.choice(["blue", "cloudy", "orange", "gray"]))
        texts.append(world.caption(objs, stuff, adj, rng))
    for t in world.IMAGENET_TEMPLATES:
        for c in world.CLASSES + [world.PLURAL[o] for o in world.OBJECTS]:
            texts.append(t.format(c))
    texts += world.COLOUR_NAMES * 20
    return texts


def main(argv=None):
    ap = argparse.ArgumentParser(description="CLIP-layout BPE vocabulary for the world")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--merges", type=int, default=2000)
    b.add_argument("--scenes", type=int, default=3000)
    e = sub.add_parser("encode")
    e.add_argument("--vocab", required=True)
    e.add_argument("text", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "build":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        merges = learn(corpus(a.scenes), a.merges)
        tok = write(a.out, merges)
        print("%d merges, %d ids" % (len(merges), len(tok.encoder)))
    else:
        tok = Tokenizer.load(a.vocab)
        for t in a.text:
            print(" ".join(map(str, tok.encode(t))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
