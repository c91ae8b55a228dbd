#!/usr/bin/env python3
# hf_hybrid_make.py - writes the input of hf_hybrid_check.py: an hx-written Hybrid-KDA checkpoint and what hx computes
# with it (CPU), so that the GPU machine needs no hx. Runs here, with hx only:
#   python3 tests/reference/hf_hybrid_make.py MODEL_DIR [--hx build/hx]
# MODEL_DIR: a hybrid checkpoint directory with a tokenizer (e.g. the completion_only finetune of
# tests/e2e/distill_chain.sh, kept with KEEP=1). This hx loads and saves it (a pretrain stage with source: load) into
# tests/reference/hf_hybrid_model/ and writes
# tests/reference/hf_hybrid_model.hx.json: `hx tokenize` ids, `hx score` results, `hx generate` completions, the
# token ids of the fixture's inputs (rows longer than one 64-token KDA chunk), and how far hx's bf16 twin
# (`hx conform --device guard:bf16`) is from the float64 logits of the gdn and silu fixtures. Also writes the
# hybrid fixtures with a gdn layer and with silu convs (tests/fixtures/hybrid_mixed, hybrid_all_kda_silu) as hx
# writes them (loaded and saved by a pretrain stage with source: load) into tests/reference/hf_hybrid_{gdn,silu}/.
import argparse
import filecmp
import json
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
REMOTE_CODE, REMOTE_CODE_SRC = "modeling_hx_hybrid.py", "nn/modeling_hx_hybrid.py"
FILES = ["config.json", "model.safetensors", "modeling_hx_hybrid.py", "tokenizer.json", "tokenizer_config.json",
         "generation_config.json"]
PARA = ("The General Assembly, which adjourns today, has performed in an atmosphere of crisis and struggle from the "
        "day it convened. It was faced immediately with a showdown on the schools, an issue which was met squarely in "
        "conjunction with the governor with a decision not to risk abandoning public education. Jerusalem serves as "
        "the capital city of Israel. A thoroughfare is one type of road. The word disciple means the same as adherent.")
MCQ = ("Name the capital city of Indonesia.\nA. Abu Dhabi\nB. Managua\nC. T\u00f3rshavn\nD. Jakarta\n"
       "Answer with the letter of the correct option.")
TOKENIZE = ["Jerusalem serves as the capital city of Israel.", MCQ, "<|im_start|>user\nhi<|im_end|>\n",
            "T\u00f3rshavn \u2014 na\u00efve caf\u00e9s, 3.14159 and   spaces\ttabs"]
SCORE = [
    {"context": "Jerusalem serves as the capital city of", "continuation": " Israel.", "chat": False},
    {"context": "Another word for attire is", "continuation": " garb.", "chat": False},
    {"context": PARA, "continuation": " Broadly speaking, a saga is an adventure story.", "chat": False},
    {"context": MCQ, "continuation": "D", "chat": True},
]
EXTRA = {"hf_hybrid_gdn": "hybrid_mixed", "hf_hybrid_silu": "hybrid_all_kda_silu"}  # written dir: fixture
GENERATE = [
    {"prompt": "The General Assembly, which adjourns today,", "max_new": 24, "chat": False},
    {"prompt": PARA, "max_new": 16, "chat": False},
    {"prompt": MCQ, "max_new": 8, "chat": True},
]


def hx(args, binary):
    return subprocess.run([binary] + args, check=True, capture_output=True, text=True).stdout


def save_with_hx(models, binary):
    """{name: source dir}: each loaded and saved by this hx (one `hx run` of pretrain stages with source: load) into
    tests/reference/<name>/ (its Hugging Face files; a source without tokenizer.json gives none)."""
    tmp = tempfile.mkdtemp(prefix="hf_hybrid_make_")
    recipe = os.path.join(tmp, "r.yaml")
    with open(recipe, "w") as f:
        f.write("hx: 1\nname: hf_hybrid_make\nstages:\n")
        for name, src in models.items():
            path = json.dumps(os.path.abspath(src))
            f.write("  %s: {kind: pretrain, with: {source: load, path: %s}}\n" % (name, path))
    store = os.path.join(tmp, "s")
    hx(["run", recipe, "--store", store], binary)
    run = json.load(open(os.path.join(store, "runs", "latest", "run.json")))
    for st in run["stages"]:
        src, dst = os.path.join(store, "store", st["key"][:2], st["key"]), os.path.join(HERE, st["stage"])
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        for f in FILES:
            # the remote code hx writes is nn's file (embedded in hx): the reference links to it, one copy
            if f == REMOTE_CODE and os.path.exists(os.path.join(src, f)):
                assert filecmp.cmp(os.path.join(src, f), os.path.join(TOP, REMOTE_CODE_SRC), shallow=False), src
                os.symlink(os.path.relpath(os.path.join(TOP, REMOTE_CODE_SRC), dst), os.path.join(dst, f))
            elif os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--hx", default=os.path.join(HERE, "..", "..", "build", "hx"))
    a = ap.parse_args()
    models = {"hf_hybrid_model": a.model_dir}
    models.update({name: os.path.join(TOP, "tests", "fixtures", fx) for name, fx in EXTRA.items()})
    save_with_hx(models, a.hx)
    dst = os.path.join(HERE, "hf_hybrid_model")
    ids = lambda text: [int(x) for x in hx(["tokenize", "--tokenizer", dst, text], a.hx).split()]
    out = {"generator": "tests/reference/hf_hybrid_make.py", "tokenize": [{"text": t, "ids": ids(t)} for t in TOKENIZE]}
    out["score"] = []
    for s in SCORE:
        line = hx(["score", dst, "-c", s["context"], "-x", s["continuation"]] + (["--chat"] if s["chat"] else []), a.hx)
        r = json.loads(line.strip().splitlines()[0])
        out["score"].append(dict(s, logp=r["logp"], greedy=bool(r["greedy"]), n_tokens=r["n_tokens"]))
    out["generate"] = []
    for g in GENERATE:
        line = hx(["generate", dst, "-p", g["prompt"], "--max-new", str(g["max_new"]), "--json"] +
                  (["--chat"] if g["chat"] else []), a.hx)
        out["generate"].append(dict(g, completion=json.loads(line.strip().splitlines()[0])["completion"]))
    # how far bf16 moves hx itself from each extra fixture's float64 logits (hx conform's bf16 twin, guard:bf16):
    # transformers in bf16 is held to twice that, as hx's own GPU conformance is (nn/conform_model.c)
    out["bf16_logits_rel"] = {}
    for name, fx in EXTRA.items():
        r = subprocess.run([a.hx, "conform", "--device", "guard:bf16", os.path.join(TOP, "tests", "fixtures", fx)],
                           capture_output=True, text=True)
        line = [l for l in r.stdout.splitlines() if l.startswith("logits ")][0].split()
        out["bf16_logits_rel"][name.replace("hf_hybrid_", "")] = float(line[line.index("max_rel") + 1])
    para = ids(PARA)
    assert len(para) > 2 * 64 + 8, len(para)  # rows that cross KDA chunk boundaries
    out["fixture"] = {"input_ids": [para[:100], para[8:108]], "prompt": para[:70]}
    with open(os.path.join(HERE, "hf_hybrid_model.hx.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print("wrote", dst, "hf_hybrid_model.hx.json and", ", ".join(EXTRA))


if __name__ == "__main__":
    main()
