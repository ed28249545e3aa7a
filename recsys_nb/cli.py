"""The ``recsys-nb`` command: train, embed, recommend, evaluate, info, index, db.

Bad input (an unknown id, a missing data folder, an image that does not fit the
model, a folder that is not a model) prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__, recipe
from .errors import RecsysError

TABLE_COLUMNS = ("rank", "id", "score", "articleType", "baseColour", "name", "label")


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except RecsysError as exc:
        print(f"recsys-nb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recsys-nb: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys-nb", description="Visual product recommendation with a conv autoencoder."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train an autoencoder into models/<name>/")
    p.add_argument("--name", help="model name (default: fashion-mnist or products)")
    recipe.add_arguments(p)  # one flag per field of recsys_nb.recipe.Recipe
    p.add_argument("--quick", action="store_true", default=None, help="small subset, 2 epochs")
    p.add_argument("--no-resume", dest="resume", action="store_false")
    p.set_defaults(run=_train)

    p = sub.add_parser("embed", help="embed a catalogue with a model (cached in the model folder)")
    p.add_argument("--model", required=True)
    p.add_argument("--catalog", help="catalogue folder (default: the model's own data)")
    p.set_defaults(run=_embed)

    p = sub.add_parser("recommend", help="products like a catalogue item or an image")
    p.add_argument(
        "--model",
        required=True,
        help="model folder or name; with --store mongo also a name or model id stored in "
        "the database (nothing needed on this machine but MONGODB_URI)",
    )
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--id", help="catalogue id of the query product")
    query.add_argument("--image", help="image file of a product that is not in the catalogue")
    p.add_argument("-k", "--k", type=int, default=10)
    p.add_argument("--catalog", help="catalogue folder (default: the model's own data)")
    p.add_argument("--filter", action="append", default=[], metavar="COLUMN=VALUE")
    p.add_argument(
        "--store",
        choices=["memory", "mongo"],
        default="memory",
        help="memory (default) or mongo (vectors written by `recsys-nb index`)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of {id, score, ...}")
    p.set_defaults(run=_recommend)

    p = sub.add_parser("evaluate", help="neighbour precision of a model and the baselines")
    p.add_argument("--model", required=True)
    p.add_argument("--catalog", help="catalogue folder (default: the model's validation split)")
    p.add_argument("--dataset", choices=["fashion-mnist", "products"])
    p.add_argument("-k", "--k", type=int, default=10)
    p.add_argument(
        "--split",
        choices=["auto", "val", "all"],
        default="auto",
        help="auto: items the model never trained on (a catalogue's validation split, or all "
        "of another catalogue; the Fashion-MNIST test set); val: the validation split (for "
        "Fashion-MNIST, of its training set: choose recipes there); all: every item",
    )
    p.add_argument("--no-baselines", dest="baselines", action="store_false")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("index", help="embed a catalogue and write it to MongoDB (resumable)")
    p.add_argument("--model", required=True)
    p.add_argument("--catalog", help="catalogue folder (default: the model's own data)")
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--replace", action="store_true", help="delete the model's vectors first")
    p.add_argument(
        "--no-thumbnails",
        dest="thumbnails",
        action="store_false",
        help="do not store the catalogue's thumbnails (the widget then needs the image files)",
    )
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate the model (recsys-nb evaluate, k = 10) and store the figures with it",
    )
    p.set_defaults(run=_index)

    p = sub.add_parser("db", help="the local mongod (start|stop|status) and the vector index")
    dbsub = p.add_subparsers(required=True, metavar="ACTION")
    for action, text in (
        ("start", "start (or reuse) the local mongod under data/mongo/"),
        ("stop", "stop the local mongod"),
        ("status", "is it running, where (exit status 1 if not)"),
    ):
        q = dbsub.add_parser(action, help=text)
        q.add_argument("--dir", help="data folder (default: $RECSYS_NB_MONGO_DIR or data/mongo)")
        q.set_defaults(run=_db, action=action)
    q = dbsub.add_parser("models", help="the models stored in the database, settings, figures")
    q.add_argument("--json", action="store_true", help="print them as JSON")
    q.set_defaults(run=_db, action="models", dir=None)
    q = dbsub.add_parser("create-index", help="create the Atlas Vector Search index, wait for it")
    q.add_argument("--model", help="model folder or id (its latent size sizes the index)")
    q.add_argument("--dim", type=int, help="latent size, instead of --model")
    q.add_argument("--quantization", choices=["none", "scalar", "binary"], default="none")
    q.add_argument("--timeout", type=float, default=600.0, help="seconds to wait until queryable")
    q.add_argument("--no-wait", dest="wait", action="store_false")
    q.set_defaults(run=_db, action="create-index", dir=None)

    p = sub.add_parser("info", help="what a model folder holds, or where data and models are")
    p.add_argument("--model")
    p.set_defaults(run=_info)
    return parser


def _train(args) -> int:
    from .train import train

    model = train(recipe.from_arguments(args), args.name, quick=args.quick, resume=args.resume)
    m = model.meta
    print(
        f"saved {model.path}: {m['epochs']} epochs, train loss {m['train_loss']:.4f}, "
        f"val loss {m['val_loss']:.4f}"
    )
    return 0


def _embed(args) -> int:
    from .embed import EMBEDDINGS_FILE, embed_catalog

    result = embed_catalog(args.model, args.catalog)
    dims = result.vectors.shape[1]
    print(f"{len(result.ids)} items x {dims} dims -> {args.model}/{EMBEDDINGS_FILE}")
    return 0


def _parse_filters(pairs) -> dict:
    from .protocol import filter_pairs

    return filter_pairs(pairs)


def _recommend(args) -> int:
    if args.store == "mongo":
        from .store import MongoStore

        store = MongoStore(model=args.model)  # a name or id in the database, or a folder
        store.require_vectors(args.catalog)
    else:
        from .recommend import MemoryStore

        store = MemoryStore.from_model(args.model, args.catalog)
    table = store.recommend(
        args.id, image=args.image, k=args.k, filters=_parse_filters(args.filter)
    )
    table = table.rename(columns={"productDisplayName": "name"})
    if args.json:
        print(table.to_json(orient="records"))
    else:
        columns = [c for c in TABLE_COLUMNS if c in table.columns]
        print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _index(args) -> int:
    from .model import load_model
    from .store import MongoStore

    model = load_model(args.model)
    evaluation = None
    if args.evaluate:
        from .evaluate import evaluate

        evaluation = evaluate(model, args.catalog, k=10)
    with MongoStore() as store:
        r = store.index(
            model,
            args.catalog,
            batch_size=args.batch_size,
            replace=args.replace,
            thumbnails=args.thumbnails,
            evaluation=evaluation,
        )
        print(
            f"indexed {r['n_items']} items of model {r['model_id']} into {store.location} "
            f"database {r['database']!r}: {r['written']} vectors written, {r['skipped']} "
            f"already there, {r['stored']} stored; {r['items_written']} items and "
            f"{r['thumbnails_written']} thumbnails written ({r['seconds']:.1f} s)"
        )
    return 0


def format_models(models: list[dict]) -> str:
    """``recsys-nb db models``: one block per stored model."""
    if not models:
        return "no models stored: run `recsys-nb index --model ...`"
    lines = []
    for m in models:
        state = "complete" if m["complete"] else "INCOMPLETE (run recsys-nb index again)"
        files = "model files stored" if m["files"] else "no model files (vectors only)"
        lines.append(
            f"{m['name']}  {m['model_id']}  latent {m['latent_dim']}, {m['n_items']} items, "
            f"{state}, {files}"
        )
        settings = m["settings"]
        if settings:
            shown = ", ".join(
                f"{k}={v}" for k, v in settings.items() if v not in (None, [], (), "", False)
            )
            lines.append(f"    settings: {shown}")
        report = m.get("evaluation")
        if report:
            lines.append(
                f"    evaluation: {report.get('n_items')} items ({report.get('split')} split), "
                f"k = {report.get('k')}"
            )
            lines += ["    " + row for row in format_results(report).splitlines()]
        else:
            lines.append("    evaluation: none stored (recsys-nb index --evaluate)")
    return "\n".join(lines)


def _db(args) -> int:
    import os

    from .mongod import URI_ENV, LocalMongo, redact_uri

    remote = os.environ.get(URI_ENV)
    if args.action == "models":
        from .store import MongoStore

        with MongoStore() as store:
            models = store.list_models()
        if args.json:
            print(json.dumps(models, default=str))
        else:
            print(format_models(models))
        return 0
    if args.action == "create-index":
        from .store import MongoStore

        with MongoStore() as store:
            if args.model:
                store.use(args.model)
            name = store.create_vector_index(
                args.dim, quantization=args.quantization, wait=args.wait, timeout=args.timeout
            )
            print(f"vector search index {name} {'queryable' if args.wait else 'building'}")
        return 0
    if remote:
        print(f"${URI_ENV} is set: using {redact_uri(remote)}; no local mongod is managed")
        return 0
    server = LocalMongo(args.dir)
    if args.action == "start":
        server.start()
        s = server.status()
        print(f"mongod running: pid {s['pid']}, {s['uri']}, data {s['dbpath']}")
        return 0
    if args.action == "stop":
        print("mongod stopped" if server.stop() else f"no mongod was running over {server.root}")
        return 0
    s = server.status()
    if not s["running"]:
        print(f"mongod not running (data {s['dbpath']})")
        return 1
    print(
        f"mongod running: pid {s['pid']}, {s['uri']}, "
        f"{'answering' if s['answering'] else 'NOT answering'}, data {s['dbpath']}, "
        f"log {s['log']}, since {s['started_at']}"
    )
    return 0


def format_results(report: dict) -> str:
    """The evaluation report as a plain-text table, one row per feature space."""
    rows = []
    for name, r in report["results"].items():
        cells = {f"P@{report['k']} {k}": f"{v:.3f}" for k, v in r["precision"].items()}
        if "same_colour" in r:
            cells[f"same_colour@{report['k']}"] = f"{r['same_colour']:.3f}"
        cells["MRR"] = f"{r['mrr']:.3f}"
        rows.append((name, cells))
    headers = list(rows[0][1])
    width = max(len(n) for n, _ in rows)
    lines = [" ".join([" " * width, *headers])]
    for name, cells in rows:
        lines.append(" ".join([name.ljust(width), *(cells[h].rjust(len(h)) for h in headers)]))
    return "\n".join(lines)


def _evaluate(args) -> int:
    from .evaluate import evaluate

    report = evaluate(
        args.model,
        args.catalog,
        dataset=args.dataset,
        k=args.k,
        split=args.split,
        baselines=args.baselines,
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['n_items']} items ({report['split']} split), k = {report['k']}")
        print(format_results(report))
    return 0


def _info(args) -> int:
    from . import settings
    from .model import load_model

    if args.model is None:
        print(f"recsys-nb {__version__}")
        for s in settings.describe():
            print(f"{s.name:>13}: {s.value}  ({s.source})")
        root = settings.data_root()
        if not root.is_dir():
            print(f"data root {root} is missing: set RECSYS_NB_DATA to the datasets folder")
        models_dir = settings.models_dir()
        models = sorted(p.parent.name for p in models_dir.glob("*/meta.json"))
        print(f"models in {models_dir}: {', '.join(models) or 'none (run make demo)'}")
        return 0
    model = load_model(args.model)
    m = {"depth": 1, **model.meta}  # models from before --depth have one conv per level
    keys = (
        "model_id",
        "dataset",
        "input_shape",
        "latent_dim",
        "filters",
        "depth",
        "loss",
        "augment",
        "contrast",
        "hog",
        "epochs",
        "train_loss",
        "val_loss",
        "n_train",
        "n_val",
        "trained_at",
        "git_commit",
    )
    for key in keys:
        print(f"{key:>12}: {m.get(key)}")
    print(f"{'parameters':>12}: {model.autoencoder.count_params():,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
