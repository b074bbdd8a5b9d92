#!/usr/bin/env python3
"""Writes tests/fixtures/vit/: small randomly initialised vision transformers (and CLIP's text
towers) built and saved by the real libraries as their users have them, and each one's output
on the same preprocessed inputs, at the size its positions were trained for and at another
(where the library resamples its positions). tests/vit.rs checks that natview opens each with
`--weights` alone and gives the same embeddings; tests/text.rs checks token ids and text
embeddings.

    bench/.venv/bin/pip install transformers timm open_clip_torch
    bench/.venv/bin/python scripts/make-vit-fixtures.py

Cases (the library's class, its own save format):
- hf-dinov2/: transformers' Dinov2Model, `save_pretrained` (config.json + model.safetensors)
  and a BitImageProcessor's preprocessor_config.json (resize 256, crop 224, ImageNet mean/std);
- hf-dinov2-registers/: Dinov2WithRegistersModel (4 registers), sharded into two safetensors
  files with model.safetensors.index.json (max_shard_size) — the hub's sharded layout;
- hf-vit/: ViTModel (eps 1e-12, pooler dropped), laid out as a hub cache repository
  (models--org--name/refs/main + snapshots/<hash>/…) to test opening the cache folder itself;
- timm_vit.pth: timm's VisionTransformer (class token), a bare state dict;
- timm_vit_reg4.pth: timm's DINOv2-style ViT (4 registers, no position for the class token,
  layer scale), `{"state_dict": …}`;
- hf-clip/: transformers' CLIPModel (both towers), its tokenizer (tokenizer.json built from the
  BPE vocabulary that ships inside the open_clip_torch wheel) and CLIPImageProcessor config;
- open_clip.pt: open_clip's CLIP as open_clip's training saves it ({"epoch", "name",
  "state_dict" under DDP's `module.`, "optimizer"}), GELU (not QuickGELU);
- hf-siglip/: transformers' SiglipModel (attention-pool head, tanh GELU) with its tokenizer as
  transformers saves it (spiece.model + tokenizer_config.json, no tokenizer.json). No registry
  package ships SigLIP's sentencepiece model, so a real one is trained here with the
  `sentencepiece` package (unigram, T5/SigLIP's special ids: <pad> 0, </s> 1, <unk> 2) on
  English text from Python's own documentation; texts padded to 64 tokens as SigLIP is used.
The CLIP tokenizer is also written to models/clip-bpe-tokenizer.json, the one natview uses
for open_clip files (see models/clip-bpe-tokenizer.md).
Every floating-point parameter is perturbed (fresh LayerNorms are 1/0) and rounded to float16,
the precision the files store (float16; bfloat16 for hf-dinov2), so that the references are exact for the stored weights.
"""
import json
import os
import shutil

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "vit")
torch.manual_seed(0)


def prepare(model, dtype=torch.float16):
    """Perturbs every parameter and rounds it to `dtype`'s precision."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
            p.copy_(p.to(dtype).float())
    return model.eval()


def save_npy(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype=np.float32))


INPUTS = {}


def inputs(size):
    if size not in INPUTS:
        g = torch.Generator().manual_seed(size)
        INPUTS[size] = torch.randn(2, 3, size, size, generator=g)
        save_npy(f"inputs_{size}.npy", INPUTS[size].numpy())
    return INPUTS[size]


def case(name, path, family, dim, forward, sizes, **extra):
    runs = []
    for size in sizes:
        with torch.no_grad():
            out = forward(inputs(size))
        assert out.shape == (2, dim), (name, out.shape)
        outputs = f"{name}_{size}.outputs.npy"
        save_npy(outputs, out.numpy())
        runs.append({"size": size, "inputs": f"inputs_{size}.npy", "outputs": outputs})
    return {"name": name, "path": path, "family": family, "dim": dim, "runs": runs, **extra}


def hf_dinov2(cases):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    config = Dinov2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=256, patch_size=14, image_size=70)
    model = prepare(Dinov2Model(config), torch.bfloat16)
    folder = os.path.join(OUT, "hf-dinov2")
    model.to(torch.bfloat16).save_pretrained(folder)
    model.float()
    BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                      do_center_crop=True).save_pretrained(folder)
    cases.append(case("hf-dinov2", "hf-dinov2", "DINOv2 ViT-2×64/14", 64,
                      lambda x: model(pixel_values=x).pooler_output, [70, 56],
                      input_size=224))


def hf_dinov2_registers(cases):
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    config = Dinov2WithRegistersConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=256, patch_size=14, image_size=70,
                                       num_register_tokens=4)
    model = prepare(Dinov2WithRegistersModel(config))
    folder = os.path.join(OUT, "hf-dinov2-registers")
    model.save_pretrained(folder, max_shard_size="100KB")
    assert os.path.exists(os.path.join(folder, "model.safetensors.index.json")), "not sharded"
    cases.append(case("hf-dinov2-registers", "hf-dinov2-registers",
                      "DINOv2 ViT-2×64/14 with 4 registers", 64,
                      lambda x: model(pixel_values=x).pooler_output, [70, 42]))


def hf_vit(cases):
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=1,
                       intermediate_size=128, patch_size=8, image_size=32)
    model = prepare(ViTModel(config))
    repo = os.path.join(OUT, "hf-cache", "models--natview--tiny-vit")
    snapshot = os.path.join(repo, "snapshots", "0123456789abcdef")
    model.save_pretrained(snapshot)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write("0123456789abcdef")

    def forward(x):
        out = model(pixel_values=x, interpolate_pos_encoding=x.shape[-1] != 32)
        return out.last_hidden_state[:, 0]

    cases.append(case("hf-vit", "hf-cache/models--natview--tiny-vit", "ViT-2×64/8", 64,
                      forward, [32, 48]))


def timm_vits(cases):
    import timm

    model = prepare(timm.create_model("vit_small_patch16_224", pretrained=False, img_size=32,
                                      patch_size=8, embed_dim=64, depth=2, num_heads=1,
                                      dynamic_img_size=True))
    torch.save(model.state_dict(), os.path.join(OUT, "timm_vit.pth"))
    cases.append(case("timm_vit", "timm_vit.pth", "ViT-2×64/8", 64,
                      lambda x: model.forward_head(model.forward_features(x), pre_logits=True),
                      [32, 40]))
    reg = prepare(timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False,
                                    img_size=42, embed_dim=64, depth=2, num_heads=1,
                                    dynamic_img_size=True))
    assert reg.no_embed_class and reg.num_reg_tokens == 4
    torch.save({"state_dict": reg.state_dict()}, os.path.join(OUT, "timm_vit_reg4.pth"))
    cases.append(case("timm_vit_reg4", "timm_vit_reg4.pth", "ViT-2×64/14 with 4 registers", 64,
                      lambda x: reg.forward_head(reg.forward_features(x), pre_logits=True),
                      [42, 56]))


def clip_vocabulary():
    """The vocabulary and merges of the BPE file inside the open_clip_torch wheel, built
    exactly as open_clip's SimpleTokenizer builds them."""
    import gzip

    import open_clip
    from open_clip.tokenizer import bytes_to_unicode

    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = merges[1:49152 - 256 - 2 + 1]
    pairs = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(p) for p in pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(vocab)}, pairs


TEXTS = ["a photo of a red sneaker", "Two DOGS playing in the snow!", "vintage 1970s lamp, brass",
         "", "café au lait — naïve façade", "it's a 3-seat sofa (grey)"]


def hf_clip(cases):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = os.path.join(OUT, "hf-clip")
    vocab, merges = clip_vocabulary()
    vocab_size = len(vocab)
    fast = CLIPTokenizer(vocab=vocab, merges=merges)
    config = CLIPConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=1, max_position_embeddings=77),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=32)
    model = prepare(CLIPModel(config))
    model.half().save_pretrained(folder)
    model.float()
    fast.save_pretrained(folder)
    # The same tokenizer, shipped for open_clip files (which carry none): models/.
    models = os.path.join(os.path.dirname(OUT), "..", "..", "models")
    shutil.copyfile(os.path.join(folder, "tokenizer.json"),
                    os.path.join(models, "clip-bpe-tokenizer.json"))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}) \
        .save_pretrained(folder)
    import open_clip
    ids = [fast(t)["input_ids"] for t in TEXTS]
    reference = open_clip.get_tokenizer("ViT-B-32")(TEXTS)
    assert ids == [row[:len(t)].tolist() for row, t in zip(reference, ids)], \
        "Hugging Face's and open_clip's tokenisers differ"

    def text_forward():
        rows = []
        with torch.no_grad():
            for t in ids:
                out = model.get_text_features(input_ids=torch.tensor([t]))
                rows.append(getattr(out, "pooler_output", out)[0])
        return torch.stack(rows)

    save_npy("hf-clip.text.npy", text_forward().numpy())

    def forward(x):
        out = model.get_image_features(pixel_values=x, interpolate_pos_encoding=x.shape[-1] != 32)
        return getattr(out, "pooler_output", out)

    cases.append(case("hf-clip", "hf-clip", "CLIP ViT-2×64/8 image tower", 32, forward, [32, 40],
                      texts=TEXTS, token_ids=ids, text_outputs="hf-clip.text.npy",
                      input_size=32))


def open_clip_case(cases):
    import open_clip

    model = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=dict(layers=2, width=64, head_width=64, patch_size=8, image_size=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=1, layers=2))
    prepare(model)
    state = {"module." + k: v.half() for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "name": "tiny-vit-run", "state_dict": state,
                "optimizer": {"state": {}, "param_groups": []}},
               os.path.join(OUT, "open_clip.pt"))
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    ids = tokenizer(TEXTS)
    with torch.no_grad():
        text = model.encode_text(ids)
    save_npy("open_clip.text.npy", text.numpy())
    lengths = [int((row != 0).sum()) for row in ids]
    token_ids = [row[:n].tolist() for row, n in zip(ids, lengths)]
    cases.append(case("open_clip", "open_clip.pt", "CLIP (open_clip) ViT-2×64/8 image tower", 32,
                      model.encode_image, [32], texts=TEXTS, token_ids=token_ids,
                      text_outputs="open_clip.text.npy"))


SIGLIP_TEXTS = TEXTS + ["  a   LAMP\tin the garden  ", "日本の椅子 and a chair", "x" * 300]


def siglip_tokenizer(folder):
    """A real SigLIP tokenizer: a sentencepiece unigram model trained on English text."""
    import pydoc
    import tempfile

    import sentencepiece
    from transformers import SiglipTokenizer

    lines = []
    for name in ["string", "json", "email", "textwrap", "argparse", "collections", "unittest",
                 "logging", "pathlib", "functools"]:
        lines += [line for line in pydoc.getdoc(__import__(name)).splitlines() if line.strip()]
    lines += TEXTS
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "spiece")
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=400,
            model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
            character_coverage=1.0, num_threads=1, minloglevel=2)
        tokenizer = SiglipTokenizer(vocab_file=prefix + ".model")
        tokenizer.save_pretrained(folder)
    return tokenizer


def hf_siglip(cases):
    from transformers import SiglipConfig, SiglipModel

    folder = os.path.join(OUT, "hf-siglip")
    tokenizer = siglip_tokenizer(folder)
    config = SiglipConfig(
        text_config=dict(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=1,
                         max_position_embeddings=64, projection_size=64),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8))
    model = prepare(SiglipModel(config))
    model.half().save_pretrained(folder)
    model.float()
    ids = [tokenizer(t)["input_ids"] for t in SIGLIP_TEXTS]  # untruncated: the tower truncates
    padded = tokenizer(SIGLIP_TEXTS, padding="max_length", truncation=True, max_length=64,
                       return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.get_text_features(input_ids=padded)
    save_npy("hf-siglip.text.npy", getattr(out, "pooler_output", out).numpy())

    def forward(x):
        out = model.get_image_features(pixel_values=x, interpolate_pos_encoding=x.shape[-1] != 32)
        return getattr(out, "pooler_output", out)

    cases.append(case("hf-siglip", "hf-siglip", "SigLIP ViT-2×64/8 image tower", 64, forward,
                      [32, 48], texts=SIGLIP_TEXTS, token_ids=ids,
                      text_outputs="hf-siglip.text.npy"))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    cases = []
    for make in [hf_dinov2, hf_dinov2_registers, hf_vit, timm_vits, hf_clip, open_clip_case,
                 hf_siglip]:
        make(cases)
    import open_clip
    import timm
    import transformers
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"made_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                                 "timm": timm.__version__, "open_clip": open_clip.__version__},
                   "cases": cases}, f, indent=1)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, files in os.walk(OUT) for n in files)
    print(f"wrote {len(cases)} cases, {total / 1e6:.1f} MB, to {OUT}")


if __name__ == "__main__":
    main()
