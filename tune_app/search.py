"""`python -m tune_app.search --space FILE`: run a hyperparameter search (grid, random or Optuna) on Ray Tune.

Everything that can be wrong with the spec is found before Ray starts; the dataset is
prepared once in the driver and shared with every trial.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import posixpath
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Optional

from tune_app.errors import UsageError, cli_entry
from tune_app.flags import check_count, check_interface, check_port
from tune_app.lock import holder, owner_fields
from tune_app.names import check_name
from tune_app.tuner.network import keep_local_ray_on_loopback
from tune_app.spec import ExperimentSpec, load_spec
from tune_app.storage import Location, is_uri

# Above this many trials a search must be asked for with --max-trials: a grid one list too
# long would otherwise start a run of days with nothing on screen but Ray's table.
MAX_TRIALS = 1000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_app.search", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--space", metavar="FILE", help="experiment spec (YAML), e.g. search_spaces/grid.yaml")
    src.add_argument("--resume", metavar="DIR", help="continue an interrupted search, e.g. results/NAME")
    p.add_argument("--dry-run", action="store_true", help="list the trials and their sizes; train nothing")
    p.add_argument("--name", help="experiment name (default: output.name, else the spec's file name)")
    p.add_argument("--address", help="join a running Ray cluster: auto, or ray://HOST:10001")
    p.add_argument("--storage", help="results folder or URI shared by all nodes (default: output.results_dir)")
    p.add_argument("--dashboard-host", default="127.0.0.1",
                   help="interface the Ray dashboard binds to (default 127.0.0.1: this machine only)")
    p.add_argument("--dashboard-port", type=int, default=None, help="Ray dashboard port (default 8265)")
    p.add_argument("--num-cpus", type=float, default=None, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--num-gpus", type=float, default=None, help="GPUs of the local Ray instance (default: all)")
    p.add_argument("--max-trials", type=int, default=MAX_TRIALS, metavar="N",
                   help=f"refuse to launch more than N trials (default {MAX_TRIALS}): raise it to run a bigger search")
    p.add_argument("--warm-start", nargs="+", metavar="DIR", default=[],
                   help="earlier experiments of the same dataset, model family and fixed settings: a grid skips "
                        "the points they ran, Optuna's study starts from their results; either way they join "
                        "the ranking (column `from`)")
    return p


def check_flags(args: argparse.Namespace) -> None:
    """Every flag's range, before the spec is read or Ray starts."""
    if args.name is not None:
        check_name(args.name, key="--name")
    if args.storage is not None and not args.storage.strip():
        raise UsageError("is empty", key="--storage", fix="pass a folder or a URI, or leave it out")
    check_interface(args.dashboard_host, "--dashboard-host")
    check_port(args.dashboard_port, "--dashboard-port")
    check_count(args.num_cpus, "--num-cpus", allow_zero=False, example="2")
    # 0 GPUs is meaningful: trials run on CPU even on a machine with a GPU.
    check_count(args.num_gpus, "--num-gpus", allow_zero=True, example="1")
    check_count(args.max_trials, "--max-trials", allow_zero=False, example=str(MAX_TRIALS))
    if args.resume and args.warm_start:
        # The resumed search keeps the earlier trials it started with (experiment.json); others
        # would change a grid's points or an Optuna study half-way.
        raise UsageError("applies to a new search; a resumed one keeps the warm start it began with",
                         key="--warm-start", fix="leave out --warm-start when resuming")


# --------------------------------------------------------------------------- dry run


LIST_LIMIT = 100  # --dry-run lists configurations (and builds architectures) one per row up to this many


def describe_trials(spec: ExperimentSpec) -> str:
    from tune_app.data import describe_dataset
    from tune_app.experiment import format_table
    from tune_app.tuner import searchers

    num_classes, channels = describe_dataset(spec.base.dataset)
    grid = spec.grid
    configurations = grid.size()
    architectures = grid.architectures
    # A model is built once per architecture listed (not per point): a 10^6-point grid of four
    # architectures builds four models.
    params = {repr(arch): _parameters(spec, arch, num_classes, channels) for arch in architectures[:LIST_LIMIT]}
    epochs = spec.base.train.epochs
    n = spec.trial_count()
    lines = [f"spec: {spec.path}   dataset: {spec.base.dataset.name} ({num_classes} classes)"]
    lines.append(searchers.describe(spec))
    if not searchers.enumerates(spec):
        lines += [f"  {key}: {dom.describe()}" for key, dom in spec.space.items()]
        lines.append("model variants it can sample:")
    if configurations <= LIST_LIMIT:
        model_keys = grid.model_keys
        lines.append(format_table([
            {"#": index, **point, "params": params[repr({k: point[k] for k in model_keys})]}
            for index, point in enumerate(grid.points())]))
    else:
        lines.append(f"{len(architectures)} distinct architectures, {grid.points_per_architecture()} "
                     f"configurations each:")
        lines.append(format_table([{"architecture": index, **arch, "params": params[repr(arch)]}
                                   for index, arch in enumerate(architectures[:LIST_LIMIT])]))
        if len(architectures) > LIST_LIMIT:
            lines.append(f"... and {len(architectures) - LIST_LIMIT} more architectures")
    lines += _dropped_lines(spec, "dropped before launch")
    budget = f"epoch budget: at most {n * epochs} epochs ({n} trials x {epochs})"
    scheduled = searchers.describe_budget(spec)
    if scheduled:
        budget += f"; {scheduled}"
    lines.append(budget)
    from tune_app.race import budget_line

    lines.append(budget_line(spec))
    lines.append(resources_line(spec))
    return "\n".join(lines)


def resources_line(spec: ExperimentSpec) -> str:
    """What each trial reserves, and whether this machine can give it (a GPU spec on a laptop
    otherwise fails only once Ray is up)."""
    import torch

    cpus, gpus = spec.resources.cpus_per_trial, spec.resources.gpus_per_trial
    line = f"needs per trial: {cpus:g} CPU(s), {gpus:g} GPU(s)"
    if gpus > 0 and not torch.cuda.is_available():
        variant = cpu_variant(spec)
        line += ("; this machine has no GPU: run it on a GPU machine or a cluster (--address), "
                 + (f"or use the CPU variant {variant}" if variant else "or set resources.gpus_per_trial: 0 (slow)"))
    return line


def cpu_variant(spec: ExperimentSpec) -> Optional[Path]:
    """A `*_cpu.yaml` beside the spec for the same dataset (the shipped laptop versions)."""
    import yaml

    for candidate in sorted(Path(spec.path).parent.glob("*_cpu.yaml")):
        try:
            data = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and (data.get("dataset") or {}).get("name") == spec.base.dataset.name:
            return candidate
    return None


def _parameters(spec: ExperimentSpec, arch: dict[str, Any], num_classes: int, channels: int) -> int:
    from dataclasses import replace

    from tune_app.hparams import shown
    from tune_app.models import build_model, count_parameters

    model = replace(spec.base.model, **shown(arch))
    return count_parameters(build_model(model, num_classes, channels))


def _dropped_lines(spec: ExperimentSpec, prefix: str) -> list[str]:
    """One line per unbuildable architecture (not per grid point: there may be millions)."""
    per = spec.grid.points_per_architecture()
    dropped = spec.grid.dropped_architectures()
    lines = [f"{prefix}: {arch} ({per} grid point{'s' if per > 1 else ''}): {reason}"
             for arch, reason in dropped[:LIST_LIMIT]]
    if len(dropped) > LIST_LIMIT:
        lines.append(f"{prefix}: ... and {len(dropped) - LIST_LIMIT} more architectures")
    return lines


def local_resources(args: argparse.Namespace) -> list[dict[str, float]]:
    """What the Ray instance this run starts on this machine will have (no --address)."""
    import torch

    cpus = args.num_cpus if args.num_cpus is not None else float(os.cpu_count() or 1)
    gpus = args.num_gpus if args.num_gpus is not None else float(torch.cuda.device_count())
    return [{"CPU": cpus, "GPU": gpus}]


def check_storage(args: argparse.Namespace, spec: ExperimentSpec, nodes: int) -> None:
    """On several nodes, trials write checkpoints where they run: a folder only this machine
    has would scatter the experiment over the nodes' disks."""
    if nodes > 1 and not args.storage:
        raise UsageError(f"the cluster has {nodes} nodes but results go to '{spec.output.results_dir}', "
                         "a folder only this machine has", key="--storage",
                         fix="pass --storage with a folder mounted on every node or an s3:// / gs:// URI")


def check_resources(spec: ExperimentSpec, nodes: list[dict[str, float]]) -> None:
    """A trial that fits on no node would stay PENDING forever; say so now instead."""
    need = {"CPU": spec.resources.cpus_per_trial, "GPU": spec.resources.gpus_per_trial}
    for resource, amount in need.items():
        most = max((n.get(resource, 0.0) for n in nodes), default=0.0)
        if amount > most:
            key = "resources.cpus_per_trial" if resource == "CPU" else "resources.gpus_per_trial"
            fix = f"lower {key} to at most {most:g}, or add a bigger node"
            variant = cpu_variant(spec) if resource == "GPU" and most == 0 else None
            if variant:
                fix = f"run the CPU variant --space {variant}, or {fix}"
            raise UsageError(f"{amount:g} {resource}s per trial, but no node of the cluster has more than {most:g}",
                             file=spec.path, key=key, fix=fix)


# --------------------------------------------------------------------------- experiment folder


def check_writable(root: Location) -> None:
    """The results folder can take this search's files: found before Ray and the data start,
    not 20 s in. A file in the way, a read-only or full disk, or no permission is one line."""
    if root.remote:
        return  # object stores answer for themselves on the first write
    from tune_app.fileio import DISK_RESERVE, free_bytes, write_error

    folder = root.local
    blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"'{blocker}' is a file, so no results folder can be made under it",
                         file=str(folder), key="output.results_dir",
                         fix="set output.results_dir (or --storage) to a folder path")
    # Probed where the folder is or will be made, but not made: a later check may still refuse
    # the run, and a refused run leaves nothing behind.
    base = folder if folder.is_dir() else blocker
    try:
        handle, probe = tempfile.mkstemp(prefix=".tune_app-write-test-", dir=base)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise write_error(err, folder / "x") from None
    free = free_bytes(folder)
    if free is not None and free < DISK_RESERVE:
        raise UsageError(f"only {free / 2**20:.1f} MB free; a search needs at least "
                         f"{DISK_RESERVE / 2**20:.0f} MB besides its checkpoints",
                         file=str(folder), key="output.results_dir",
                         fix="free space there or set output.results_dir (or --storage) to a larger disk")


def claim_experiment_dir(root: Location, name: str) -> Location:
    """A fresh folder for this run: an existing experiment is never reused or overwritten."""
    check_name(name, key="output.name")
    candidates = [name, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"]
    candidates += [f"{candidates[1]}-{n}" for n in range(2, 100)]
    for candidate in candidates:
        location = root.child(candidate)
        _check_direct_child(root, location)
        try:
            location.mkdir()
            return location
        except FileExistsError:
            continue
    raise UsageError(f"no free experiment name under {root}", key="output.name", fix="pick another name")


def _check_direct_child(root: Location, location: Location) -> None:
    """The claimed folder must be one level under the results root: Ray writes to
    storage_path/name, and `ray_destination` derives both from this folder."""
    if location.remote:
        inside = PurePosixPath(location.root).parent == PurePosixPath(root.root)
    else:
        inside = location.local.resolve().parent == root.local.resolve()
    if not inside:
        raise UsageError(f"experiment folder {location} is not directly inside {root}", key="output.name",
                         fix="use a plain folder name, without '/' or '..'")


def ray_destination(location: Location):
    """(storage_path, name, storage_filesystem) for Ray's RunConfig, all taken from the folder
    tune_app claimed, so that Ray can only ever write where tune_app looks; the filesystem signs
    what Ray writes there (`ray_storage`)."""
    path, fs = ray_storage(location)
    return posixpath.dirname(path), posixpath.basename(path), fs


def write_meta(path: Path, spec: ExperimentSpec, status: str, warm: Optional[dict[str, Any]] = None) -> None:
    """warm: the "warm_start" record (tune_app.warm), kept across every rewrite of the file."""
    from dataclasses import asdict

    from tune_app.experiment import WARM_KEY
    from tune_app.fileio import write_json_atomic

    meta = {
        "spec_path": spec.path,
        "status": status,
        **owner_fields(),  # pid, its start time and host: the lock that --resume and retrain_best check
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "base": spec.base.to_dict(),
        "space": {k: {"kind": d.kind, "values": list(d.values)} for k, d in spec.space.items()},
        "search": asdict(spec.search),
        "scheduler": asdict(spec.scheduler),
        "resources": asdict(spec.resources),
        "output": asdict(spec.output),
        "retrain": asdict(spec.retrain),
        **({WARM_KEY: warm} if warm else {}),
    }
    write_json_atomic(path / "experiment.json", meta)


def spec_from_experiment(path: Path) -> ExperimentSpec:
    """The spec of an experiment folder (for --resume), refusing one another search is running."""
    meta_file = path / "experiment.json"
    if not (meta_file.is_file() and (path / "spec.yaml").is_file()):
        raise UsageError("not a tune_app experiment folder (no experiment.json/spec.yaml)", file=str(path),
                         fix="pass the folder a search created, e.g. --resume results/NAME")
    from tune_app.experiment import read_meta

    running = holder(read_meta(path), meta_file)
    if running:
        raise UsageError(f"experiment is in use by a running search (pid {running.pid})", file=str(path),
                         fix="wait for it to finish or stop it first")
    spec = load_spec(path / "spec.yaml")
    spec.output.name = path.name
    return spec


def ray_storage(experiment: Location):
    """(experiment path, filesystem) for Ray: every pickle Ray or a worker writes under it is
    signed with this user's key, and read back only if its signature holds (tune_app.integrity)."""
    import pyarrow.fs

    from tune_app.integrity import signing_filesystem

    if experiment.remote:
        path, base = experiment.root, experiment.fs
    else:
        path, base = str(experiment.local), pyarrow.fs.LocalFileSystem()
    return path, signing_filesystem(base, posixpath.dirname(path))


def check_resumable(experiment: Location, local: Path) -> None:
    """Before Ray unpickles anything: every pickle of the folder carries this user's signature,
    and the checkpoint Tune will restore for each unfinished trial (the one the verified
    experiment state names, not the newest by name) is a readable tune_app checkpoint."""
    from tune_app.experiment import read_ended
    from tune_app.integrity import verify_experiment

    path, fs = ray_storage(experiment)
    verify_experiment(fs, path, shown=str(experiment))
    from tune_app.tuner.build import restored_checkpoints

    for trial_dir, checkpoint in restored_checkpoints(path, fs):
        if not read_ended(local / trial_dir):  # a finished trial is not restored
            check_checkpoint(fs, checkpoint, f"{experiment}/{checkpoint[len(path) + 1:]}", path)


def check_checkpoint(fs, checkpoint: str, shown: str, experiment: str) -> None:
    """Verify and read the checkpoint folder `checkpoint` (`shown` in messages)."""
    import tempfile

    from tune_app.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from tune_app.integrity import IntegrityError

    try:
        if not is_uri(shown):
            load_checkpoint(checkpoint, experiment=experiment)
            return
        with tempfile.TemporaryDirectory() as tmp:  # the local mirror has no checkpoints
            with fs.open_input_stream(f"{checkpoint}/{CHECKPOINT_FILE}") as src:  # verified as read
                (Path(tmp) / CHECKPOINT_FILE).write_bytes(src.readall())
            load_checkpoint(tmp)
    except IntegrityError as err:
        err.file = f"{shown}/{CHECKPOINT_FILE}"
        raise
    except (UsageError, FileNotFoundError) as err:
        if isinstance(err, FileNotFoundError) or err.message == "checkpoint not found":
            raise UsageError("the checkpoint Tune would restore is missing", file=f"{shown}/{CHECKPOINT_FILE}",
                             fix="restore it from a backup; Tune cannot resume this trial without it") from None
        err.file = f"{shown}/{CHECKPOINT_FILE}"
        err.fix = f"delete {shown} so the trial resumes from its previous checkpoint"
        raise


# --------------------------------------------------------------------------- main


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_flags(args)
    # Before anything imports Ray, which reads the setting at import. RAY_ADDRESS joins a
    # cluster as --address does.
    keep_local_ray_on_loopback(args.dashboard_host, args.address or os.environ.get("RAY_ADDRESS"))
    warm, warm_record = None, None
    if args.resume:
        location = Location(args.resume)
        experiment_dir = location.pull()
        spec = spec_from_experiment(experiment_dir)
        check_resumable(location, experiment_dir)
        from tune_app.experiment import WARM_KEY, read_meta

        warm_record = read_meta(experiment_dir).get(WARM_KEY)
    else:
        spec = load_spec(args.space)
        if args.name is not None:
            spec.output.name = args.name  # checked by check_flags
        if args.warm_start:
            warm = take_over(spec, args.warm_start)
    if not args.resume and not args.dry_run:
        from tune_app.integrity import load_key

        load_key(create=True)  # the first search of this user makes the key; a bad one stops here
    for line in _dropped_lines(spec, "note: dropped"):
        print(line)
    launches = expected_trials(spec, warm, warm_record)
    if warm is not None:
        print(warm_line(spec, warm, launches), flush=True)
    if args.dry_run:
        print(describe_trials(spec))
        if not args.resume and launches > args.max_trials:
            print(f"note: launching {launches} trials needs --max-trials {launches} "
                  f"(the limit is {args.max_trials})")
        return 0
    if not args.resume:
        check_trial_count(spec, args.max_trials, launches)
    storage = Location(args.storage or spec.output.results_dir) if not args.resume else location
    check_writable(storage)
    if not args.address:
        check_resources(spec, local_resources(args))  # before the data and Ray: a clean error at once

    from tune_app.data import load_dataset

    print(f"preparing data: {spec.base.dataset.name} (decoded once into the cache; later runs reuse it)",
          flush=True)
    data = load_dataset(spec.base.dataset)
    subset = spec.base.dataset.subset_per_class
    print(f"data: {spec.base.dataset.name}  train {len(data.train)} / val {len(data.val)} / "
          f"test {len(data.test)} images of {data.image_shape}, {data.num_classes} classes"
          + (f" (dataset.subset_per_class: {subset} images a class)" if subset else ""), flush=True)

    from tune_app.tuner import build
    from tune_app.tuner.callbacks import DiskSpaceGuard
    from tune_app.tuner.trainable import make_trainable

    ray_started: list[bool] = []

    def ensure_ray() -> None:
        """Ray starts only for training: a warm-started grid with every point run needs none."""
        if not ray_started:
            _start_ray(args, spec)
            ray_started.append(True)

    if launches:
        ensure_ray()
    else:
        print("nothing to train in the search: Ray is not started for it", flush=True)

    # Only now, with every check passed, does the run get a folder of its own.
    if not args.resume:
        location = claim_experiment_dir(storage, spec.output.name)
        experiment_dir = location.local
        shutil.copyfile(spec.path, experiment_dir / "spec.yaml")
        warm_record = warm.record(experiment_dir) if warm else None
    write_meta(experiment_dir, spec, "running", warm_record)
    location.push("spec.yaml", "experiment.json")
    from tune_app.judge import judge_settings

    status = "interrupted"
    started = time.perf_counter()
    interrupts = _Interrupts()
    signal.signal(signal.SIGINT, interrupts)
    signal.signal(signal.SIGTERM, interrupts)
    guard = DiskSpaceGuard(experiment_dir, interrupts.stop_gracefully)
    # Ray writes exactly the folder tune_app claimed, through a filesystem that signs every
    # pickle it writes and checks every one it reads (tune_app.integrity).
    storage_path, ray_name, fs = ray_destination(location)
    path = posixpath.join(storage_path, ray_name)
    try:
        if launches:
            trainable = make_trainable(spec.base, data, spec.resources.cpus_per_trial,
                                       spec.resources.gpus_per_trial,
                                       results_dir=None if location.remote else str(experiment_dir),
                                       judge=judge_settings(spec), costs=spec.search.objectives[1:])
            if args.resume:
                tuner = build.restored_tuner(path, trainable, fs)
            else:
                tuner = build.search_tuner(spec, trainable, (storage_path, ray_name, fs), experiment_dir, guard,
                                           warm)
            try:
                with interrupts.fitting():
                    tuner.fit()
            except KeyboardInterrupt:
                pass  # the second Ctrl-C: stop at once; what was saved is resumable
            except OSError as err:
                from tune_app.fileio import is_disk_full

                if not is_disk_full(err):
                    raise
                guard.trip(str(err))
        from tune_app.experiment import read_ended

        location.pull()
        ended = [d for d in experiment_dir.glob("trial_*") if read_ended(d)]
        disk_full = guard.tripped or _disk_full_trials(experiment_dir)
        status = "finished" if not (interrupts.count or disk_full) and len(ended) >= launches else "interrupted"
    finally:
        _write_meta_if_possible(experiment_dir, spec, status, warm_record)
        location.push("experiment.json")
    if disk_full:
        from tune_app.fileio import DiskFull

        err = DiskFull(experiment_dir)
        err.fix = (f"free space on that disk, then resume: python -m tune_app.search --resume {location} "
                   f"(stopped: {disk_full})")
        raise err
    failed = _print_summary(experiment_dir, time.perf_counter() - started, brief=lambda: interrupts.at_once)
    location.push("trials.json", *(["optuna.db"] if (experiment_dir / "optuna.db").is_file() else []))
    if status != "finished":
        print(f"search interrupted; resume it with:\n  python -m tune_app.search --resume {location}",
              file=sys.stderr)
        return 130
    if failed:
        print(f"{len(failed)} trial(s) failed: " + ", ".join(
            f"{t.name} (see {t.path / 'error.txt'})" for t in failed), file=sys.stderr)
        print(f"the ranking leaves them out; fix the cause, then rerun them: "
              f"python -m tune_app.search --resume {location}", file=sys.stderr)
        return 1
    from tune_app.race import run_race

    raced = run_race(spec, location, experiment_dir, data, interrupts, guard, storage=(path, fs),
                     before_training=ensure_ray)
    if raced:
        return raced
    print(f"next: python -m tune_app.retrain_best --experiment {location}")
    return 0


def _start_ray(args: argparse.Namespace, spec: ExperimentSpec) -> None:
    """Start (or join) Ray and check that the cluster can run this search's trials."""
    from tune_app.tuner.cluster import cluster_resources, start_ray

    print("starting Ray" + (f" (joining {args.address})" if args.address else " on this machine")
          + "; trials show as PENDING until their workers have started", flush=True)
    context = start_ray(args)
    # With token authentication on (Ray's default for a local cluster; ray.init records the mode
    # in RAY_AUTH_MODE) the web UI asks for the token: say how to get it. Flushed, so that a
    # pipe (tee, a test) sees the address while the search runs.
    print(f"Ray dashboard: http://{context.dashboard_url}"
          + ("  (asks for a token: `ray get-auth-token` prints it)"
             if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else "")
          if context.dashboard_url else "Ray dashboard: not available (this cluster runs without it)", flush=True)
    nodes = cluster_resources()
    check_resources(spec, nodes)
    check_storage(args, spec, len(nodes))


def take_over(spec: ExperimentSpec, folders: list[str]):
    """--warm-start: the earlier trials this search's searcher takes over (tune_app.warm), with
    a note per earlier experiment on what it left out and why."""
    from tune_app.tuner.searchers import warm_start
    from tune_app.warm import load_warm_start

    warm = warm_start(spec, load_warm_start(spec, folders))
    for note in warm.notes:
        print(note)
    return warm


def warm_line(spec: ExperimentSpec, warm, launches: int) -> str:
    names = ", ".join(p.name for p in warm.sources)
    if not warm.skipped:
        return (f"warm start: the Optuna study starts with {len(warm.trials)} evaluated trial(s) from {names}; "
                f"{launches} new trial(s) to run")
    if not launches:
        return f"warm start: all {spec.trial_count()} trials of this grid already ran in {names}: nothing to train"
    return (f"warm start: {len(warm.skipped)} of {spec.trial_count()} trials of this grid already ran in {names}; "
            f"{launches} to launch")


def _write_meta_if_possible(experiment_dir: Path, spec: ExperimentSpec, status: str,
                            warm: Optional[dict[str, Any]] = None) -> None:
    """The final status, unless the disk is too full for it: experiment.json then keeps its
    previous (whole) content, and --resume still accepts it (its pid has ended)."""
    from tune_app.fileio import DiskFull

    try:
        write_meta(experiment_dir, spec, status, warm)
    except DiskFull:
        pass


def _disk_full_trials(experiment_dir: Path) -> Optional[str]:
    """Why a trial failed of a full disk, if one did: workers write the checkpoints, so a
    full disk can surface as trial errors rather than in the driver."""
    for error_file in experiment_dir.glob("trial_*/error.txt"):
        try:
            text = error_file.read_text(errors="replace")
        except OSError:
            continue
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return f"{error_file.parent.name} failed writing to a full disk"
    return None


class _Interrupts:
    """First Ctrl-C or SIGTERM: ask Tune to stop gracefully (it saves the experiment state and
    stops on SIGUSR1); a second one: stop at once. Counting them is how we know the run was
    interrupted rather than finished."""

    def __init__(self) -> None:
        self.count = 0
        self._stopping = False
        self._in_fit = False
        self.at_once = False  # a second signal came: skip whatever is left but the bookkeeping

    @contextlib.contextmanager
    def fitting(self):
        """While Tune runs trials, a second signal stops it at once with KeyboardInterrupt
        (caught around fit()). Anywhere else it only sets `at_once`: raised inside an import or
        a C extension it would come out as another error with a traceback (sklearn's import,
        for the importance summary, turned it into a ValueError)."""
        self._in_fit = True
        try:
            yield
        finally:
            self._in_fit = False

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if self.count > 1:
            # Further signals are ignored from here: one more during the unwinding below would
            # otherwise land in the middle of Ray's shutdown as a traceback.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("stopping at once", file=sys.stderr)
            self.at_once = True
            if self._in_fit:
                raise KeyboardInterrupt
            return
        print("\nstopping: saving the experiment state (press Ctrl-C again to quit at once)", file=sys.stderr)
        self.stop_gracefully()

    def stop_gracefully(self) -> None:
        """What Tune does on SIGINT: finish the step, save the experiment state, return."""
        if not self._stopping:
            self._stopping = True
            os.kill(os.getpid(), signal.SIGUSR1)


def expected_trials(spec: ExperimentSpec, warm=None, warm_record: Optional[dict[str, Any]] = None) -> int:
    """Trials the search launches: a warm-started grid leaves out the points already run (a new
    search knows them from `warm`, a resumed one from experiment.json's record)."""
    from tune_app.tuner.searchers import enumerates

    if warm is not None:
        return spec.trial_count() - len(warm.skipped)
    if warm_record and enumerates(spec):
        return spec.trial_count() - len(warm_record["trials"])
    return spec.trial_count()


def check_trial_count(spec: ExperimentSpec, limit: int, n: Optional[int] = None) -> None:
    """A typo in a grid (one more list) multiplies the trials; launching thousands must be asked for."""
    n = spec.trial_count() if n is None else n
    if n > limit:
        raise UsageError(f"the search would launch {n} trials, more than the limit of {limit}", file=spec.path,
                         key="--max-trials", fix=f"shrink the search space (see --dry-run), or pass "
                         f"--max-trials {n} to launch them all")


def _print_summary(experiment_dir: Path, seconds: float, brief: Callable[[], bool] = lambda: False) -> list:
    """Print the ranked tables; return the trials that failed (status "error").

    brief(): true once the user asked to stop at once: the importance and the Pareto front
    (seconds of imports and fitting) are left out."""
    from tune_app.experiment import format_table, load_experiment
    from tune_app.fileio import write_json_atomic
    from tune_app.importance import print_importance

    experiment = load_experiment(experiment_dir)
    rows = experiment.table()
    write_json_atomic(experiment_dir / "trials.json", rows, indent=2)
    own = [t for t in experiment.trials if not t.origin]  # a warm start's earlier trials trained elsewhere
    stopped = sum(1 for t in own if t.status(experiment.max_epochs) == "stopped early")
    epochs = sum(t.epochs_run for t in own)
    from tune_app.tuner.schedulers import summary

    asha = f"; {summary(experiment.meta['scheduler'], stopped)}"
    earlier = len(rows) - len(own)
    taken = f" ({earlier} from earlier experiments, column `from`)" if earlier else ""
    print(f"\n{len(rows)} trials{taken}, {epochs} epochs trained in {seconds:.1f} s{asha}")
    print(format_table(rows))
    if experiment.seeded:
        print(f"\nconfigurations, by the mean over {experiment.meta['search']['num_samples']} seeds "
              f"(the first are the race's finalists; without a race retrain_best takes the first):")
        print(format_table(experiment.configuration_table()))
    if not brief():
        print_importance(experiment)
    if not brief():
        from tune_app.pick import front_summary

        for line in front_summary(experiment):
            print(line)
    print(f"results: {experiment_dir}   TensorBoard: tensorboard --logdir {experiment_dir.parent}")
    return [t for t in experiment.trials if t.status(experiment.max_epochs) == "error"]


if __name__ == "__main__":
    sys.exit(main())
