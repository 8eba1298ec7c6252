"""Re-ranking benchmark: selection latency with the third pass on, and the trade-offs.

1. **Latency.** One user x 500 candidates, k = 10, through the exported
   ``select_top_k`` signature: the plain top-k (λ = 1, no threshold, no cap, no
   freshness) and the same call with every step on (MMR λ = 0.7, similarity threshold
   0.9, category cap 3, freshness boost, 5 not-interested items), interleaved in one
   run. Prints p50/p99 of each and the p99 ratio (target: <= 2x).
2. **Trade-offs** on the default simulator (``--small`` for a quick run): a
   ``position_debiased`` model, then for each MMR λ and freshness weight, over test
   users: NDCG@10 against true relevance, intra-list similarity (share of pairs with
   the same genre), head-item share and fresh-item share (items get a synthetic age,
   uniform in 0-60 days; fresh = younger than the 7-day half-life; the simulator's
   relevance does not depend on age, so freshness here can only cost NDCG). Writes
   ``tradeoff.md`` (table) and ``tradeoff.png`` into ``--out``.

Usage: python benchmarks/reranking.py [--out reranking_output] [--small] [--epochs 3]
       [--users 300] [--calls 1000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig
from tfrs_debias.data.io.files import write_json
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.serving import TopItemSelector, export_saved_model
from tfrs_debias.serving.reranker import RerankOptions
from tfrs_debias.training import train

LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)
FRESHNESS = (0.0, 0.1, 0.3)


def latency(path: str, truth: GroundTruth, schema: ImpressionSchema, calls: int) -> dict:
    selector = TopItemSelector.from_saved_model(path)
    rng = np.random.default_rng(0)
    pool = np.unique(truth.candidates[truth.mask])
    items = rng.choice(pool, min(500, pool.size), replace=False)
    genre = {
        int(i): int(g)
        for i, g in zip(
            truth.candidates.ravel(), truth.item_features["item_genre"].ravel(), strict=True
        )
    }
    cands = {"item_id": items, "item_genre": np.array([genre[int(i)] for i in items])}
    user = {
        "user_id": int(truth.users[0]),
        "user_segment": int(truth.user_features["user_segment"][0]),
    }
    ages = rng.uniform(0, 60, items.size).astype(np.float32)
    plain = selector.inputs(user, cands, k=10)
    full = selector.inputs(
        user,
        cands,
        k=10,
        not_interested=items[:5].tolist(),
        item_age=ages,
        options=RerankOptions(
            diversity_lambda=0.7,
            similarity_threshold=0.9,
            category_cap=3,
            freshness_weight=0.1,
        ),
    )
    fn = selector.select_fn
    for _ in range(50):
        fn(**plain)
        fn(**full)
    times: dict[str, list[float]] = {"plain": [], "reranked": []}
    for _ in range(calls):
        for name, inputs in (("plain", plain), ("reranked", full)):
            start = time.perf_counter()
            fn(**inputs)["item_ids"].numpy()
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, t in times.items():
        ms = np.asarray(t) * 1000
        out[name] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
    out["p99_ratio"] = out["reranked"]["p99_ms"] / out["plain"]["p99_ms"]
    out["p50_ratio"] = out["reranked"]["p50_ms"] / out["plain"]["p50_ms"]
    out["candidates"] = int(items.size)
    return out


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for w in FRESHNESS:
        rows = [r for r in result["rows"] if r["freshness_weight"] == w]
        ndcg = [r["ndcg"] for r in rows]
        for ax, key in zip(
            axes, ("intra_list_similarity", "head_share", "fresh_share"), strict=True
        ):
            ax.plot([r[key] for r in rows], ndcg, "o-", ms=4, label=f"freshness weight {w:g}")
            for r in rows:
                ax.annotate(
                    f"{r['diversity_lambda']:g}",
                    (r[key], r["ndcg"]),
                    fontsize=6,
                    xytext=(2, 2),
                    textcoords="offset points",
                )
    labels = (
        "intra-list similarity (same genre)",
        "head-item share of the list",
        "fresh-item share (age < 7 days)",
    )
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xlabel(label)
        ax.set_ylabel("NDCG@10 vs true relevance")
        ax.grid(alpha=0.3)
    axes[0].set_title("point labels: MMR λ")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="reranking_output")
    p.add_argument("--small", action="store_true", help="the small simulator (quick run)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--users", type=int, default=300, help="test users in the trade-off sweep")
    p.add_argument("--calls", type=int, default=1000, help="latency calls per variant")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, "data")
    config = SimulatorConfig.small(seed=0) if args.small else SimulatorConfig()
    if not os.path.exists(os.path.join(data, "truth.npz")):
        print(f"simulating into {data}", flush=True)
        ImpressionSimulator(config).write(data, progress=False)
    schema = ImpressionSchema.load(os.path.join(data, "schema.json"))
    truth = GroundTruth.load(data)
    run = train(
        os.path.join(data, "train-*"),
        os.path.join(args.out, "run"),
        EstimatorConfig(model="position_debiased"),
        schema,
        epochs=args.epochs,
        verbose=0,
        validate="none",
        overwrite=True,
    )
    path = export_saved_model(
        run.model, os.path.join(args.out, "saved_models", "pd"), force=True, version=1
    )

    lat = latency(path, truth, schema, args.calls)
    print(
        f"\nselect_top_k, {lat['candidates']} candidates, k=10 "
        f"({args.calls} interleaved calls each):"
    )
    print(f"{'variant':<12}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("plain", "reranked"):
        print(f"{name:<12}{lat[name]['p50_ms']:>10.2f}{lat[name]['p99_ms']:>10.2f}")
    verdict = "met" if lat["p99_ratio"] <= 2 else "NOT met"
    print(
        f"p99 ratio reranked/plain: {lat['p99_ratio']:.2f}x (target <= 2x: {verdict}); "
        f"p50 ratio {lat['p50_ratio']:.2f}x"
    )

    ages = (
        np.random.default_rng(1)
        .uniform(0, 60, size=int(truth.candidates.max()) + 1)
        .astype(np.float32)
    )
    item_age = ages[np.maximum(truth.candidates, 0)]
    settings = [
        {"diversity_lambda": lam, "freshness_weight": w} for w in FRESHNESS for lam in LAMBDAS
    ]
    evaluator = Evaluator(truth, tradeoff_users=args.users)
    start = time.perf_counter()
    trade = evaluator.tradeoff(Scorer.from_saved_model(path), settings=settings, item_age=item_age)
    print(
        f"\ntrade-off sweep: {len(settings)} settings x {trade['users']} users "
        f"in {time.perf_counter() - start:.0f} s"
    )
    rows = []
    for i, s in enumerate(trade["settings"]):
        rows.append(
            {
                "diversity_lambda": s["diversity_lambda"],
                "freshness_weight": s["freshness_weight"],
                **{
                    k: trade[k][i]
                    for k in ("ndcg", "intra_list_similarity", "head_share", "fresh_share")
                },
            }
        )
    lines = [
        "| λ | freshness weight | NDCG@10 | intra-list similarity | head share | fresh share |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['diversity_lambda']:.1f} | {r['freshness_weight']:.1f} | {r['ndcg']:.4f} | "
            f"{r['intra_list_similarity']:.3f} | {r['head_share']:.0%} | {r['fresh_share']:.0%} |"
        )
    table = "\n".join(lines)
    print(table)
    result = {
        "latency": lat,
        "rows": rows,
        "users": trade["users"],
        "simulator": "small" if args.small else "default",
    }
    write_json(os.path.join(args.out, "reranking.json"), result)
    with tf.io.gfile.GFile(os.path.join(args.out, "tradeoff.md"), "w") as fh:
        fh.write(table + "\n")
    plot(result, os.path.join(args.out, "tradeoff.png"))
    print(f"\nwrote {args.out}/tradeoff.md, tradeoff.png, reranking.json")


if __name__ == "__main__":
    main()
