"""A random checkpoint with the exact ViT-B/16 shapes (F16, full CLIP vocabulary), written
once by tests/reference/make_checkpoint.py and reused by every benchmark."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CHECKPOINT = os.path.join(HERE, '..', 'reference', 'make_checkpoint.py')
SHAPES = ['--layout', 'hf', '--dtype', 'F16', '--vocab', 'full', '--vision-width', '768',
          '--vision-layers', '12', '--vision-heads', '12', '--patch-size', '16',
          '--image-size', '224', '--text-width', '512', '--text-layers', '12',
          '--text-heads', '8', '--embed-dim', '512']


def ensure(model=None):
    """The checkpoint directory, generated first when it has no model.safetensors."""
    model = model or os.path.join(tempfile.gettempdir(), 'clipseg-bench-vitb16')
    if not os.path.exists(os.path.join(model, 'model.safetensors')):
        print('generating a random ViT-B/16 checkpoint in %s' % model, flush=True)
        subprocess.run([sys.executable, MAKE_CHECKPOINT, '--out', model] + SHAPES,
                       check=True, stdout=subprocess.DEVNULL)
    return model
