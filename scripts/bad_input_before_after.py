"""Issue 10's bad-input list, rerun as a user would against one checkout: exit code, stderr lines,
traceback or not, wall time. Usage: python scripts/bad_input_before_after.py CHECKOUT
(e.g. a worktree of an older commit, to compare; the checkout is put first on PYTHONPATH)."""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(sys.argv[1]).resolve()
PY = sys.executable
W = Path(tempfile.mkdtemp(prefix=f"bad-input-{REPO.name}-"))
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TUNE_APP_CACHE": str(W / "cache"), "TUNE_APP_SECRET_FILE": str(W / "secret")}
BASE = "dataset:\n  name: digits\nmodel:\n  stage_channels: [8, 16, 32]\n  stage_blocks: 1\ntrain:\n  epochs: 1\noutput:\n  results_dir: {r}\n"

def run(args, timeout=60):
    t = time.time()
    try:
        p = subprocess.run([PY, "-m", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
        out = (p.returncode, p.stderr.strip().splitlines(), "Traceback" in p.stderr + p.stdout, time.time() - t)
    except subprocess.TimeoutExpired:
        out = ("timeout", [], False, time.time() - t)
    return out

def spec(name, text):
    path = W / name; path.write_text(text) if isinstance(text, str) else path.write_bytes(text); return str(path)

def fake_exp(name, meta_text=None, params=True, status="finished", pid=None):
    e = W / "res" / name; (e / "trial_00000").mkdir(parents=True, exist_ok=True)
    (e / "spec.yaml").write_text(BASE.format(r=W / "res"))
    meta = {"status": status, "pid": pid or os.getpid(), "host": os.uname().nodename, "search": {"metric": "val_accuracy", "mode": "max", "algorithm": "grid", "num_samples": 1},
            "base": {"train": {"epochs": 1}}, "retrain": {"epochs": 1, "train_on": "train"}, "resources": {"cpus_per_trial": 1}}
    (e / "experiment.json").write_text(meta_text if meta_text is not None else json.dumps(meta))
    if params: (e / "trial_00000" / "params.json").write_text(json.dumps({"hp": {"train.lr": 0.003}}))
    (e / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    (e / "trial_00000" / "ended.json").write_text('{"status": "TERMINATED"}')
    return str(e)

def bomb():
    """Mappings of nine aliases of the previous one, twelve levels: 9**12 nodes once expanded."""
    lines = ["l0: &l0 {v: 1}"] + [f"l{i}: &l{i} {{" + ", ".join(f"k{j}: *l{i-1}" for j in range(9)) + "}"
                                    for i in range(1, 13)]
    return "train:\n  epochs: 1\n" + "\n".join(lines) + "\n"


def product_grid():
    """300,000 grid points from three short lists and a groups grid: a small file."""
    lists = {"lr": [1e-4 * (1 + i) for i in range(100)], "weight_decay": [1e-6 * (1 + i) for i in range(100)],
             "label_smoothing": [0.01 * i for i in range(10)]}
    train = "".join(f"  {k}: {{grid: [{', '.join(f'{v:.6g}' for v in vs)}]}}\n" for k, vs in lists.items())
    return ("dataset:\n  name: digits\nmodel:\n  stage_channels: [8, 16, 32]\n  stage_blocks: 1\n"
            "  block: conv_gconv\n  groups: {grid: [1, 2, 3, 4, 5]}\ntrain:\n  epochs: 1\n" + train
            + f"output:\n  results_dir: {R}\n")


from PIL import Image
import numpy as np
def imagefolder(n_cls, per, trunc=False):
    root = W / f"img{n_cls}x{per}{'t' if trunc else ''}"
    for c in range(n_cls):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per):
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / f"c{c}" / f"{i}.jpg")
    if trunc:
        f = root / "c1" / "2.jpg"; f.write_bytes(f.read_bytes()[:200])
    return root

R = W / "res"
cases = {
  "spec not UTF-8": ["tune_app.search", "--space", spec("latin.yaml", BASE.format(r=R).encode() + "# caf\xe9\n".encode("latin-1")), "--dry-run"],
  "spec empty": ["tune_app.search", "--space", spec("empty.yaml", "# nothing\n"), "--dry-run"],
  "recursive alias": ["tune_app.search", "--space", spec("rec.yaml", "train: &t\n  again: *t\n"), "--dry-run"],
  "deep nesting": ["tune_app.search", "--space", spec("deep.yaml", "train:\n  lr: " + "[" * 3000 + "]" * 3000 + "\n"), "--dry-run"],
  "alias bomb": ["tune_app.search", "--space", spec("bomb.yaml", bomb()), "--dry-run"],
  "dashboard-port 70000": ["tune_app.search", "--space", spec("ok.yaml", BASE.format(r=R)), "--dashboard-port", "70000"],
  "image_size 10000": ["tune_app.search", "--space", spec("big.yaml", BASE.format(r=R).replace("name: digits", "name: digits\n  image_size: 10000")), "--dry-run"],
  "300,000-point grid --dry-run": ["tune_app.search", "--space", spec("grid.yaml", product_grid()), "--dry-run"],
  "report: half-written experiment.json": ["tune_app.report", "--experiment", fake_exp("half", meta_text='{"status": "runn')],
  "retrain: half-written experiment.json": ["tune_app.retrain_best", "--experiment", fake_exp("half2", meta_text='{"base": ')],
  "resume: half-written experiment.json": ["tune_app.search", "--resume", fake_exp("half3", meta_text='')],
  "retrain: missing params.json": ["tune_app.retrain_best", "--experiment", fake_exp("noparams", params=False)],
  "retrain: search still running": ["tune_app.retrain_best", "--experiment", fake_exp("running", status="running")],
  "imagefolder 2 classes x 2 images": ["tune_app.search", "--space", spec("tiny.yaml", BASE.format(r=R).replace("name: digits", f"name: imagefolder\n  path: {imagefolder(2, 2)}\n  image_size: 16"))],
  "corrupt JPEG": ["tune_app.search", "--space", spec("corrupt.yaml", BASE.format(r=R).replace("name: digits", f"name: imagefolder\n  path: {imagefolder(2, 6, True)}\n  image_size: 16"))],
  "results under a regular file": ["tune_app.search", "--space", spec("file.yaml", BASE.format(r=str(W / "afile") + "/results"))],
}
(W / "afile").write_text("x")
garbage = W / "garbage" / "data"; garbage.mkdir(parents=True); (garbage / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not parquet" * 50)
cases["unreadable parquet"] = ["tune_app.search", "--space", spec("pq.yaml", BASE.format(r=R).replace("name: digits", f"name: hf\n  path: {garbage.parent}"))]
print("| case | exit | stderr lines | traceback | s |")
for name, args in cases.items():
    code, err, tb, sec = run(args, timeout=90)
    print(f"| {name} | {code} | {len(err)} | {'yes' if tb else 'no'} | {sec:.1f} |  {err[-1][:110] if err else ''}")
