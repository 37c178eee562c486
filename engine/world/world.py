#!/usr/bin/python3
"""Procedural world for clipseg: seeded scenes and videos with pixel-exact ground truth.

A scene is a landscape of "stuff" classes (sky over grass, water or sand, ponds, beaches,
top-down fields) with a few objects on it (balls, boxes, stars, tents, trees, cars, houses,
boats) drawn with varied shape parameters, colours, textures, sizes, rotations and mutual
occlusion.  Every scene comes with a uint8 label map (index into CLASSES) and an English
caption; videos add moving objects, objects entering or leaving the frame and camera pans.
Everything is plain numpy and deterministic per seed.

Command line:
    world.py classes
    world.py scene --seed N --size WxH --out DIR
    world.py video --seed N --size WxH --frames F (--out DIR | --raw) [--gt-npy PATH]
"""
import argparse
import json
import math
import os
import struct
import sys
import zlib

import numpy as np

STUFF = ["sky", "grass", "water", "sand"]
OBJECTS = ["ball", "box", "star", "tent", "tree", "car", "house", "boat"]
CLASSES = STUFF + OBJECTS
CID = {n: i for i, n in enumerate(CLASSES)}
PLURAL = {"ball": "balls", "box": "boxes", "star": "stars", "tent": "tents", "tree": "trees",
          "car": "cars", "house": "houses", "boat": "boats"}

COLOURS = {
    "red": (205, 35, 35), "orange": (240, 135, 25), "yellow": (245, 215, 40),
    "green": (45, 165, 60), "blue": (35, 85, 215), "purple": (135, 55, 175),
    "pink": (245, 135, 185), "white": (240, 240, 236), "black": (28, 28, 30),
    "brown": (125, 78, 38), "gray": (130, 130, 135),
}
COLOUR_NAMES = list(COLOURS)

# Per-class palette restrictions (what the caption's colour word may be).
CLASS_COLOURS = {
    "tree": ["green", "green", "green", "orange", "red", "yellow"],
    "house": ["white", "yellow", "red", "brown", "gray", "blue", "pink", "orange"],
    "boat": ["white", "red", "blue", "yellow", "brown", "black", "orange", "green"],
}

# The 80 prompt templates OpenAI used for ImageNet zero-shot classification; the engine's
# default template set.  Training captions use them too so the text tower knows their words.
IMAGENET_TEMPLATES = [
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
    "a photo of the hard to see {}.", "a low resolution photo of the {}.", "a rendering of a {}.",
    "graffiti of a {}.", "a bad photo of the {}.", "a cropped photo of the {}.",
    "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.",
    "a dark photo of the {}.", "a drawing of a {}.", "a photo of my {}.", "the plastic {}.",
    "a photo of the cool {}.", "a close-up photo of a {}.", "a black and white photo of the {}.",
    "a painting of the {}.", "a painting of a {}.", "a pixelated photo of the {}.",
    "a sculpture of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
    "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.",
    "a rendering of the {}.", "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.",
    "a close-up photo of the {}.", "a photo of a {}.", "the origami {}.",
    "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.", "a origami {}.",
    "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.",
    "a photo of a nice {}.", "a photo of a weird {}.", "a blurry photo of a {}.",
    "a cartoon {}.", "art of a {}.", "a sketch of the {}.", "a embroidered {}.",
    "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.",
    "a photo of the small {}.", "a photo of the weird {}.", "the cartoon {}.", "art of the {}.",
    "a drawing of the {}.", "a photo of the large {}.", "a black and white photo of a {}.",
    "the plushie {}.", "a dark photo of a {}.", "itap of a {}.", "graffiti of the {}.",
    "a toy {}.", "itap of my {}.", "a photo of a cool {}.", "a photo of a small {}.",
    "a tattoo of the {}.",
]
assert len(IMAGENET_TEMPLATES) == 80


# ----------------------------------------------------------------------------- noise

def value_noise(rng, h, w, cell, x0=0.0, y0=0.0):
    """Smooth noise in [0,1] over an h x w grid with feature size ~cell pixels (bilinear
    interpolation of a random lattice with smoothstep weights)."""
    cell = max(float(cell), 1.0)
    gh = int(math.ceil((h + y0) / cell)) + 2
    gw = int(math.ceil((w + x0) / cell)) + 2
    lat = rng.random((gh, gw), dtype=np.float32)
    ys = (np.arange(h, dtype=np.float32) + y0) / cell
    xs = (np.arange(w, dtype=np.float32) + x0) / cell
    yi = ys.astype(np.int32)
    xi = xs.astype(np.int32)
    fy = ys - yi
    fx = xs - xi
    fy = (fy * fy * (3 - 2 * fy))[:, None]
    fx = (fx * fx * (3 - 2 * fx))[None, :]
    rows = lat[:, xi] * (1 - fx) + lat[:, xi + 1] * fx  # separable: x first, then y
    return rows[yi] * (1 - fy) + rows[yi + 1] * fy


def fractal(rng, h, w, cell, octaves=3):
    out = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    for _ in range(octaves):
        out += amp * value_noise(rng, h, w, cell)
        tot += amp
        amp *= 0.5
        cell = max(cell / 2, 1.0)
    return out / tot


def curve(rng, w, base, amp, cell):
    """A 1-D wavy line y(x) (float array of length w)."""
    if amp <= 0:
        return np.full(w, base, np.float32)
    n = value_noise(rng, 1, w, cell)[0] * 0.7 + value_noise(rng, 1, w, cell / 3)[0] * 0.3
    return base + (n - 0.5) * 2 * amp


def jitter(rng, rgb, amount=18):
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def mix(a, b, t):
    """Blend colours a,b (3,) with weights t (...,) -> (...,3)."""
    t = np.asarray(t, np.float32)[..., None]
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


# ----------------------------------------------------------------------------- backgrounds

def render_sky(rng, h, w, yh):
    """Sky texture; yh = horizon row (float) for the gradient. Returns (img, adjective)."""
    style = rng.choice(["blue", "blue", "blue", "cloudy", "sunset", "gray"])
    if style in ("blue", "cloudy"):
        top = jitter(rng, (60, 120, 215), 20)
        bot = jitter(rng, (165, 205, 240), 15)
    elif style == "sunset":
        top = jitter(rng, (70, 70, 150), 20)
        bot = jitter(rng, (245, 165, 95), 15)
    else:
        top = jitter(rng, (140, 150, 165), 15)
        bot = jitter(rng, (200, 205, 210), 10)
    t = np.clip(np.arange(h, dtype=np.float32) / max(yh, 8.0), 0, 1) ** 0.8
    img = np.broadcast_to(mix(top, bot, t)[:, None, :], (h, w, 3)).copy()
    cover = {"blue": 0.25, "cloudy": 0.6, "sunset": 0.3, "gray": 0.5}[style] * rng.uniform(0.3, 1.3)
    if cover > 0.1:
        cell = rng.uniform(0.15, 0.35) * max(h, 40)
        n = fractal(rng, h, w, cell, 3)
        thr = 1.0 - 0.5 * min(cover, 1.0)
        m = np.clip((n - thr) / 0.12, 0, 1)
        cc = (250, 250, 250) if style != "gray" else (225, 228, 232)
        if style == "sunset":
            cc = (250, 200, 180)
        img = img * (1 - m[..., None] * 0.85) + np.asarray(cc, np.float32) * m[..., None] * 0.85
    adj = {"blue": "blue", "cloudy": "cloudy", "sunset": "orange", "gray": "gray"}[style]
    return img, adj


def render_grass(rng, h, w):
    base = jitter(rng, rng.choice([(70, 150, 50), (95, 165, 60), (55, 125, 45), (120, 165, 70)]), 15)
    low = fractal(rng, h, w, rng.uniform(12, 40), 3)
    blades = value_noise(rng, h, w, 1.0)  # per-pixel grain
    streak = value_noise(rng, max(h // 3, 1), w, 1.5)
    streak = np.repeat(streak, 3, axis=0)[:h]
    if streak.shape[0] < h:
        streak = np.pad(streak, ((0, h - streak.shape[0]), (0, 0)), mode="edge")
    f = 0.75 + 0.35 * low + 0.12 * (blades - 0.5) + 0.22 * (streak - 0.5)
    img = base * f[..., None]
    return np.clip(img, 0, 255)


def render_water(rng, h, w, y0=0):
    base = jitter(rng, rng.choice([(40, 100, 185), (30, 120, 160), (50, 90, 150), (60, 140, 200)]), 15)
    ys = np.arange(h, dtype=np.float32)[:, None] + y0
    warp = fractal(rng, h, w, rng.uniform(15, 40), 2)
    lam = rng.uniform(5, 11)
    wave = np.sin(2 * np.pi * (ys / lam + 1.5 * warp))
    f = 0.85 + 0.1 * wave + 0.2 * (fractal(rng, h, w, rng.uniform(20, 60), 2) - 0.5)
    img = base * f[..., None]
    sparkle = value_noise(rng, h, w, 1.3)
    s = np.clip((sparkle - 0.93) / 0.05, 0, 1) * (wave > 0.6)
    img = img * (1 - s[..., None]) + 235 * s[..., None]
    return np.clip(img, 0, 255)


def render_sand(rng, h, w):
    base = jitter(rng, rng.choice([(225, 200, 145), (215, 185, 125), (235, 215, 165), (200, 170, 120)]), 12)
    grain = rng.random((h, w), dtype=np.float32)
    low = fractal(rng, h, w, rng.uniform(15, 50), 3)
    a = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    rip = np.sin((xs * np.cos(a) + ys * np.sin(a)) / rng.uniform(2.5, 5) + 4 * low)
    f = 0.86 + 0.16 * low + 0.08 * (grain - 0.5) + 0.04 * rip
    return np.clip(base * f[..., None], 0, 255)


GROUND = {"grass": render_grass, "water": render_water, "sand": render_sand}


def render_background(rng, h, w):
    """Returns (img float32 [h,w,3], gt uint8 [h,w], info dict)."""
    gt = np.zeros((h, w), np.uint8)
    layout = rng.choice(["horizon", "horizon", "horizon", "two", "two", "top", "pond", "sky"])
    info = {"layout": str(layout), "sky_adj": None}
    grounds = ["grass", "water", "sand"]
    if layout in ("horizon", "two", "sky"):
        if layout == "sky":
            yh_base = rng.uniform(0.72, 1.05) * h
        else:
            yh_base = rng.uniform(0.22, 0.62) * h
        g1 = str(rng.choice(grounds))
        amp = 0 if g1 == "water" else rng.uniform(0, 0.12) * h
        hor = curve(rng, w, yh_base, amp, rng.uniform(0.3, 1.0) * w)
        sky, adj = render_sky(rng, h, w, yh_base)
        info["sky_adj"] = adj
        ys = np.arange(h, dtype=np.float32)[:, None]
        below = ys >= hor[None, :]
        img = sky
        img[below] = GROUND[g1](rng, h, w)[below]
        gt[below] = CID[g1]
        if layout == "two":
            g2 = str(rng.choice([g for g in grounds if g != g1]))
            y2 = yh_base + rng.uniform(0.25, 0.7) * (h - yh_base)
            c2 = curve(rng, w, y2, rng.uniform(0.02, 0.12) * h, rng.uniform(0.3, 1.0) * w)
            below2 = ys >= np.maximum(c2, hor + 2)[None, :]
            img[below2] = GROUND[g2](rng, h, w)[below2]
            gt[below2] = CID[g2]
    elif layout == "top":
        g1, g2 = [str(g) for g in rng.choice(grounds, 2, replace=False)]
        img = GROUND[g1](rng, h, w)
        gt[:] = CID[g1]
        if rng.random() < 0.8:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            a = rng.uniform(0, 2 * np.pi)
            d = (xs - w / 2) * np.cos(a) + (ys - h / 2) * np.sin(a)
            d = d + (fractal(rng, h, w, rng.uniform(0.2, 0.5) * max(h, w), 2) - 0.5) * 0.4 * max(h, w)
            m = d > rng.uniform(-0.3, 0.3) * min(h, w)
            img[m] = GROUND[g2](rng, h, w)[m]
            gt[m] = CID[g2]
    else:  # pond: a blob of water (or sand) in grass (or sand)
        g1 = str(rng.choice(["grass", "sand", "grass"]))
        g2 = "water" if rng.random() < 0.8 else str(rng.choice([g for g in grounds if g != g1]))
        img = GROUND[g1](rng, h, w)
        gt[:] = CID[g1]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        rx, ry = rng.uniform(0.2, 0.45) * w, rng.uniform(0.2, 0.45) * h
        r = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
        r = r + (fractal(rng, h, w, 0.3 * max(h, w), 2) - 0.5) * 0.6
        m = r < 1
        img[m] = GROUND[g2](rng, h, w)[m]
        gt[m] = CID[g2]
    return img.astype(np.float32), gt, info


# ----------------------------------------------------------------------------- objects
# Every object lives in its own unit frame (u right, v down) scaled by s = pixels per unit;
# its bottom ("base") is at v = BASE_V[class]; R[class] bounds its extent from the centre.

R = {"ball": 1.0, "box": 1.45, "star": 1.0, "tent": 1.75, "tree": 1.25, "car": 1.25, "house": 1.45, "boat": 1.3}
BASE_V = {"ball": 1.0, "box": 1.0, "star": 0.9, "tent": 1.0, "tree": 1.0, "car": 0.67, "house": 1.0, "boat": 0.6}
FLOATERS = ("ball", "star")


def make_object(rng, cls, s, cx, cy):
    """Random parameters of one object; s = pixels per unit, (cx,cy) centre in pixels."""
    if cls in CLASS_COLOURS:
        cname = str(rng.choice(CLASS_COLOURS[cls]))
    else:
        cname = str(rng.choice(COLOUR_NAMES))
    o = {
        "cls": cls, "colour": cname, "rgb": jitter(rng, COLOURS[cname], 14).tolist(),
        "s": float(s), "cx": float(cx), "cy": float(cy),
        "rot": 0.0, "flip": bool(rng.random() < 0.5),
        "tex": str(rng.choice(["plain", "plain", "shade", "stripes", "dots", "noise"])),
        "tex_f": float(rng.uniform(2.5, 6.0)), "tex_a": float(rng.uniform(0, np.pi)),
        "alt": jitter(rng, COLOURS[str(rng.choice(COLOUR_NAMES))], 10).tolist(),
        "ph": rng.uniform(0, 2 * np.pi, 4).tolist(),
        "outline": bool(rng.random() < 0.35),
        "vx": 0.0, "vy": 0.0, "vrot": 0.0,
    }
    if cls == "ball":
        o["rot"] = float(rng.uniform(0, 2 * np.pi))
        o["style"] = str(rng.choice(["shiny", "shiny", "beach", "band"]))
        o["segs"] = int(rng.integers(3, 7))
    elif cls == "box":
        o["style"] = str(rng.choice(["cube", "cube", "flat"]))
        o["rot"] = float(rng.uniform(-0.15, 0.15) if o["style"] == "cube" else rng.uniform(0, np.pi / 2))
        o["aspect"] = float(rng.uniform(0.65, 1.25))
        o["depth"] = float(rng.uniform(0.25, 0.45))
    elif cls == "star":
        o["rot"] = float(rng.uniform(0, 2 * np.pi))
        o["n"] = int(rng.choice([5, 5, 5, 4, 6]))
        o["inner"] = float(rng.uniform(0.38, 0.55))
    elif cls == "tent":
        o["rot"] = float(rng.uniform(-0.08, 0.08))
        o["half"] = float(rng.uniform(0.9, 1.5))
        o["door"] = float(rng.uniform(0.1, 0.45))
    elif cls == "tree":
        o["style"] = str(rng.choice(["round", "round", "pine"]))
        o["trunk"] = jitter(rng, (110, 70, 35), 15).tolist()
        o["blobs"] = rng.uniform(-1, 1, (4, 3)).tolist()
        o["tiers"] = int(rng.integers(2, 5))
    elif cls == "car":
        o["cabin"] = float(rng.uniform(0.25, 0.6))
        o["len"] = float(rng.uniform(0.9, 1.15))
    elif cls == "house":
        o["roof"] = jitter(rng, COLOURS[str(rng.choice(["red", "brown", "gray", "black", "blue"]))], 12).tolist()
        o["door_u"] = float(rng.uniform(-0.5, 0.25))
        o["chimney"] = bool(rng.random() < 0.5)
        o["wide"] = float(rng.uniform(0.75, 1.15))
    elif cls == "boat":
        o["sail"] = jitter(rng, COLOURS[str(rng.choice(["white", "white", "white", "red", "yellow", "blue"]))], 8).tolist()
        o["jib"] = bool(rng.random() < 0.5)
    return o


def _texture(o, u, v, rgb):
    """Body colour array for local coords (u,v) -> (...,3)."""
    base = np.asarray(rgb, np.float32)
    t = o["tex"]
    if t == "plain":
        return np.broadcast_to(base, u.shape + (3,))
    if t == "shade":
        f = 1.15 - 0.3 * (v + 1) / 2
        return base * f[..., None]
    a, fr = o["tex_a"], o["tex_f"]
    if t == "stripes":
        m = np.sin((u * np.cos(a) + v * np.sin(a)) * fr * np.pi + o["ph"][0]) > 0.3
        return mix(base, o["alt"], m * 0.8)
    if t == "dots":
        du = np.sin(u * fr * np.pi + o["ph"][0])
        dv = np.sin(v * fr * np.pi + o["ph"][1])
        m = (du * dv) > 0.55
        return mix(base, o["alt"], m * 0.85)
    # noise: smooth blotches from a sum of sinusoids in local coords
    n = (np.sin(u * 3.1 * fr + o["ph"][0]) + np.sin(v * 2.7 * fr + o["ph"][1])
         + np.sin((u + v) * 1.9 * fr + o["ph"][2])) / 3
    return base * (0.88 + 0.18 * n)[..., None]


def _star_mask(u, v, n, inner):
    r = np.sqrt(u * u + v * v)
    phi = np.mod(np.arctan2(v, u) + np.pi / 2, 2 * np.pi)  # 0 at the top point
    alpha = np.pi / n
    k = np.floor(phi / alpha)
    ra = np.where(k % 2 == 0, 1.0, inner)
    rb = np.where(k % 2 == 0, inner, 1.0)
    ta, tb = k * alpha, (k + 1) * alpha
    ax, ay = ra * np.cos(ta), ra * np.sin(ta)
    bx, by = rb * np.cos(tb), rb * np.sin(tb)
    px, py = r * np.cos(phi), r * np.sin(phi)
    cross_p = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    cross_o = (bx - ax) * (0 - ay) - (by - ay) * (0 - ax)
    inside = (cross_p * cross_o) >= 0
    return inside, k


def object_layers(o, u, v):
    """List of (mask, colour array) drawn in order; the union is the object's GT."""
    cls = o["cls"]
    rgb = np.asarray(o["rgb"], np.float32)
    L = []
    if cls == "ball":
        m = u * u + v * v <= 1
        if o["style"] == "beach":
            ang = np.mod(np.arctan2(v, u), 2 * np.pi)
            seg = np.floor(ang / (2 * np.pi) * o["segs"] * 2) % 2
            col = mix(rgb, (240, 240, 240), seg)
        elif o["style"] == "band":
            col = mix(rgb, o["alt"], np.abs(v) < 0.25)
        else:
            col = _texture(o, u, v, rgb)
        d2 = (u + 0.35) ** 2 + (v + 0.4) ** 2
        shade = np.clip(1.3 - 0.42 * d2, 0.5, 1.35)
        L.append((m, col * shade[..., None]))
    elif cls == "box":
        a = o["aspect"]
        if o["style"] == "flat":
            m = (np.abs(u) <= 1) & (np.abs(v) <= a)
            L.append((m, _texture(o, u, v, rgb)))
            edge = m & ((np.abs(u) > 0.86) | (np.abs(v) > a - 0.14))
            L.append((edge, np.broadcast_to(rgb * 0.6, u.shape + (3,))))
            tape = m & (np.abs(u) < 0.12)
            L.append((tape, np.broadcast_to(rgb * 0.8 + 30, u.shape + (3,))))
        else:
            d = o["depth"]
            # front face u in [-1, 1-d], v in [-1+d, 1]; top and side faces recede up-right
            front = (u >= -1) & (u <= 1 - d) & (v >= -1 + d) & (v <= 1)
            t = (-1 + d) - v
            top = (v >= -1) & (v < -1 + d) & (u >= -1 + t) & (u <= 1 - d + t)
            su = u - (1 - d)
            side = (u > 1 - d) & (u <= 1) & (v >= -1 + d - su) & (v <= 1 - su)
            L.append((front, _texture(o, u, v, rgb) * 0.92))
            L.append((top, np.broadcast_to(np.clip(rgb * 1.2 + 20, 0, 255), u.shape + (3,))))
            L.append((side, np.broadcast_to(rgb * 0.62, u.shape + (3,))))
    elif cls == "star":
        m, k = _star_mask(u, v, o["n"], o["inner"])
        col = _texture(o, u, v, rgb) if o["tex"] in ("plain", "shade", "noise") else np.broadcast_to(rgb, u.shape + (3,))
        shade = np.where(k % 2 == 0, 1.08, 0.8)
        L.append((m, col * shade[..., None]))
    elif cls == "tent":
        w = o["half"]
        m = (v <= 1) & (v >= -1) & (np.abs(u) <= w * (v + 1) / 2)
        col = _texture(o, u, v, rgb) * np.where(u < 0, 0.85, 1.05)[..., None]
        L.append((m, col))
        dy = o["door"]
        door = (v >= dy) & (np.abs(u) <= w * 0.4 * (v - dy) / (1 - dy + 1e-6)) & m
        L.append((door, np.broadcast_to(rgb * 0.35, u.shape + (3,))))
    elif cls == "tree":
        trunk = np.asarray(o["trunk"], np.float32)
        if o["style"] == "round":
            tm = (np.abs(u) <= 0.14) & (v >= 0.0) & (v <= 1)
            L.append((tm, np.broadcast_to(trunk, u.shape + (3,))))
            crown = (u * u / 0.5 + (v + 0.35) ** 2 / 0.42) <= 1
            for bx, by, br in o["blobs"]:
                crown |= ((u - 0.45 * bx) ** 2 + (v + 0.4 + 0.25 * by) ** 2) <= (0.35 + 0.12 * br) ** 2
            n = (np.sin(u * 11 + o["ph"][0]) * np.sin(v * 13 + o["ph"][1]))
            shade = 1.05 - 0.25 * (v + 1) / 2 + 0.12 * n
            L.append((crown, rgb * shade[..., None]))
        else:
            tm = (np.abs(u) <= 0.1) & (v >= 0.55) & (v <= 1)
            L.append((tm, np.broadcast_to(trunk, u.shape + (3,))))
            tiers = o["tiers"]
            crown = np.zeros(u.shape, bool)
            for i in range(tiers):
                top = -1 + i * (1.55 / tiers) * 0.8
                bot = top + 1.55 / tiers * 1.35
                bot = min(bot, 0.65)
                wd = 0.55 + 0.3 * (i + 1) / tiers
                crown |= (v >= top) & (v <= bot) & (np.abs(u) <= wd * (v - top) / (bot - top))
            shade = np.where(u < 0, 0.85, 1.05)
            L.append((crown, rgb * shade[..., None]))
    elif cls == "car":
        uu = -u if o["flip"] else u
        ln = o["len"]
        body = (((np.abs(uu) / ln) ** 6 + ((v - 0.2) / 0.27) ** 6) <= 1)
        c = o["cabin"]
        cab = (v >= -0.5) & (v <= 0.0) & (uu >= -0.55 - (v + 0.5) * 0.4) & (uu <= c + (v + 0.5) * 0.5)
        L.append((body | cab, _texture(o, u, v, rgb)))
        win = (v >= -0.42) & (v <= -0.06) & (uu >= -0.47 - (v + 0.42) * 0.4) & (uu <= c - 0.08 + (v + 0.42) * 0.5) & (np.abs(uu - (c - 0.5) / 2) > 0.04)
        L.append((win, np.broadcast_to(np.asarray((170, 200, 220), np.float32), u.shape + (3,))))
        for wx in (-0.62 * ln, 0.62 * ln):
            d2 = (uu - wx) ** 2 + (v - 0.45) ** 2
            L.append((d2 <= 0.22 ** 2, np.broadcast_to(np.asarray((25, 25, 28), np.float32), u.shape + (3,))))
            L.append((d2 <= 0.09 ** 2, np.broadcast_to(np.asarray((160, 160, 165), np.float32), u.shape + (3,))))
        L.append(((np.abs(uu - ln + 0.05) < 0.06) & (np.abs(v - 0.1) < 0.06), np.broadcast_to(np.asarray((250, 230, 120), np.float32), u.shape + (3,))))
    elif cls == "house":
        wd = o["wide"]
        wall = (np.abs(u) <= 0.8 * wd) & (v >= -0.1) & (v <= 1)
        roof = (v < -0.1) & (v >= -1) & (np.abs(u) <= wd * (v + 1) / 0.9)
        chim = np.zeros(u.shape, bool)
        if o["chimney"]:
            chim = (u >= 0.35 * wd) & (u <= 0.55 * wd) & (v >= -0.95) & (v < -0.3)
        L.append((chim, np.broadcast_to(np.asarray(o["roof"], np.float32) * 0.8, u.shape + (3,))))
        wc = _texture(o, u, v, rgb)
        L.append((wall, wc))
        L.append((roof, np.asarray(o["roof"], np.float32) * np.where(u < 0, 0.85, 1.0)[..., None]))
        du = o["door_u"] * wd
        door = (u >= du) & (u <= du + 0.3 * wd) & (v >= 0.45) & (v <= 1)
        L.append((door, np.broadcast_to(rgb * 0.45, u.shape + (3,))))
        for wx in (-0.5 * wd, 0.45 * wd):
            if abs(wx - (du + 0.15 * wd)) < 0.35 * wd:
                continue
            win = (np.abs(u - wx) <= 0.16 * wd) & (np.abs(v - 0.3) <= 0.15)
            L.append((win, np.broadcast_to(np.asarray((200, 225, 240), np.float32), u.shape + (3,))))
    elif cls == "boat":
        uu = -u if o["flip"] else u
        hull = (v >= 0.3) & (v <= 0.75) & (np.abs(uu) <= 1.0 - (v - 0.3) * 0.9)
        mast = (np.abs(uu - 0.0) <= 0.035) & (v >= -1) & (v < 0.3)
        sail = (uu >= 0.07) & (v >= -0.95) & (v <= 0.22) & ((uu - 0.07) <= 0.8 * (v + 0.95) / 1.17)
        L.append((mast, np.broadcast_to(np.asarray((90, 60, 35), np.float32), u.shape + (3,))))
        L.append((sail, np.asarray(o["sail"], np.float32) * (0.9 + 0.1 * (uu > 0.4))[..., None]))
        if o["jib"]:
            jib = (uu <= -0.07) & (v >= -0.7) & (v <= 0.22) & ((-uu - 0.07) <= 0.55 * (v + 0.7) / 0.92)
            L.append((jib, np.asarray(o["sail"], np.float32) * 0.92 * np.ones(u.shape + (1,), np.float32)))
        L.append((hull, _texture(o, u, v, rgb) * np.where(v > 0.5, 0.85, 1.0)[..., None]))
    return L


def draw_object(o, img, gt, inst, k, ox=0.0, oy=0.0, t=0.0):
    """Rasterise object @o (instance id k) into the arrays; (ox,oy) camera offset, t = frame."""
    h, w = gt.shape
    cx = o["cx"] + o["vx"] * t - ox
    cy = o["cy"] + o["vy"] * t - oy
    s = o["s"]
    r = R[o["cls"]] * s + 1
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, w)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    X = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    Y = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    th = o["rot"] + o["vrot"] * t
    c, sn = math.cos(th), math.sin(th)
    u = (X * c + Y * sn) / s
    v = (-X * sn + Y * c) / s
    union = np.zeros(u.shape, bool)
    sub = img[y0:y1, x0:x1]
    for m, col in object_layers(o, u, v):
        if m.any():
            sub[m] = np.broadcast_to(col, u.shape + (3,))[m]
            union |= m
    if o["outline"] and union.any():
        inner = union.copy()
        inner[1:, :] &= union[:-1, :]
        inner[:-1, :] &= union[1:, :]
        inner[:, 1:] &= union[:, :-1]
        inner[:, :-1] &= union[:, 1:]
        edge = union & ~inner
        sub[edge] = sub[edge] * 0.45
    gt[y0:y1, x0:x1][union] = CID[o["cls"]]
    inst[y0:y1, x0:x1][union] = k


def place_objects(rng, gt_bg, n, h, w, allow_outside=0.15):
    """Chooses n objects consistent with the background layout (ground objects stand on
    ground, boats float on water, balls and stars anywhere)."""
    objs = []
    sky_rows = (gt_bg == CID["sky"]).mean(axis=1)
    ys_all, xs_all = np.nonzero(gt_bg != CID["sky"])
    water_y, water_x = np.nonzero(gt_bg == CID["water"])
    dry_y, dry_x = np.nonzero((gt_bg == CID["grass"]) | (gt_bg == CID["sand"]))
    horizon = float(np.argmax(sky_rows < 0.5)) if (sky_rows < 0.5).any() else float(h)
    for _ in range(n):
        cls = str(rng.choice(OBJECTS))
        if cls == "boat" and len(water_y) == 0 and rng.random() < 0.85:
            cls = str(rng.choice([c for c in OBJECTS if c != "boat"]))
        if cls not in FLOATERS and cls != "boat" and len(dry_y) == 0 and len(ys_all) and rng.random() < 0.7:
            cls = str(rng.choice(FLOATERS))
        size = math.exp(rng.uniform(math.log(0.14), math.log(0.55))) * min(h, w * 1.2)
        if cls in ("car", "house", "tent"):
            size *= 0.85
        s = size / 2
        if cls == "boat" and len(water_y):
            i = rng.integers(len(water_y))
            bx, by = water_x[i], water_y[i]
        elif cls not in FLOATERS and len(dry_y):
            i = rng.integers(len(dry_y))
            bx, by = dry_x[i], dry_y[i]
        elif cls not in FLOATERS and len(ys_all):
            i = rng.integers(len(ys_all))
            bx, by = xs_all[i], ys_all[i]
        else:
            bx, by = rng.uniform(0, w), rng.uniform(0, h)
        if horizon < h and by > horizon and cls not in FLOATERS:
            # perspective: smaller near the horizon
            s *= 0.55 + 0.6 * (by - horizon) / max(h - horizon, 1)
        s = max(s, 5.0)
        if rng.random() < allow_outside:
            bx = bx + rng.choice([-1, 1]) * rng.uniform(0.3, 0.8) * s
        cy = by - BASE_V[cls] * s if cls not in FLOATERS else by
        objs.append(make_object(rng, cls, s, bx, cy))
    # far (higher base) first, near last: nearer objects occlude farther ones
    objs.sort(key=lambda o: o["cy"] + BASE_V[o["cls"]] * o["s"])
    return objs


# ----------------------------------------------------------------------------- captions

def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def _join(items):
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def object_phrases(objs, rng, p_colour=0.4):
    """objs: list of (cls, colour). Returns phrases like 'a red ball', 'two stars'."""
    by = {}
    for c, col in objs:
        by.setdefault(c, []).append(col)
    out = []
    for c in by:
        cols = by[c]
        use_col = rng.random() < p_colour
        if len(cols) == 1:
            w = (cols[0] + " " + c) if use_col else c
            out.append(_article(w) + " " + w)
        elif len(set(cols)) == 1 or not use_col or rng.random() < 0.5:
            num = NUMBERS.get(len(cols), "many")
            adj = (cols[0] + " ") if (use_col and len(set(cols)) == 1) else ""
            out.append(num + " " + adj + PLURAL[c])
        else:
            out.extend(_article(col) + " " + col + " " + c for col in cols)
    rng.shuffle(out)
    return out


def stuff_phrase(stuff, sky_adj, rng):
    ground = [s for s in stuff if s != "sky"]
    parts = []
    if ground:
        g = [("the " if rng.random() < 0.5 else "") + s for s in ground]
        parts.append(rng.choice(["on ", "on ", "in "]) + _join(g))
    if "sky" in stuff:
        if sky_adj and rng.random() < 0.5:
            parts.append(rng.choice(["under a ", "below a "]) + sky_adj + " sky")
        else:
            parts.append(rng.choice(["under the sky", "below the sky", "under a sky"]))
    return " ".join(parts)


def caption(objs, stuff, sky_adj, rng):
    """objs: [(cls, colour)], stuff: stuff class names present."""
    ph = object_phrases(objs, rng) if objs else []
    r = rng.random()
    if not ph:
        st = list(stuff)
        rng.shuffle(st)
        if not st:
            return "a picture"
        if len(st) == 1:
            t = rng.choice(IMAGENET_TEMPLATES + ["{}"] * 10)
            return t.format(st[0])
        if "sky" in st and rng.random() < 0.5:
            g = [s for s in st if s != "sky"]
            return rng.choice(["sky over {}", "{} under the sky", "a view of {} and sky"]).format(_join(g))
        return _join(st)
    objtxt = _join(ph)
    if r < 0.12 and len(ph) == 1 and len(objs) == 1:
        return rng.choice(IMAGENET_TEMPLATES).format(ph[0].split(" ", 1)[1])
    if r < 0.2:
        return rng.choice(["a photo of {}.", "a picture of {}", "an image of {}", "{}"]).format(objtxt)
    if r < 0.35 and stuff:
        st = list(stuff)
        rng.shuffle(st)
        return _join(st) + rng.choice([" with ", " and "]) + objtxt
    sp = stuff_phrase(stuff, sky_adj, rng)
    if not sp:
        return objtxt
    pre = rng.choice(["", "", "", "a photo of ", "a picture of ", "there is "])
    if pre == "there is " and (len(ph) > 1 or not ph[0].startswith("a")):
        pre = "there are "
    return pre + objtxt + " " + sp


def visible_content(gt, inst, objs, region=None, min_frac_obj=0.25, min_area_obj=0.05,
                    min_px=12, min_area_stuff=0.08):
    """What a caption of (a region of) the scene may mention: objects with enough visible
    pixels (relative to their whole visible area or to the region), stuff classes covering
    enough of the region.  Returns ([(cls, colour)], [stuff names], [object indices])."""
    if region is not None:
        y0, y1, x0, x1 = region
        g, ins = gt[y0:y1, x0:x1], inst[y0:y1, x0:x1]
    else:
        g, ins = gt, inst
    area = g.size
    tot = np.bincount(inst.ravel(), minlength=len(objs) + 1)
    here = np.bincount(ins.ravel(), minlength=len(objs) + 1)
    ob, idx = [], []
    for k, o in enumerate(objs, start=1):
        n = here[k]
        if n >= min_px and (n >= min_frac_obj * tot[k] or n >= min_area_obj * area):
            ob.append((o["cls"], o["colour"]))
            idx.append(k - 1)
    cnt = np.bincount(g.ravel(), minlength=len(CLASSES))
    stuff = [STUFF[i] for i in range(len(STUFF)) if cnt[i] >= min_area_stuff * area]
    return ob, stuff, idx


# ----------------------------------------------------------------------------- scenes

def render_scene(seed, w, h, n_objects=None, bg_seed=None):
    """Returns dict(image uint8 [h,w,3], gt uint8 [h,w], inst uint8 [h,w], objects, caption,
    sky_adj).  With @bg_seed the landscape comes from that seed and only the objects (and
    the caption's wording) from @seed, so scenes can share a background."""
    rng = np.random.default_rng(seed)
    img, gt, info = render_background(rng if bg_seed is None else np.random.default_rng(bg_seed), h, w)
    if n_objects is None:
        n_objects = int(rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5]))
    objs = place_objects(rng, gt, n_objects, h, w)
    inst = np.zeros((h, w), np.uint8)
    for k, o in enumerate(objs, start=1):
        draw_object(o, img, gt, inst, k)
    img = finish(rng, img)
    ob, stuff, _ = visible_content(gt, inst, objs)
    cap = caption(ob, stuff, info["sky_adj"], rng)
    return {"image": img, "gt": gt, "inst": inst, "objects": objs, "caption": cap,
            "sky_adj": info["sky_adj"]}


def finish(rng, img):
    """Global light and sensor noise, to uint8."""
    gain = rng.uniform(0.85, 1.12)
    img = img * gain + rng.normal(0, 2.5, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- videos

def render_video(seed, w, h, frames):
    """A clip of @frames frames: a wider static landscape the camera pans over, objects
    that move, enter and leave.  Returns (frames uint8 [F,h,w,3], gt uint8 [F,h,w], caption).
    """
    rng = np.random.default_rng(seed)
    pan = int(rng.choice([0, 0.25, 0.5, 0.8]) * w)
    direction = int(rng.choice([-1, 1]))
    ww = w + pan
    bg, gbg, info = render_background(rng, h, ww)
    n = int(rng.integers(2, 6))
    objs = place_objects(rng, gbg, n, h, ww, allow_outside=0.0)
    span = max(frames - 1, 1)
    for o in objs:
        speed = rng.uniform(0.15, 0.6) * w / span * float(rng.choice([-1, 1]))
        if o["cls"] == "car":
            o["vx"] = speed * 1.8
        elif o["cls"] in ("boat",):
            o["vx"] = speed * 0.6
        elif o["cls"] in FLOATERS:
            o["vx"] = speed
            o["vy"] = rng.uniform(-0.25, 0.25) * h / span
            o["vrot"] = rng.uniform(-2, 2) / span
        elif rng.random() < 0.3:
            o["vx"] = speed * 0.3
        if rng.random() < 0.3 and o["vx"] != 0:
            # enters from outside the view: start beyond the edge it moves away from
            o["cx"] = (-R[o["cls"]] * o["s"]) if o["vx"] > 0 else (ww + R[o["cls"]] * o["s"])
    objs.sort(key=lambda o: o["cy"] + BASE_V[o["cls"]] * o["s"])
    noise_rng = np.random.default_rng(seed ^ 0x5EED)
    gain = rng.uniform(0.88, 1.1)
    out = np.empty((frames, h, w, 3), np.uint8)
    gts = np.empty((frames, h, w), np.uint8)
    for t in range(frames):
        cam = (pan * t / span) if direction > 0 else (pan - pan * t / span)
        c0 = int(round(cam))
        img = bg[:, c0:c0 + w].copy()
        gt = gbg[:, c0:c0 + w].copy()
        inst = np.zeros((h, w), np.uint8)
        for k, o in enumerate(objs, start=1):
            draw_object(o, img, gt, inst, k, ox=c0, t=t)
        img = img * gain + noise_rng.normal(0, 2.0, img.shape).astype(np.float32)
        out[t] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        gts[t] = gt
    ob = sorted({(o["cls"], o["colour"]) for o in objs})
    stuff = [STUFF[i] for i in range(len(STUFF)) if (gbg == i).mean() > 0.08]
    cap = caption(ob, stuff, info["sky_adj"], rng)
    return out, gts, cap


# ----------------------------------------------------------------------------- PNG

def png_bytes(arr):
    """Encodes uint8 [h,w] (gray) or [h,w,3] (RGB) as PNG with zlib only."""
    arr = np.ascontiguousarray(arr, np.uint8)
    h, w = arr.shape[:2]
    ctype = 0 if arr.ndim == 2 else 2
    raw = np.zeros((h, 1 + arr[0].size), np.uint8)  # filter byte 0 per row
    raw[:, 1:] = arr.reshape(h, -1)

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


def read_png(path):
    """Reads the PNGs this module writes (8-bit gray/RGB, filter 0) and, for convenience,
    any non-interlaced 8-bit gray/RGB/RGBA PNG with standard filters."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and inter == 0
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    ch = {0: 1, 2: 3, 6: 4, 4: 2}[ctype]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:
            cur = np.zeros_like(line)
            for x in range(w * ch):
                a = cur[x - ch] if x >= ch else 0
                b = prev[x]
                c = prev[x - ch] if x >= ch else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    out = out.astype(np.uint8).reshape(h, w, ch)
    return out[..., 0] if ch == 1 else out


PALETTE = np.array([
    (120, 180, 240), (60, 170, 60), (30, 70, 200), (230, 200, 130),
    (230, 40, 40), (150, 90, 40), (250, 220, 0), (255, 130, 0),
    (0, 110, 40), (200, 0, 200), (140, 60, 60), (0, 220, 220),
], np.uint8)


def colourise(gt):
    return PALETTE[np.minimum(gt, len(PALETTE) - 1)]


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ----------------------------------------------------------------------------- CLI

def parse_size(s):
    w, h = s.lower().split("x")
    return int(w), int(h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("classes", help="print the class names, one per line (SCLIP class-file format)")
    sc = sub.add_parser("scene", help="render one scene: image.png, gt.png, gt_color.png, caption.txt")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--size", default="320x240")
    sc.add_argument("--out", required=True)
    sc.add_argument("--count", type=int, default=1, help="render COUNT scenes, seeds SEED.. into OUT/NNNNNN/")
    vd = sub.add_parser("video", help="render a clip")
    vd.add_argument("--seed", type=int, default=0)
    vd.add_argument("--size", default="320x240")
    vd.add_argument("--frames", type=int, default=60)
    vd.add_argument("--out", help="directory for frame PNGs, GT PNGs, gt.npy and caption.txt")
    vd.add_argument("--raw", action="store_true", help="write packed RGB frames to stdout (fdsrc ! rawvideoparse format=rgb)")
    vd.add_argument("--gt-npy", help="also write the GT stack [F,H,W] uint8 as .npy here")
    a = ap.parse_args(argv)

    if a.cmd == "classes":
        sys.stdout.write("".join(c + "\n" for c in CLASSES))
        return 0
    w, h = parse_size(a.size)
    if a.cmd == "scene":
        for i in range(a.count):
            d = a.out if a.count == 1 else os.path.join(a.out, "%06d" % (a.seed + i))
            os.makedirs(d, exist_ok=True)
            sc_ = render_scene(a.seed + i, w, h)
            write_file(os.path.join(d, "image.png"), png_bytes(sc_["image"]))
            write_file(os.path.join(d, "gt.png"), png_bytes(sc_["gt"]))
            write_file(os.path.join(d, "gt_color.png"), png_bytes(colourise(sc_["gt"])))
            write_file(os.path.join(d, "caption.txt"), (sc_["caption"] + "\n").encode())
        return 0
    frames, gts, cap = render_video(a.seed, w, h, a.frames)
    if a.raw:
        out = sys.stdout.buffer
        for f in frames:
            out.write(f.tobytes())
        out.flush()
    if a.gt_npy:
        np.save(a.gt_npy, gts)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        for t in range(len(frames)):
            write_file(os.path.join(a.out, "frame%04d.png" % t), png_bytes(frames[t]))
            write_file(os.path.join(a.out, "gt%04d.png" % t), png_bytes(gts[t]))
        np.save(os.path.join(a.out, "gt.npy"), gts)
        write_file(os.path.join(a.out, "caption.txt"), (cap + "\n").encode())
        write_file(os.path.join(a.out, "info.json"), json.dumps(
            {"width": w, "height": h, "frames": len(frames), "classes": CLASSES}).encode())
    if not a.raw and not a.out and not a.gt_npy:
        ap.error("video needs --out, --raw or --gt-npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
