"""ViT-S/16 in PyTorch for bench/onnx_encoder.ts: exports the ONNX model the benchmark runs through
onnxEncoder, and times the same model in PyTorch on request.

Run by a developer (not by CI), with Debian's python3-torch and python3-onnx:
    /usr/bin/python3 bench/vit_s16_torch.py export      # writes bench/out/vit_s16.{pt,onnx}
    /usr/bin/python3 bench/vit_s16_torch.py serve       # used by bench/onnx_encoder.ts

The model is the timm `vit_small_patch16_224` architecture written out with torch.nn (timm is
not a Debian package): 224 px input, 16 px patches, width 384, 12 pre-norm blocks of 6-head
attention and a 4x GELU MLP, LayerNorm eps 1e-6, CLS token output after the final norm (as
timm with num_classes=0). Weights are random (seeded): the benchmark measures speed only.

`serve` reads one JSON command per line on stdin, {"threads": t, "batch": b, "reps": r}, runs
r forward passes of a [b, 3, 224, 224] batch with torch.set_num_threads(t) under
torch.inference_mode(), and prints {"seconds": [...]} (one time per pass).
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
DIM, DEPTH, HEADS, PATCH, SIZE = 384, 12, 6, 16, 224


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.scale = (DIM // HEADS) ** -0.5

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, DIM))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(DIM, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VitS16(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, DIM, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (SIZE // PATCH) ** 2 + 1, DIM) * 0.02)
        self.blocks = nn.Sequential(*[Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), t], dim=1) + self.pos_embed
        return self.norm(self.blocks(t))[:, 0]


def build():
    torch.manual_seed(0)
    return VitS16().eval()


def export():
    os.makedirs(OUT, exist_ok=True)
    model = build()
    torch.save(model.state_dict(), os.path.join(OUT, "vit_s16.pt"))
    torch.onnx.export(model, torch.zeros(2, 3, SIZE, SIZE), os.path.join(OUT, "vit_s16.onnx"), input_names=["pixel_values"],
                      output_names=["features"], opset_version=14,
                      dynamic_axes={"pixel_values": {0: "batch"}, "features": {0: "batch"}})
    print(json.dumps({"onnx": os.path.join(OUT, "vit_s16.onnx"), "params": sum(p.numel() for p in model.parameters()),
                      "torch": torch.__version__}))


def serve():
    model = build()
    model.load_state_dict(torch.load(os.path.join(OUT, "vit_s16.pt")))
    print(json.dumps({"ready": True, "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        torch.set_num_threads(int(cmd["threads"]))
        x = torch.randn(int(cmd["batch"]), 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
        seconds = []
        with torch.inference_mode():
            for _ in range(int(cmd["reps"])):
                t = time.perf_counter()
                y = model(x)
                seconds.append(time.perf_counter() - t)
        print(json.dumps({"seconds": seconds, "checksum": float(y.sum())}), flush=True)


if __name__ == "__main__":
    {"export": export, "serve": serve}[sys.argv[1] if len(sys.argv) > 1 else "export"]()
