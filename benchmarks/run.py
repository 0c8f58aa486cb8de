"""aebench's speed benchmarks (`make bench`): each figure is a ratio against a reference
measured in the same process, printed with its target, and saved to
benchmarks/results/<machine>.json. Never run from the tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import socket
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import aebench
from aebench.engine.runner import RunOptions, Trainer, build_context, build_contexts
from aebench.functional import contractive_penalty, parzen_log_likelihood

HERE = Path(__file__).parent


def alternating(fns: dict, repeat: int = 3) -> dict:
    """Best wall time of each of ``fns``, calling them in turn ``repeat`` times (after one
    warm-up each): a shared 2-core VM drifts by ±20 % over minutes, and taking the two sides
    in turn keeps that drift out of their ratio."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def timed(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (after one warm-up)."""
    return alternating({"fn": fn}, repeat)["fn"]


# --------------------------------------------------------------- engine overhead
def dae_spec(rows: int, width: int = 1000, epochs: int = 1) -> aebench.Spec:
    """aebench's default DAE computation at bench size: tied 784-width-width, sigmoid units,
    Gaussian 0.3 on every layer input, cross-entropy, RMSprop, batch 100."""
    return aebench.Spec.from_dict(
        {
            "name": "bench",
            "data": {"name": "mnist", "subset": rows, "eval_subset": 100},
            "model": {"name": "stacked", "layers": [width, width], "tied": True, "loss": "cross-entropy"},
            "corruption": {"name": "gaussian", "level": 0.3},
            "schedule": {"name": "joint", "epochs": epochs},
            "optimizer": {"name": "rmsprop", "lr": 0.001, "decay": 0.9, "batch_size": 100},
            "evaluate": {"recon": {"every": 0}},
        }
    )


def hand_epoch(x_u8: torch.Tensor, scale: float, width: int, device: torch.device, seed: int = 0) -> float:
    """One epoch of the same tied DAE written by hand in plain PyTorch (torch's default
    RMSprop), computing what aebench computes: the batch rows scaled as stored, Gaussian 0.3
    on both layer inputs, sigmoid encoders, the tied decoder as ``h W + c`` (the cheap way to
    write it, see :func:`aebench.functional.tied_decode`), the summed Bernoulli cross-entropy
    per example, RMSprop (decay 0.9, eps 1e-8), the epoch's mean loss. Returns the epoch's
    seconds timed as ``Trainer.train_epoch`` times them: from the shuffle to the last step
    (CUDA synchronised), parameter set-up excluded."""
    g = torch.Generator(device=device).manual_seed(seed)
    init = torch.Generator().manual_seed(seed)
    sizes = [x_u8.shape[1], width, width]
    radius = [4 * (6 / (sizes[i] + sizes[i + 1])) ** 0.5 for i in range(2)]  # aebench's init for sigmoid units
    Ws = [
        torch.nn.Parameter(((torch.rand(sizes[i + 1], sizes[i], generator=init) * 2 - 1) * radius[i]).to(device))
        for i in range(2)
    ]
    bs = [torch.nn.Parameter(torch.zeros(sizes[i + 1], device=device)) for i in range(2)]
    cs = [torch.nn.Parameter(torch.zeros(sizes[i], device=device)) for i in range(2)]
    opt = torch.optim.RMSprop([Ws[0], bs[0], cs[0], Ws[1], bs[1], cs[1]], lr=0.001, alpha=0.9, eps=1e-8)
    n = len(x_u8)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=g, device=device)
    total = torch.zeros((), device=device)
    for s in range(0, n, 100):
        x = x_u8[perm[s : s + 100]].to(torch.float32).mul_(scale)
        h = x + 0.3 * torch.randn(x.shape, generator=g, device=device)
        h = torch.sigmoid(F.linear(h, Ws[0], bs[0]))
        h = h + 0.3 * torch.randn(h.shape, generator=g, device=device)
        h = torch.sigmoid(F.linear(h, Ws[1], bs[1]))
        h = torch.sigmoid(torch.addmm(cs[1], h, Ws[1]))  # the tied decoder: h W + c
        logits = torch.addmm(cs[0], h, Ws[0])
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    float(total)  # the epoch's mean loss, as aebench reports it (after the clock: aebench reads it after too)
    return seconds


def bench_engine(device, rows: int = 10000, width: int = 1000, repeat: int = 21) -> dict:
    """aebench's training seconds (the results' ``train_seconds``: ``Trainer.train_epoch``'s
    clock) against :func:`hand_epoch`'s, one epoch each, taken in turn ``repeat`` times in
    this process after one warm-up each (A B B A ...: a shared VM drifts by ±20 % over
    minutes). The ratio is hand / aebench per pair; its median and range are reported."""
    spec = dae_spec(rows, width)
    reg = aebench.registry()

    def ours() -> float:
        ctx = build_context(spec.runs[0], device, reg)
        trainer = Trainer(ctx, [], RunOptions(device, progress=False), None, reg)
        return sum(r.seconds for r in trainer.run()[0].records)

    split = build_context(spec.runs[0], device, reg).splits["train"]
    hand = lambda: hand_epoch(split.x, split.scale, width, device)  # noqa: E731
    ours(), hand()
    t_ours, t_hand = [], []
    for i in range(repeat):  # A B, B A, A B, ...: a drift during a pair favours neither side
        if i % 2:
            t_hand.append(hand())
            t_ours.append(ours())
        else:
            t_ours.append(ours())
            t_hand.append(hand())
    ratios = sorted(h / o for h, o in zip(t_hand, t_ours))
    flops = 3 * 2 * 2 * sum(a * b for a, b in zip([784, width], [width, width])) * rows  # fwd + 2×bwd, enc + dec
    return {
        "rows": rows,
        "pairs": repeat,
        "aebench_train_s": t_ours,
        "hand_train_s": t_hand,
        "aebench_examples_per_s": rows / statistics.median(t_ours),
        "plain_examples_per_s": rows / statistics.median(t_hand),
        "ratio": statistics.median(ratios),
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
        "train_gflops": flops / min(t_ours) / 1e9,
    }


def gemm_peak(device, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t = timed(lambda: a @ b, 5)
    return 2 * n**3 / t / 1e9


# ------------------------------------------------------------------ contractive
def bench_contractive(device) -> dict:
    g = torch.Generator().manual_seed(0)
    W = (torch.randn(1000, 784, generator=g) * 0.05).to(device)
    b = torch.zeros(1000, device=device)
    x = torch.rand(100, 784, generator=g).to(device)

    def closed():
        contractive_penalty(torch.sigmoid(x @ W.T + b), W)

    def autograd():
        jac = torch.func.vmap(torch.func.jacrev(lambda v: torch.sigmoid(W @ v + b)))(x)
        jac.pow(2).sum((1, 2)).mean()

    t_c, t_a = timed(closed, 5), timed(autograd, 2)
    return {"closed_form_s": t_c, "autograd_s": t_a, "ratio": t_a / t_c}


# ----------------------------------------------------------------------- parzen
def bench_parzen(device, n: int = 10000, batch: int = 1000) -> dict:
    g = torch.Generator().manual_seed(0)
    samples = torch.rand(n, 784, generator=g, dtype=torch.float64).to(device)
    x = torch.rand(n, 784, generator=g, dtype=torch.float64).to(device)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    parzen_log_likelihood(samples, x, 0.2, batch_size=batch)
    seconds = time.perf_counter() - t
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {
        "seconds": seconds,
        "rows": n,
        "samples": n,
        "batch_size": batch,
        "peak_rss_growth_mb": peak_mb,
        "bound_mb": 3 * batch * batch * 8 / 2**20,
        "naive_mb": n * n * 8 / 2**20,
    }


# -------------------------------------------------------------------- data path
def bench_data(device, rows: int = 20000) -> dict:
    spec = dae_spec(rows)
    ctx = build_context(spec.runs[0], device)
    split = ctx.splits["train"]
    g = torch.Generator(device=device).manual_seed(0)

    def indexed():
        perm = torch.randperm(len(split), generator=g, device=device)
        for s in range(0, len(split), 100):
            split.rows(perm[s : s + 100]).sum()

    ds = torch.utils.data.TensorDataset(split.x.cpu(), split.y.cpu())
    loader = torch.utils.data.DataLoader(ds, batch_size=100, shuffle=True)

    def dataloader():
        for xb, _ in loader:
            (xb.to(device).float() / 255).sum()

    t_i, t_l = timed(indexed, 3), timed(dataloader, 3)
    return {"indexed_s": t_i, "dataloader_s": t_l, "ratio": t_l / t_i}


# -------------------------------------------------------------------- ensembles
def seeds_spec(members: int, rows: int, width: int, epochs: int) -> dict:
    """S seeds of a 2×width tied DAE on MNIST (the ensemble and compiled benchmarks)."""
    return {
        "name": "seeds",
        "seeds": list(range(members)),
        "data": {"name": "mnist", "subset": rows, "eval_subset": 100},
        "model": {"name": "stacked", "layers": [width, width]},
        "corruption": {"name": "gaussian", "level": 0.3},
        "schedule": {"name": "joint", "epochs": epochs},
        "optimizer": {"name": "rmsprop", "lr": 0.001},
        "evaluate": {"recon": {"every": 0}},
    }


def bench_ensemble(
    device, members: int = 8, rows: int = 5000, width: int = 256, epochs: int = 3, repeat: int = 5
) -> dict:
    """S seeds of a 2×width DAE: one batched model vs S runs one after another.

    The two sides alternate ``repeat`` times and each keeps its best. Two ratios: training
    throughput (the runs' own ``epoch_seconds``, which is what a 300-epoch paper run is made
    of) and whole-run wall time (data, model set-up, evaluation and files included, which
    a 4-epoch benchmark over-weights).
    """
    import tempfile

    spec = seeds_spec(members, rows, width, epochs)
    with tempfile.TemporaryDirectory() as tmp:  # warm-up, so that neither side pays the first-run costs
        aebench.run(
            aebench.Spec.from_dict(
                {
                    **spec,
                    "seeds": [0, 1],
                    "ensemble": True,
                    "data": {"name": "mnist", "subset": 200, "eval_subset": 100},
                }
            ),
            out=tmp,
            progress=False,
        )
    wall = {False: float("inf"), True: float("inf")}
    train = dict(wall)
    for _ in range(repeat):
        for ensemble in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                ds = aebench.run(
                    aebench.Spec.from_dict({**spec, "ensemble": ensemble}), out=tmp, device=str(device), progress=False
                )
                wall[ensemble] = min(wall[ensemble], time.perf_counter() - t)
                train[ensemble] = min(train[ensemble], float(ds["epoch_seconds"].sum()))
    examples = members * rows * epochs
    return {
        "members": members,
        "epochs": epochs,
        "rows": rows,
        "sequential_train_s": train[False],
        "ensemble_train_s": train[True],
        "sequential_wall_s": wall[False],
        "ensemble_wall_s": wall[True],
        "sequential_train_examples_per_s": examples / train[False],
        "ensemble_train_examples_per_s": examples / train[True],
        "ratio": train[False] / train[True],
        "wall_ratio": wall[False] / wall[True],
    }


# ----------------------------------------------------------------------- memory
def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, which starts afresh at exec (ru_maxrss
    carries over the forking parent's peak, so a child of a large process reads the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_probe(device, members: int, width: int = 256) -> dict:
    """Peak memory of one S-member batch trained one epoch on the whole of MNIST (50k train,
    10k valid, 10k test): run in a fresh process by :func:`bench_memory`, since peak RSS only grows."""
    spec = aebench.Spec.from_dict({**seeds_spec(members, 50000, width, 1), "ensemble": True, "data": {"name": "mnist"}})
    reg = aebench.registry()
    ctxs = build_contexts(spec.runs, device, reg)
    Trainer(ctxs, [[] for _ in ctxs], RunOptions(device, progress=False), None, reg).run()
    splits = ctxs[0].splits.values()
    return {
        "members": members,
        "peak_rss_mb": peak_rss_mb(),
        "peak_device_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "data_mb": sum(s.x.nbytes + s.y.nbytes for s in splits) / 2**20,
        "param_mb": sum(p.nbytes for p in ctxs[0].model.parameters()) / 2**20,
    }


def bench_memory(device, members: tuple[int, ...] = (1, 2, 4, 8)) -> dict:
    """How peak memory grows with the members of a batch (a 2×256 DAE on the whole of MNIST,
    each S in its own process). Per added member it should grow by that member's model state
    only: its weights (its own model, its slice of the batched one, its initial weights kept
    for a from-scratch stage), gradients and RMSprop state, 5 × its parameters, plus the
    step's temporaries; not by another copy of the data set (the target: less than one)."""
    import subprocess
    import sys

    probes = []
    for s in members:
        cmd = [sys.executable, __file__, "--memory-probe", str(s), "--device", str(device)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        probes.append(json.loads(out.strip().splitlines()[-1]))
    first, last = probes[0], probes[-1]
    added = last["members"] - first["members"]
    key = "peak_device_mb" if device.type == "cuda" else "peak_rss_mb"
    return {
        "probes": probes,
        "measure": key,
        "growth_per_member_mb": (last[key] - first[key]) / added,
        "state_per_member_mb": 5 * first["param_mb"],
        "data_mb": first["data_mb"],
        "rss_growth_per_member_mb": (last["peak_rss_mb"] - first["peak_rss_mb"]) / added,
    }


# ------------------------------------------------------------------ paper scale
def bench_paper(device, epochs: int = 300) -> dict:
    """One paper-scale run: DAE-2 (tied 784-1000-1000, Gaussian 0.3, CE, RMSprop), the 50k
    MNIST training set, batch 100, joint training (target on one H100: under 2 minutes)."""
    import tempfile

    raw = dae_spec(50000, 1000, epochs).raw
    spec = aebench.Spec.from_dict({**raw, "data": {"name": "mnist"}})  # the whole test set evaluated
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ds = aebench.run(spec, out=tmp, device=str(device), progress=False)
        wall = time.perf_counter() - t
    return {
        "epochs": epochs,
        "wall_s": wall,
        "train_s": float(ds["epoch_seconds"].sum()),
        "examples_per_s": 50000 * epochs / float(ds["epoch_seconds"].sum()),
        "test_recon_error": ds["recon_error_final"].sel(split="test").item(),
    }


# ------------------------------------------------------------------------- peer
def bench_pythae(device, rows: int, width: int = 1000, epochs: int = 3) -> dict:
    """pythae's plain AE with the same 784-1000-1000 sigmoid encoder/decoder, same data, batch 100.

    Both sides train ``epochs`` epochs with Adam; pythae's time is its trainer's ``train()``
    call (which also evaluates on 100 rows and saves), aebench's is ``aebench.run`` (which
    also measures the final reconstruction error of every split and writes netCDF).
    """
    try:
        from pythae.data.datasets import BaseDataset
        from pythae.models import AE, AEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.trainers import BaseTrainer, BaseTrainerConfig
    except ImportError as exc:  # `make bench` installs it (the [bench] extra); a bare run.py may lack it
        return {"status": f"skipped: pythae cannot be imported ({exc}); `make bench` installs it (aebench[bench])"}
    import tempfile

    class Enc(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(784, width), torch.nn.Sigmoid(), torch.nn.Linear(width, width), torch.nn.Sigmoid()
            )

        def forward(self, x):
            return ModelOutput(embedding=self.net(x.reshape(len(x), -1)))

    class Dec(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(width, width), torch.nn.Sigmoid(), torch.nn.Linear(width, 784), torch.nn.Sigmoid()
            )

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(len(z), 1, 28, 28))

    d = (
        aebench.registry()
        .get("dataset", "mnist")(aebench.registry().get("dataset", "mnist").Params(subset=rows, eval_subset=100))
        .load()
    )
    x = torch.from_numpy(d.train.x).float().reshape(-1, 1, 28, 28) / 255
    xv = torch.from_numpy(d.valid.x).float().reshape(-1, 1, 28, 28) / 255
    import logging

    logging.getLogger("pythae").setLevel(logging.ERROR)

    def pythae_run(xs: torch.Tensor, n_epochs: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            model = AE(AEConfig(input_dim=(1, 28, 28), latent_dim=width), encoder=Enc(), decoder=Dec())
            cfg = BaseTrainerConfig(
                output_dir=tmp,
                num_epochs=n_epochs,
                per_device_train_batch_size=100,
                per_device_eval_batch_size=100,
                learning_rate=1e-3,
                no_cuda=device.type != "cuda",
                steps_saving=None,
            )
            trainer = BaseTrainer(
                model=model,
                train_dataset=BaseDataset(xs, torch.zeros(len(xs))),
                eval_dataset=BaseDataset(xv, torch.zeros(len(xv))),
                training_config=cfg,
            )
            t = time.perf_counter()
            trainer.train()
            return time.perf_counter() - t

    pythae_run(x[:100], 1)  # warm-up, as aebench gets below
    t_pythae = pythae_run(x, epochs)
    spec = aebench.Spec.from_dict(
        {
            "name": "peer",
            "data": {"name": "mnist", "subset": rows, "eval_subset": 100},
            "model": {"name": "stacked", "layers": [width, width], "tied": False},
            "schedule": {"name": "joint", "epochs": epochs},
            "optimizer": {"name": "adam", "lr": 1e-3},
            "evaluate": {"recon": {"every": 0, "max_rows": 100}},  # pythae evaluates 100 rows too
        }
    )
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports and netCDF set-up, as pythae's ran above
        aebench.run(
            aebench.Spec.from_dict({**spec.raw, "data": {"name": "mnist", "subset": 100, "eval_subset": 100}}),
            out=tmp,
            progress=False,
        )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        aebench.run(spec, out=tmp, device=str(device), progress=False)
        t_ours = time.perf_counter() - t
    n = rows * epochs
    return {
        "status": "measured",
        "epochs": epochs,
        "pythae_examples_per_s": n / t_pythae,
        "aebench_examples_per_s": n / t_ours,
        "ratio": t_pythae / t_ours,
    }


def bench_compiled(device, members: int = 8, rows: int = 5000, width: int = 256, epochs: int = 3) -> dict:
    """The batched step under ``compile = true`` vs eager, training throughput of the same
    8-member ensemble (compilation itself excluded: a warm-up run compiles first)."""
    import tempfile

    spec = {**seeds_spec(members, rows, width, epochs), "ensemble": True}
    train = {}
    for compiled in (False, True, False, True):  # the first of each compiles / warms up
        with tempfile.TemporaryDirectory() as tmp:
            ds = aebench.run(aebench.Spec.from_dict({**spec, "compile": compiled}), out=tmp, device=str(device),
                             progress=False)  # fmt: skip
            seconds = ds["epoch_seconds"].isel(epoch=slice(1, None)).sum()  # epoch 1 holds the compilation
            train[compiled] = float(seconds)
    return {"members": members, "eager_train_s": train[False], "compiled_train_s": train[True],
            "ratio": train[False] / train[True]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rows", type=int, default=10000, help="training rows for the engine benchmark")
    ap.add_argument("--pairs", type=int, default=21, help="alternated pairs of the engine benchmark")
    ap.add_argument("--memory-probe", type=int, metavar="S", help=argparse.SUPPRESS)  # bench_memory's child
    ap.add_argument(
        "--only",
        choices=["ensemble", "engine", "paper", "compiled", "memory"],
        help="run one benchmark and print it (nothing is saved)",
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=300,
        help="epochs of the paper-scale run (--only paper; on GPUs in the full suite)",
    )
    args = ap.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    res: dict = {
        "machine": socket.gethostname(),
        "platform": platform.platform(),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.memory_probe:
        print(json.dumps(memory_probe(device, args.memory_probe)))
        return
    if args.only:
        fn = {
            "memory": lambda: bench_memory(device),
            "ensemble": lambda: bench_ensemble(device, members=64 if device.type == "cuda" else 8),
            "engine": lambda: bench_engine(device, args.rows, repeat=args.pairs),
            "paper": lambda: bench_paper(device, args.epochs),
            "compiled": lambda: bench_compiled(device, members=64 if device.type == "cuda" else 8),
        }
        print(json.dumps(fn[args.only](), indent=2))
        return
    res["parzen"] = bench_parzen(device)  # first: its peak-RSS reading needs a fresh process
    res["engine"] = bench_engine(device, args.rows, repeat=args.pairs)
    res["gemm_peak_gflops"] = gemm_peak(device)
    res["hardware_fraction"] = res["engine"]["train_gflops"] / res["gemm_peak_gflops"]
    res["contractive"] = bench_contractive(device)
    res["data_path"] = bench_data(device)
    res["pythae"] = bench_pythae(device, 5000)
    res["ensemble"] = bench_ensemble(device, members=64 if device.type == "cuda" else 8)
    res["compiled"] = bench_compiled(device, members=64 if device.type == "cuda" else 8)
    res["memory"] = bench_memory(device)
    if device.type == "cuda":  # 300 epochs of 50k rows: hours on a CPU
        res["paper"] = bench_paper(device, args.epochs)
    rows = [
        (
            "engine overhead: hand loop / aebench training seconds",
            res["engine"]["ratio"],
            "≥ 0.97",
            res["engine"]["ratio"] >= 0.97,
        ),
        (
            "hardware use: training GFLOP/s / GEMM peak",
            res["hardware_fraction"],
            "≥ 0.5",
            res["hardware_fraction"] >= 0.5,
        ),
        (
            "contractive: autograd Jacobian time / closed form",
            res["contractive"]["ratio"],
            "≥ 5",
            res["contractive"]["ratio"] >= 5,
        ),
        (
            f"seed ensemble ({res['ensemble']['members']} × 2×256 DAE) / sequential throughput",
            res["ensemble"]["ratio"],
            "≥ 10" if device.type == "cuda" else "≥ 1.5",
            res["ensemble"]["ratio"] >= (10 if device.type == "cuda" else 1.5),
        ),
        (
            f"compiled step (compile = true) / eager, {res['compiled']['members']}-member ensemble throughput",
            res["compiled"]["ratio"],
            "report",
            None,
        ),
        (
            f"memory per added batch member, MB ({'device' if device.type == 'cuda' else 'RSS'} peak)",
            res["memory"]["growth_per_member_mb"],
            f"< {res['memory']['data_mb']:.0f}",
            res["memory"]["growth_per_member_mb"] < res["memory"]["data_mb"],
        ),
        ("data path: DataLoader time / on-device indexing", res["data_path"]["ratio"], "report", None),
        ("parzen 10k×10k seconds (batch 1000)", res["parzen"]["seconds"], "report", None),
    ]
    if "paper" in res:
        rows.append(
            (
                f"paper-scale DAE-2 run, {res['paper']['epochs']} epochs: seconds",
                res["paper"]["wall_s"],
                "< 120",
                res["paper"]["wall_s"] < 120,
            )
        )
    if res["pythae"]["status"] == "measured":
        p = res["pythae"]
        rows.append(
            (f"peer: aebench / pythae examples per second ({p['epochs']} epochs)", p["ratio"], "> 1", p["ratio"] > 1)
        )
    print(f"aebench benchmarks on {res['device']} ({res['threads']} threads), torch {res['torch']}, {res['date']}")
    print(f"{'benchmark':<55} {'value':>10}  {'target':>7}  result")
    for name, value, target, ok in rows:
        print(f"{name:<55} {value:>10.2f}  {target:>7}  {'pass' if ok else ('FAIL' if ok is False else '')}")
    g = res["engine"]
    print(
        f"engine: aebench {g['aebench_examples_per_s']:.0f} ex/s, hand loop {g['plain_examples_per_s']:.0f} ex/s; "
        f"ratio median {g['ratio']:.3f} of {g['pairs']} pairs (range {g['ratio_min']:.2f}–{g['ratio_max']:.2f}); "
        f"GEMM peak {res['gemm_peak_gflops']:.0f} GFLOP/s"
    )
    m = res["memory"]
    print(
        "memory: peak "
        + ", ".join(f"{p[m['measure']]:.0f} MB at S = {p['members']}" for p in m["probes"])
        + f"; per added member {m['growth_per_member_mb']:.1f} MB (its model state {m['state_per_member_mb']:.1f} MB; "
        f"one copy of the data {m['data_mb']:.1f} MB)"
    )
    e = res["ensemble"]
    print(
        f"ensemble: training {e['ensemble_train_examples_per_s']:.0f} "
        f"vs {e['sequential_train_examples_per_s']:.0f} ex/s; "
        f"whole runs (set-up, evaluation, files included) {e['wall_ratio']:.2f}×"
    )
    print(
        f"parzen peak RSS growth {res['parzen']['peak_rss_growth_mb']:.0f} MB "
        f"(naive 10k×10k matrix: {res['parzen']['naive_mb']:.0f} MB)"
    )
    if res["pythae"]["status"] != "measured":
        print(f"pythae: {res['pythae']['status']}")
    out = HERE / "results" / f"{res['machine']}-{res['device'].split(':')[0]}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
