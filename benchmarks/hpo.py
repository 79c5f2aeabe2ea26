"""Bayesmark-style hyperparameter problems on scikit-learn's bundled datasets.

A problem is one model x one dataset x one metric, named
``"<model>-<dataset>-<metric>"`` (e.g. ``"knn-iris-nll"``). It follows
/work/shared/BAYESMARK.md:

- data: ``train_test_split(test_size=0.2, random_state=0, shuffle=True)``;
  features standardised (a ``StandardScaler`` inside the pipeline, so each CV
  fold is scaled on its own training part);
- the loss the optimiser sees: ``-mean(cross_val_score(cv=5))`` on the 80 %
  split (metric ``nll``: log-loss, ``acc``: -accuracy, ``mse``, ``mae``);
- the held-out loss (fit on the 80 %, score on the 20 %) is recorded by
  :meth:`HpoProblem.evaluate` but never shown to the optimiser;
- logit-warped reals of Bayesmark are searched as *linear* reals, the same
  for every method: the opt / clip cache and all stored runs were made so,
  and Optuna has no logit scale (gpbo's ``Real(..., logit=True)`` came later);
  booleans are categoricals;
- a failed fit (exception or non-finite score) returns NaN (a failed trial).

The score needs ``opt`` (best loss ever seen) and ``clip`` (median loss of one
random evaluation) per problem: :mod:`benchmarks.baselines` computes them from
random search and caches them in ``benchmarks/bayesmark_baselines.json``.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from benchmarks.problems import Cat, Int, Problem, Real

DATASETS = ("breast_cancer", "digits", "iris", "wine", "diabetes")
REGRESSION = ("diabetes",)
CLF_METRICS = {"nll": "neg_log_loss", "acc": "accuracy"}
REG_METRICS = {"mse": "neg_mean_squared_error", "mae": "neg_mean_absolute_error"}

_TREE = {
    "max_depth": Int(1, 15),
    "min_samples_split": Real(0.01, 0.99),
    "min_samples_leaf": Real(0.01, 0.49),
    "min_weight_fraction_leaf": Real(0.01, 0.49),
    "max_features": Real(0.01, 0.99),
    "min_impurity_decrease": Real(0.0, 0.5),
}
_LINEAR_CLF = {"C": Real(1e-2, 1e2, log=True), "intercept_scaling": Real(1e-2, 1e2, log=True)}

# model -> (classifier space, regressor space)
SPACES: dict[str, tuple[dict, dict]] = {
    "knn": ({"n_neighbors": Int(1, 25), "p": Int(1, 4)},) * 2,
    "svm": ({"C": Real(1.0, 1e3, log=True), "gamma": Real(1e-4, 1e-3, log=True),
             "tol": Real(1e-5, 1e-1, log=True)},) * 2,
    "dt": (_TREE, _TREE),
    "rf": (_TREE, _TREE),
    "mlp-adam": ({"hidden_layer_sizes": Int(50, 200), "alpha": Real(1e-5, 1e1, log=True),
                  "batch_size": Int(10, 250), "learning_rate_init": Real(1e-5, 1e-1, log=True),
                  "tol": Real(1e-5, 1e-1, log=True), "validation_fraction": Real(0.1, 0.9),
                  "beta_1": Real(0.5, 0.99), "beta_2": Real(0.9, 1 - 1e-6),
                  "epsilon": Real(1e-9, 1e-6, log=True)},) * 2,
    "ada": ({"n_estimators": Int(10, 100), "learning_rate": Real(1e-4, 1e1, log=True)},) * 2,
    "lasso": (_LINEAR_CLF, {"alpha": Real(1e-2, 1e2, log=True), "fit_intercept": Cat((False, True)),
                            "max_iter": Int(10, 5000, log=True), "tol": Real(1e-5, 1e-1, log=True),
                            "positive": Cat((False, True))}),
    "linear": (_LINEAR_CLF, {"alpha": Real(1e-2, 1e2, log=True), "fit_intercept": Cat((False, True)),
                             "max_iter": Int(10, 5000, log=True), "tol": Real(1e-4, 1e-1, log=True)}),
}
MODELS = tuple(SPACES)


def _estimator(model: str, regression: bool, params: dict[str, Any]):
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree

    p = dict(params)
    if model in ("knn",):
        cls = neighbors.KNeighborsRegressor if regression else neighbors.KNeighborsClassifier
        return cls(**p)
    if model == "svm":
        return svm.SVR(kernel="rbf", **p) if regression else svm.SVC(kernel="rbf", probability=True, **p)
    if model == "dt":
        return (tree.DecisionTreeRegressor if regression else tree.DecisionTreeClassifier)(**p)
    if model == "rf":
        cls = ensemble.RandomForestRegressor if regression else ensemble.RandomForestClassifier
        return cls(n_estimators=10, **p)
    if model == "mlp-adam":
        p["hidden_layer_sizes"] = (int(p["hidden_layer_sizes"]),)
        cls = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
        return cls(solver="adam", early_stopping=True, **p)
    if model == "ada":
        return (ensemble.AdaBoostRegressor if regression else ensemble.AdaBoostClassifier)(**p)
    if model in ("lasso", "linear"):
        if regression:
            return linear_model.Lasso(**p) if model == "lasso" else linear_model.Ridge(**p)
        # liblinear was one-vs-rest for multiclass in the scikit-learn Bayesmark
        # used; newer releases refuse multiclass, so wrap it explicitly.
        from sklearn.multiclass import OneVsRestClassifier

        penalty = "l1" if model == "lasso" else "l2"
        return OneVsRestClassifier(linear_model.LogisticRegression(penalty=penalty, solver="liblinear", **p))
    raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")


@lru_cache(maxsize=None)
def load(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, X_test, y_train, y_test) of the fixed 80/20 split."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.2, random_state=0, shuffle=True))


def evaluate(model: str, dataset: str, params: dict[str, Any],
             metrics: tuple[str, ...]) -> dict[str, float]:
    """CV and held-out losses of one configuration, for several metrics at once.

    Returns ``{metric: cv_loss, metric + "_holdout": holdout_loss}``; NaN for a
    failed fit. One set of CV fits serves all ``metrics`` (the random-search
    baselines use both metrics of a dataset from the same fits).
    """
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = dataset in REGRESSION
    table = REG_METRICS if regression else CLF_METRICS
    Xtr, Xte, ytr, yte = load(dataset)
    out = {m: math.nan for m in metrics} | {f"{m}_holdout": math.nan for m in metrics}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = make_pipeline(StandardScaler(), _estimator(model, regression, params))
            cv = cross_validate(pipe, Xtr, ytr, cv=5, scoring={m: table[m] for m in metrics},
                                error_score="raise")
            pipe.fit(Xtr, ytr)
            for m in metrics:
                out[m] = -float(np.mean(cv[f"test_{m}"]))
                out[f"{m}_holdout"] = -float(get_scorer(table[m])(pipe, Xte, yte))
    except Exception:  # noqa: BLE001 - any failing configuration is a failed trial
        pass
    return {k: (v if math.isfinite(v) else math.nan) for k, v in out.items()}


class HpoProblem(Problem):
    """A Bayesmark problem; ``fn`` returns the CV loss, :meth:`evaluate` both losses."""

    def evaluate(self, params: dict[str, Any]) -> dict[str, float]:
        model, dataset, metric = split_name(self.name)
        res = evaluate(model, dataset, _clean(params), (metric,))
        return {"value": res[metric], "holdout": res[f"{metric}_holdout"]}


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    """Python scalars (NumPy / torch scalars confuse some estimators' checks)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()}


def split_name(name: str) -> tuple[str, str, str]:
    parts = name.split("-")
    if len(parts) < 3:
        raise ValueError(f"not a Bayesmark problem name: {name!r}")
    model, dataset, metric = "-".join(parts[:-2]), parts[-2], parts[-1]
    if model not in SPACES or dataset not in DATASETS:
        raise ValueError(f"unknown model or dataset in {name!r}")
    allowed = REG_METRICS if dataset in REGRESSION else CLF_METRICS
    if metric not in allowed:
        raise ValueError(f"metric {metric!r} is not one of {tuple(allowed)} for {dataset}")
    return model, dataset, metric


def problem(name: str) -> HpoProblem:
    model, dataset, metric = split_name(name)
    space = SPACES[model][1 if dataset in REGRESSION else 0]

    def fn(params: dict[str, Any], _m=model, _d=dataset, _k=metric) -> float:
        return evaluate(_m, _d, _clean(params), (_k,))[_k]

    return HpoProblem(name=name, params=dict(space), fn=fn, optimum=math.nan,
                      kind="bayesmark", default_budget=128)


def all_names(models=MODELS, datasets=DATASETS) -> list[str]:
    names = []
    for m in models:
        for d in datasets:
            metrics = REG_METRICS if d in REGRESSION else CLF_METRICS
            names += [f"{m}-{d}-{k}" for k in metrics]
    return names


def normalised_loss(best: np.ndarray, opt: float, clip: float) -> np.ndarray:
    """Bayesmark's normalised loss of the best-so-far losses ``best``.

    (min(best, clip) - opt) / (clip - opt), clipped to [-1, 1]. 0 is the best
    known value, 1 the median random evaluation.
    """
    best = np.asarray(best, dtype=float)
    return np.clip((np.minimum(best, clip) - opt) / (clip - opt), -1.0, 1.0)


def score(normalised: np.ndarray) -> float:
    """Bayesmark score 100 * (1 - mean normalised loss) (mean over all entries)."""
    return float(100.0 * (1.0 - np.mean(normalised)))
