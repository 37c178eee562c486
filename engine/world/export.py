#!/usr/bin/python3
"""Writes a trained world CLIP in the Hugging Face layout the engine loads, and reads it back.

    export.py CHECKPOINT.pt OUTDIR [--vocab DIR] [--dtype F16|F32]

OUTDIR receives config.json (transformers CLIPConfig shape), model.safetensors (HF key
names, F16 by default, written by our own writer), vocab.json + merges.txt, and
preprocessor_config.json (CLIP's image mean/std, which training used).
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clipmodel import CLIP  # noqa: E402

IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

DTYPES = {"F16": (np.float16, 2), "F32": (np.float32, 4), "I64": (np.int64, 8)}


# ----------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> numpy array (float16/float32/int64).  Header padded with spaces so
    the data starts 8-aligned; tensors ordered by descending element size, then name (as the
    official writer does), laid out back to back."""
    rev = {np.dtype(v[0]): k for k, v in DTYPES.items()}
    names = sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n))
    header, off = {}, 0
    for n in names:
        a = np.asarray(tensors[n], order="C")
        nb = a.nbytes
        header[n] = {"dtype": rev[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + nb]}
        off += nb
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-(8 + len(hj))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for n in names:
            f.write(np.asarray(tensors[n], order="C").astype(tensors[n].dtype.newbyteorder("<"), copy=False).tobytes())


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES[info["dtype"]][0]
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + e], dtype=np.dtype(dt).newbyteorder("<")).reshape(info["shape"])
    return out, header


# ----------------------------------------------------------------------------- name mapping

def _block_map(prefix_src, prefix_dst, sd, out):
    i = 0
    while f"{prefix_src}.{i}.ln_1.weight" in sd:
        s, d = f"{prefix_src}.{i}", f"{prefix_dst}.{i}"
        w = sd[f"{s}.attn.in_proj_weight"]
        b = sd[f"{s}.attn.in_proj_bias"]
        D = w.shape[1]
        for j, qkv in enumerate("qkv"):
            out[f"{d}.self_attn.{qkv}_proj.weight"] = w[j * D:(j + 1) * D]
            out[f"{d}.self_attn.{qkv}_proj.bias"] = b[j * D:(j + 1) * D]
        out[f"{d}.self_attn.out_proj.weight"] = sd[f"{s}.attn.out_proj.weight"]
        out[f"{d}.self_attn.out_proj.bias"] = sd[f"{s}.attn.out_proj.bias"]
        for a, z in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[f"{d}.{z}.weight"] = sd[f"{s}.{a}.weight"]
            out[f"{d}.{z}.bias"] = sd[f"{s}.{a}.bias"]
        i += 1
    return i


def to_hf(sd):
    """OpenAI-named state dict (numpy) -> HF CLIPModel names."""
    out = {}
    out["vision_model.embeddings.class_embedding"] = sd["visual.class_embedding"]
    out["vision_model.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    out["vision_model.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    for a, z in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        out[f"vision_model.{z}.weight"] = sd[f"visual.{a}.weight"]
        out[f"vision_model.{z}.bias"] = sd[f"visual.{a}.bias"]
    _block_map("visual.transformer.resblocks", "vision_model.encoder.layers", sd, out)
    out["visual_projection.weight"] = sd["visual.proj"].T
    out["text_model.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out["text_model.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    _block_map("transformer.resblocks", "text_model.encoder.layers", sd, out)
    out["text_model.final_layer_norm.weight"] = sd["ln_final.weight"]
    out["text_model.final_layer_norm.bias"] = sd["ln_final.bias"]
    out["text_projection.weight"] = sd["text_projection"].T
    out["logit_scale"] = sd["logit_scale"].reshape(())
    return out


def from_hf(t):
    """HF names (numpy) -> OpenAI-named state dict (torch float32)."""
    sd = {}
    g = lambda k: torch.from_numpy(np.array(t[k], dtype=np.float32))
    sd["visual.class_embedding"] = g("vision_model.embeddings.class_embedding")
    sd["visual.conv1.weight"] = g("vision_model.embeddings.patch_embedding.weight")
    sd["visual.positional_embedding"] = g("vision_model.embeddings.position_embedding.weight")
    for a, z in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        sd[f"visual.{a}.weight"] = g(f"vision_model.{z}.weight")
        sd[f"visual.{a}.bias"] = g(f"vision_model.{z}.bias")
    for src, dst in (("vision_model.encoder.layers", "visual.transformer.resblocks"),
                     ("text_model.encoder.layers", "transformer.resblocks")):
        i = 0
        while f"{src}.{i}.layer_norm1.weight" in t:
            s, d = f"{src}.{i}", f"{dst}.{i}"
            sd[f"{d}.attn.in_proj_weight"] = torch.cat([g(f"{s}.self_attn.{x}_proj.weight") for x in "qkv"])
            sd[f"{d}.attn.in_proj_bias"] = torch.cat([g(f"{s}.self_attn.{x}_proj.bias") for x in "qkv"])
            sd[f"{d}.attn.out_proj.weight"] = g(f"{s}.self_attn.out_proj.weight")
            sd[f"{d}.attn.out_proj.bias"] = g(f"{s}.self_attn.out_proj.bias")
            for a, z in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                sd[f"{d}.{a}.weight"] = g(f"{s}.{z}.weight")
                sd[f"{d}.{a}.bias"] = g(f"{s}.{z}.bias")
            i += 1
    sd["visual.proj"] = g("visual_projection.weight").T.contiguous()
    sd["token_embedding.weight"] = g("text_model.embeddings.token_embedding.weight")
    sd["positional_embedding"] = g("text_model.embeddings.position_embedding.weight")
    sd["ln_final.weight"] = g("text_model.final_layer_norm.weight")
    sd["ln_final.bias"] = g("text_model.final_layer_norm.bias")
    sd["text_projection"] = g("text_projection.weight").T.contiguous()
    sd["logit_scale"] = g("logit_scale").reshape(())
    return sd


# ----------------------------------------------------------------------------- config

def hf_config(cfg, sot, eot):
    return {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": cfg["embed_dim"],
        "logit_scale_init_value": math.log(1 / 0.07),
        "torch_dtype": "float16",
        "text_config": {
            "hidden_size": cfg["text_width"],
            "intermediate_size": 4 * cfg["text_width"],
            "num_attention_heads": cfg["text_heads"],
            "num_hidden_layers": cfg["text_layers"],
            "max_position_embeddings": cfg["context_length"],
            "vocab_size": cfg["vocab_size"],
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": cfg["embed_dim"],
            "bos_token_id": sot,
            "eos_token_id": eot,
            "pad_token_id": eot,
        },
        "vision_config": {
            "hidden_size": cfg["vision_width"],
            "intermediate_size": 4 * cfg["vision_width"],
            "num_attention_heads": cfg["vision_heads"],
            "num_hidden_layers": cfg["vision_layers"],
            "image_size": cfg["image_size"],
            "patch_size": cfg["patch_size"],
            "num_channels": 3,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": cfg["embed_dim"],
        },
    }


def preprocessor_config(cfg):
    s = cfg["image_size"]
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True, "size": {"shortest_edge": s}, "resample": 3,
        "do_center_crop": True, "crop_size": {"height": s, "width": s},
        "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": list(IMAGE_MEAN), "image_std": list(IMAGE_STD),
    }


def export(model, vocab_dir, out_dir, dtype="F16", metadata=None):
    os.makedirs(out_dir, exist_ok=True)
    cfg = model.cfg
    sd = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    hf = to_hf(sd)
    npdt = DTYPES[dtype][0]
    hf = {k: v.astype(npdt, order="C") for k, v in hf.items()}
    write_safetensors(os.path.join(out_dir, "model.safetensors"), hf, metadata)
    vocab = json.load(open(os.path.join(vocab_dir, "vocab.json"), encoding="utf-8"))
    conf = hf_config(cfg, vocab["<|startoftext|>"], vocab["<|endoftext|>"])
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_config(cfg), f, indent=2)
        f.write("\n")
    for n in ("vocab.json", "merges.txt"):
        if os.path.abspath(os.path.join(vocab_dir, n)) != os.path.abspath(os.path.join(out_dir, n)):
            shutil.copyfile(os.path.join(vocab_dir, n), os.path.join(out_dir, n))


def load_hf(d):
    """Loads an exported directory back into a torch CLIP (float32)."""
    conf = json.load(open(os.path.join(d, "config.json")))
    tc, vc = conf["text_config"], conf["vision_config"]
    cfg = dict(image_size=vc["image_size"], patch_size=vc["patch_size"], vision_width=vc["hidden_size"],
               vision_layers=vc["num_hidden_layers"], vision_heads=vc["num_attention_heads"],
               embed_dim=conf["projection_dim"], context_length=tc["max_position_embeddings"],
               eot_id=tc["eos_token_id"], text_width=tc["hidden_size"], text_layers=tc["num_hidden_layers"],
               text_heads=tc["num_attention_heads"], vocab_size=tc["vocab_size"])
    m = CLIP(cfg)
    t, _ = read_safetensors(os.path.join(d, "model.safetensors"))
    m.load_state_dict(from_hf(t))
    return m.eval()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="train.py final.pt, or a run's state.pt (config from args.json beside it)")
    ap.add_argument("out")
    ap.add_argument("--vocab", help="directory with vocab.json + merges.txt (default: beside the checkpoint)")
    ap.add_argument("--dtype", default="F16", choices=["F16", "F32"])
    a = ap.parse_args(argv)
    ck = torch.load(a.checkpoint, map_location="cpu")
    cfg = ck.get("cfg")
    if cfg is None:  # a training state.pt: the config is in the run's args.json
        cfg = json.load(open(os.path.join(os.path.dirname(os.path.abspath(a.checkpoint)), "args.json")))["cfg"]
    m = CLIP(cfg)
    m.load_state_dict(ck["model"])
    export(m, a.vocab or os.path.dirname(os.path.abspath(a.checkpoint)), a.out, a.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
