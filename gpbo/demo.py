"""Demo: tune a PyTorch MLP on scikit-learn's digits data with gpbo.

    python -m gpbo.demo [--trials 40] [--device cpu] [--out gpbo-demo] [--seed 0] [--early-stopping]

The data set ships with scikit-learn (``load_digits``: 1797 8x8 images, 10
classes), so nothing is downloaded. It is standardised and split once, with a
fixed seed, into train (60%), validation (20%) and test (20%). Each trial
trains an MLP with AdamW for 40 epochs (one CPU thread) and returns the
validation log-loss (cross-entropy), which gpbo minimises over

- ``lr``: learning rate, Real(1e-4, 3e-2, log=True)
- ``weight_decay``: Real(1e-6, 1e-1, log=True)
- ``width``: hidden units, Integer(16, 256, log=True)
- ``depth``: hidden layers, Integer(1, 3)
- ``dropout``: Real(0.0, 0.5)
- ``batch_size``: Categorical([32, 64, 128])
- ``activation``: Categorical(["relu", "gelu", "tanh"])

A progress bar shows the best value so far. Every evaluation reseeds torch,
so the same parameters give the same value. At the end the best
configuration's model is scored once on the held-out test split, and the
study (an SQLite file: run the demo again with the same ``--out`` to add
trials to it) and a convergence plot are written to ``--out``. With the
default 40 trials the demo takes 43 s on an idle 2-core CPU (about
3 minutes on a busy one).

With ``--early-stopping`` each trial reports its validation log-loss after
every epoch (``trial.report(loss, epoch)``) and stops when gpbo's model-based
rule (`gpbo.Settings.early_stopping`, default ``"model"``) says it cannot beat
the best finished run; the study then has ``max_step`` = the epochs, only
runs that trained every epoch count as the best, and it ends once its trials
have trained ``--epoch-budget`` epochs in all (default: 40 % of what the
full-fidelity demo trains, ``trials * epochs * 2 / 5``), however many trials
that takes. At that budget its held-out accuracy is within the
full-fidelity demo's seed-to-seed spread in under half the time; at half
the epochs it took two thirds of the time, the rule's decisions and the
extra trials' suggestions being the rest (benchmarks/RESULTS.md, "The demo").
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import gpbo

EPOCHS = 40
STUDY_NAME = "digits-mlp"
METRIC = "validation log-loss"  # what the objective measures, named on the plot
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class Splits:
    """Standardised digits data: (features, labels) per split, on one device."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def load_splits(seed: int, device: torch.device) -> Splits:
    """Digits split 60/20/20 (stratified, fixed seed), standardised on the train split."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ImportError(
            'the gpbo demo needs scikit-learn for its digits data: pip install "gpbo[demo]"') from exc

    X, y = load_digits(return_X_y=True)
    X_tr, X_rest, y_tr, y_rest = train_test_split(
        X, y, test_size=0.4, stratify=y, random_state=seed)
    X_va, X_te, y_va, y_te = train_test_split(
        X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed)
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std < 1e-8] = 1.0  # pixels that are constant on the train split stay unscaled

    def to_t(X_, y_):
        X_t = torch.as_tensor((X_ - mean) / std, dtype=torch.float32, device=device)
        return X_t, torch.as_tensor(y_, dtype=torch.long, device=device)

    return Splits(to_t(X_tr, y_tr), to_t(X_va, y_va), to_t(X_te, y_te))


def make_mlp(width: int, depth: int, dropout: float, activation: str,
             n_in: int = 64, n_out: int = 10) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units, each followed by the activation and dropout."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), ACTIVATIONS[activation](),
                   nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(width, n_out))


@contextlib.contextmanager
def torch_threads(n: int):
    """Sets torch's intra-op thread count inside the block and restores it after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


EpochHook = Callable[[nn.Module, int], bool]  # (model, epoch from 1) -> stop training now?


def train(params: dict, data: Splits, seed: int, epochs: int = EPOCHS,
          after_epoch: EpochHook | None = None) -> nn.Module:
    """Trains an MLP with the given hyperparameters; deterministic given `seed`.

    ``after_epoch(model, epoch)`` runs after each epoch (the model in train
    mode); training ends early when it returns True.

    On the CPU it runs on one thread: these matrices are too small to gain from
    more, and a fixed count keeps the floating-point results reproducible.
    """
    on_cpu = data.train[0].device.type == "cpu"
    with torch_threads(1) if on_cpu else contextlib.nullcontext():
        return _train(params, data, seed, epochs, after_epoch)


def _train(params: dict, data: Splits, seed: int, epochs: int, after_epoch: EpochHook | None) -> nn.Module:
    torch.manual_seed(seed)
    X, y = data.train
    model = make_mlp(int(params["width"]), int(params["depth"]), float(params["dropout"]),
                     params["activation"]).to(X.device)
    opt = torch.optim.AdamW(model.parameters(), lr=float(params["lr"]),
                            weight_decay=float(params["weight_decay"]))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(X), generator=gen).to(X.device)
        for idx in perm.split(int(params["batch_size"])):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
        if after_epoch is not None and after_epoch(model, epoch):
            break
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, split: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
    """(log-loss, accuracy) of `model` on one split."""
    X, y = split
    logits = model(X)
    loss = nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(dim=-1) == y).float().mean().item()
    return loss, acc


def search_space() -> gpbo.Space:
    return gpbo.Space({
        "lr": gpbo.Real(1e-4, 3e-2, log=True),
        "weight_decay": gpbo.Real(1e-6, 1e-1, log=True),
        "width": gpbo.Integer(16, 256, log=True),
        "depth": gpbo.Integer(1, 3),
        "dropout": gpbo.Real(0.0, 0.5),
        "batch_size": gpbo.Categorical([32, 64, 128]),
        "activation": gpbo.Categorical(["relu", "gelu", "tanh"]),
    })


def _fmt(params: dict) -> str:
    return (f"lr={params['lr']:.2e} weight_decay={params['weight_decay']:.1e} "
            f"width={int(params['width'])} depth={int(params['depth'])} "
            f"dropout={params['dropout']:.3f} batch_size={params['batch_size']} "
            f"activation={params['activation']}")


def _print_trial(optimizer: gpbo.Optimizer, trial: gpbo.Trial) -> None:
    """Print each finished trial above the progress bar."""
    from tqdm.auto import tqdm

    value = f"val_loss={trial.value:.4f}" if trial.value is not None else f"failed ({trial.error})"
    tqdm.write(f"trial {trial.id:3d}: {value}  {_fmt(trial.params)}")


class Objective:
    """Validation log-loss of one configuration; keeps the best model seen."""

    def __init__(self, data: Splits, seed: int, epochs: int = EPOCHS):
        self.data, self.seed, self.epochs = data, seed, epochs
        self.best: tuple[float, dict, nn.Module] | None = None

    def __call__(self, params: dict) -> float:
        model = train(params, self.data, self.seed, self.epochs)
        return self._keep(params, model, evaluate(model, self.data.val)[0])

    def _keep(self, params: dict, model: nn.Module, loss: float) -> float:
        if math.isfinite(loss) and (self.best is None or loss < self.best[0]):
            self.best = (loss, dict(params), model)
        return loss


class ReportingObjective(Objective):
    """`Objective` that reports the validation log-loss after every epoch and stops when gpbo says so.

    Only a run that trained all its epochs can be the kept best model (a
    stopped run's loss is not a full-fidelity result).
    """

    def __call__(self, params: dict, trial: gpbo.TrialHandle) -> float:
        losses: list[float] = []

        def after_epoch(model: nn.Module, epoch: int) -> bool:
            model.eval()
            losses.append(evaluate(model, self.data.val)[0])
            model.train()
            trial.report(losses[-1], epoch)
            return not math.isfinite(losses[-1]) or trial.should_stop()

        model = train(params, self.data, self.seed, self.epochs, after_epoch)
        if len(losses) == self.epochs:
            self._keep(params, model, losses[-1])
        return losses[-1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Tune an MLP on scikit-learn's digits with gpbo.")
    ap.add_argument("--trials", type=int, default=40, help="number of evaluations (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the split, training and gpbo")
    ap.add_argument("--device", default=None,
                    help="torch device for training and for gpbo (default: cpu)")
    ap.add_argument("--out", default="gpbo-demo",
                    help="folder for study.db and convergence.png (default ./gpbo-demo)")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs per trial (default {EPOCHS})")
    ap.add_argument("--early-stopping", action="store_true",
                    help="report the validation loss every epoch and stop hopeless runs (gpbo's model-based rule)")
    ap.add_argument("--epoch-budget", type=int, default=None,
                    help="with --early-stopping: epochs the study may train in all (default trials * epochs * 2 / 5)")
    args = ap.parse_args(argv)
    if args.epoch_budget is not None and not args.early_stopping:
        ap.error("--epoch-budget needs --early-stopping")
    budget = (args.epoch_budget or args.trials * args.epochs * 2 // 5) if args.early_stopping else None

    device = torch.device(args.device or "cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_splits(args.seed, device)
    size = f"{budget} epochs of trials that stop early" if budget else f"{args.trials} trials"
    print(f"digits: {len(data.train[1])} train / {len(data.val[1])} validation / "
          f"{len(data.test[1])} test examples; {size}, seed {args.seed}, "
          f"device {device}; study in {out / 'study.db'}", flush=True)
    objective = (ReportingObjective if args.early_stopping else Objective)(data, args.seed, args.epochs)
    t0 = time.perf_counter()
    result = gpbo.minimize(objective, search_space(), None if budget else args.trials, seed=args.seed,
                           settings={"device": args.device}, storage=gpbo.Storage(out / "study.db", STUDY_NAME),
                           progress=True, callbacks=[_print_trial],
                           max_step=args.epochs if budget else None, step_budget=budget)
    wall = time.perf_counter() - t0
    if result.best_params is None:
        print("every trial failed; nothing to report")
        return

    n_done = len(result.trials)
    if budget:
        epochs = sum(t.last_step or 0 for t in result.trials)
        print(f"\nepochs trained: {epochs} in {n_done} trials "
              f"({sum(t.state is gpbo.TrialState.PRUNED for t in result.trials)} stopped early)")
    this_run = "" if budget else f"{args.trials} in this run, "
    print(f"\nbest of {n_done} trials ({this_run}{wall:.0f} s): "
          f"val_loss={result.best_value:.4f}\n  {_fmt(result.best_params)}")
    if objective.best is not None and objective.best[0] == result.best_value:
        model = objective.best[2]
    else:  # training is deterministic, so retraining reproduces the best model
        model = train(result.best_params, data, args.seed, args.epochs)
    test_loss, test_acc = evaluate(model, data.test)
    print(f"held-out test: accuracy {test_acc:.4f}, log-loss {test_loss:.4f}")
    _save_plot(result, out / "convergence.png")


def _save_plot(result: gpbo.MinimizeResult, path: Path) -> None:
    try:
        import matplotlib  # noqa: F401 - gpbo.plot draws with it
    except ImportError:
        print('matplotlib is not installed; no plot (pip install "gpbo[demo]")')
        return
    convergence_plot(result).savefig(path, dpi=100)
    print(f"wrote {path} and {path.parent / 'study.db'}")


def convergence_plot(result: gpbo.MinimizeResult):
    """The demo's convergence plot (a matplotlib Figure), its axis naming the metric."""
    return gpbo.plot.convergence(result, log_y=True, metric_name=METRIC)  # log-loss > 0


if __name__ == "__main__":
    main()
