"""Static checks of docker/: Dockerfile, docker-compose.yml and the KubeRay RayJob.

No Docker engine or Kubernetes cluster needed: the files are parsed and cross-checked
against the repository (paths that are copied or referenced must exist, versions must agree).
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yml"
RAYJOB = DOCKER / "rayjob.yaml"


# ---------------------------------------------------------------- Dockerfile parsing

def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def copy_sources(args: str) -> list[str] | None:
    """Source paths of a COPY/ADD (None for a copy from another stage or image)."""
    if args.startswith("["):
        parts = json.loads(args)
    else:
        parts = args.split()
    flags = [p for p in parts if p.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    operands = [p for p in parts if not p.startswith("--")]
    assert len(operands) >= 2, f"COPY/ADD needs a source and a destination: {args!r}"
    return operands[:-1]


def workdir() -> str:
    dirs = [args for keyword, args in dockerfile_instructions() if keyword == "WORKDIR"]
    assert dirs, "the Dockerfile sets no WORKDIR"
    return dirs[-1]


def repo_path_of_image_path(path: str) -> Path:
    """Map a path inside the image (absolute under WORKDIR, or relative to it) to the repo."""
    root = workdir().rstrip("/") + "/"
    if path.startswith(root):
        path = path[len(root):]
    assert not path.startswith("/"), f"{path} is outside the image's WORKDIR {root}"
    return REPO / path


def base_image() -> str:
    """The first FROM's image, with ${ARG} defaults substituted."""
    defaults: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name.strip()] = value.strip().strip('"')
        if keyword == "FROM":
            image = args.split()[0]
            return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)
    raise AssertionError("the Dockerfile has no FROM")


def run_commands() -> str:
    return "\n".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")


def setup_cfg_requirements() -> dict[str, str]:
    """install_requires of setup.cfg: normalised name -> full requirement line."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    raw = parser.get("options", "install_requires", fallback="")
    out: dict[str, str] = {}
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.match(r"[A-Za-z0-9_.-]+", line).group(0)
            out[re.sub(r"[-_.]+", "-", name).lower()] = line
    return out


# ------------------------------------------------------------------------ Dockerfile

def test_dockerfile_copies_only_existing_repo_paths():
    copies = [(k, a) for k, a in dockerfile_instructions() if k in ("COPY", "ADD")]
    assert copies, "the Dockerfile copies nothing from the repository"
    missing = []
    for keyword, args in copies:
        for source in copy_sources(args) or []:
            if keyword == "ADD" and re.match(r"^(https?|git)://|^git@", source):
                continue
            pattern = source.rstrip("/") or "."
            if any(ch in pattern for ch in "*?["):
                if not list(REPO.glob(pattern)):
                    missing.append(source)
            elif not (REPO / pattern).exists():
                missing.append(source)
    assert not missing, f"the Dockerfile copies paths missing from the repository: {missing}"


def test_dockerfile_copies_the_package_metadata_and_code():
    sources = {s.rstrip("/") for k, a in dockerfile_instructions() if k == "COPY"
               for s in copy_sources(a) or []}
    for needed in ("setup.cfg", "pyproject.toml", "README.md", "tune_app", "search_spaces"):
        assert needed in sources, f"the Dockerfile does not COPY {needed}"


def test_dockerfile_runs_as_non_root_in_app_with_results_volume():
    users = [a for k, a in dockerfile_instructions() if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert workdir() == "/app"
    volumes = " ".join(a for k, a in dockerfile_instructions() if k == "VOLUME")
    assert "/results" in volumes


def test_dockerfile_base_is_a_python311_gpu_image():
    image = base_image()
    assert "gpu" in image or "cuda" in image, image
    if image.startswith("rayproject/ray:"):
        assert "-py311" in image, f"{image}: Python must be 3.11, like the project"


def test_dockerfile_installs_with_setup_cfg_pins():
    if not (REPO / "setup.cfg").exists():
        pytest.skip("setup.cfg not in the repository yet")
    runs = run_commands()
    installs_project = re.search(r"pip install\b[^\n]*\s(\.|/app/?)(\s|$)", runs)
    if installs_project:
        return  # `pip install .` reads install_requires from setup.cfg itself
    missing = [name for name in setup_cfg_requirements() if name not in runs.lower()]
    assert not missing, f"the Dockerfile neither installs . nor these setup.cfg requirements: {missing}"


def test_ray_version_agrees_across_image_manifest_and_setup_cfg():
    image = base_image()
    match = re.match(r"rayproject/ray:(\d+\.\d+\.\d+)", image)
    if not match:
        pytest.skip(f"base image {image} is not a rayproject/ray image")
    version = match.group(1)
    assert str(rayjob()["spec"]["rayClusterSpec"]["rayVersion"]) == version
    if (REPO / "setup.cfg").exists():
        ray_req = setup_cfg_requirements().get("ray", "")
        pinned = re.search(r"==\s*([\d.]+)", ray_req)
        if pinned:
            assert pinned.group(1) == version, f"setup.cfg pins {ray_req}, the image has Ray {version}"


# --------------------------------------------------------------------------- compose

def compose() -> dict:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and "services" in data
    return data


def command_text(service: dict) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else command


def service_by_command(marker: str) -> tuple[str, dict]:
    found = [(name, svc) for name, svc in compose()["services"].items() if marker in command_text(svc)]
    assert len(found) == 1, f"expected one service whose command has {marker!r}, got {[n for n, _ in found]}"
    return found[0]


def head_service() -> tuple[str, dict]:
    return service_by_command("--head")


def worker_service() -> tuple[str, dict]:
    return service_by_command("--address=")


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (short and long syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[target] = source
    return mounts


def published_ports(service: dict) -> list[tuple[str, str, str]]:
    """(host_ip, published, target) of each published port."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            out.append(("", parts[0], parts[1]))
        else:
            out.append(("", "", parts[0]))
    return out


def test_compose_has_head_and_worker_services():
    head_name, head = head_service()
    worker_name, worker = worker_service()
    assert head_name == "ray-head" and worker_name == "ray-worker"
    assert "--dashboard-host=0.0.0.0" in command_text(head)  # reachable through the port mapping
    assert f"{head_name}:6379" in command_text(worker)
    assert worker["depends_on"] and head_name in worker["depends_on"]


def test_compose_shares_results_volume_between_head_and_worker():
    data = compose()
    assert "results" in (data.get("volumes") or {}), "no top-level named volume `results`"
    for _, service in (head_service(), worker_service()):
        assert volume_mounts(service).get("/results") == "results"


def test_compose_cache_volume_matches_tune_app_cache():
    assert "cache" in (compose().get("volumes") or {})
    for _, service in (head_service(), worker_service()):
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        cache = env.get("TUNE_APP_CACHE")
        assert cache, "TUNE_APP_CACHE not set"
        assert volume_mounts(service).get(cache) == "cache"


def test_compose_publishes_ports_on_loopback_only():
    _, head = head_service()
    assert any(target == "8265" for _, _, target in published_ports(head)), "dashboard not published"
    for name, service in compose()["services"].items():
        for host_ip, published, target in published_ports(service):
            assert host_ip == "127.0.0.1", f"{name} publishes {target} on {host_ip or 'all interfaces'}"


def test_compose_worker_reserves_nvidia_gpus_and_can_scale():
    _, worker = worker_service()
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert "container_name" not in worker, "a fixed container_name breaks --scale"
    assert not published_ports(worker), "fixed host ports break --scale"


def test_compose_builds_this_dockerfile_from_repo_root():
    for _, service in (head_service(), worker_service()):
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    bind_sources = [s for _, svc in (head_service(), worker_service())
                    for s in volume_mounts(svc).values() if s.startswith((".", "/"))]
    for source in bind_sources:
        assert (COMPOSE.parent / source).resolve().exists(), f"bind mount source {source} is missing"


# ---------------------------------------------------------------------------- RayJob

def rayjob_documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(RAYJOB.read_text()) if d]


def rayjob() -> dict:
    jobs = [d for d in rayjob_documents() if d.get("kind") == "RayJob"]
    assert len(jobs) == 1, "rayjob.yaml must hold exactly one RayJob"
    return jobs[0]


def pod_specs() -> list[dict]:
    cluster = rayjob()["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"]["spec"]] + \
        [group["template"]["spec"] for group in cluster["workerGroupSpecs"]]


def entrypoint_args() -> list[str]:
    return shlex.split(rayjob()["spec"]["entrypoint"])


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def test_rayjob_kind_and_shutdown():
    job = rayjob()
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["shutdownAfterJobFinishes"] is True


def test_rayjob_entrypoint_runs_search_on_the_cluster():
    args = entrypoint_args()
    assert args[:3] == ["python", "-m", "tune_app.search"], args
    assert option(args, "--address"), "the entrypoint must join the cluster with --address"
    assert option(args, "--storage"), "more than one node needs --storage"
    space = option(args, "--space")
    assert space, "no --space"
    assert repo_path_of_image_path(space).is_file(), f"--space {space} is not a file in the repository"


def test_rayjob_entrypoint_has_no_shell_operators():
    # KubeRay pastes the entrypoint unquoted into the submitter's shell command line.
    entrypoint = rayjob()["spec"]["entrypoint"]
    assert not re.search(r"[;&|<>`$]", entrypoint), entrypoint


def test_rayjob_has_gpu_workers_and_one_image():
    cluster = rayjob()["spec"]["rayClusterSpec"]
    assert cluster["workerGroupSpecs"], "no worker group"
    gpus = [c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
            for group in cluster["workerGroupSpecs"] for c in group["template"]["spec"]["containers"]]
    assert any(g and int(g) >= 1 for g in gpus), "no worker requests nvidia.com/gpu"
    images = {c["image"] for spec in pod_specs() for c in spec["containers"]}
    assert len(images) == 1, f"head and workers must run the same image: {images}"


def test_rayjob_results_claim_is_rwx_and_mounted_everywhere():
    claims = {d["metadata"]["name"]: d for d in rayjob_documents() if d.get("kind") == "PersistentVolumeClaim"}
    storage = option(entrypoint_args(), "--storage")
    if "://" in storage:
        pytest.skip(f"results go to {storage}, not to a claim")
    for spec in pod_specs():
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert storage in mounts, f"--storage {storage} is not mounted in every pod"
        claim = volumes[mounts[storage]]["persistentVolumeClaim"]["claimName"]
        if claim in claims:
            assert "ReadWriteMany" in claims[claim]["spec"]["accessModes"]


def test_rayjob_dashboard_not_exposed():
    head = rayjob()["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head.get("enableIngress", False)
    for spec in pod_specs():
        assert not spec.get("hostNetwork", False)
        for container in spec["containers"]:
            assert not any("hostPort" in p for p in container.get("ports", []))


def test_dockerignore_keeps_copied_paths():
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore")
    if not ignore.exists():
        pytest.skip("no Dockerfile.dockerignore")
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith("!")]
    for keyword, args in dockerfile_instructions():
        if keyword in ("COPY", "ADD"):
            for source in copy_sources(args) or []:
                source = source.rstrip("/")
                hit = [p for p in patterns if fnmatch.fnmatch(source, p)]
                assert not hit, f"{source} is excluded by {hit} in {ignore.name}"
