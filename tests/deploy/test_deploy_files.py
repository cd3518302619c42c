"""The deployment files (deploy/, .dockerignore) agree with the code and with each other.

No container engine or cluster runs in CI, so these checks stand in for one: the files parse,
name only real settings, routes and paths, keep secrets out, and the build context stays small.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.app import create_app
from api.metrics import Metrics
from api.routes.labeling import WEBHOOK_HEADER
from monitor.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"
OPERATIONS = REPO / "docs" / "operations.md"
PROBE_IN_IMAGE = "/usr/local/bin/loopwatch-probe"

UID = 10001
MAX_CONTEXT_BYTES = 20 * 1024 * 1024
# Environment variables loopwatch's container may get that are not LOOPWATCH_<FIELD> settings.
NON_SETTING_ENV = {"SLACK_BOT_TOKEN", "LOOPWATCH_CONFIG", "LOOPWATCH_PROBE_KEY", "HOME", "TZ"}
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY", re.IGNORECASE)
SECRET_VALUE = re.compile(
    r"xox[abpr]-[0-9A-Za-z]|lw_[0-9A-Za-z_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY|\b[0-9a-f]{32,}\b|\bsk-[0-9A-Za-z]{20,}"
)
EXPECTED_K8S_KINDS = {"Deployment", "Service", "PersistentVolumeClaim", "Secret", "ConfigMap"}


# --- helpers ----------------------------------------------------------------------------------


def setting_env_names() -> set[str]:
    """LOOPWATCH_<FIELD> for every settings field, plus upper-case aliases (SLACK_BOT_TOKEN)."""
    names = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"LOOPWATCH_{field_name.upper()}")
        alias = field.validation_alias
        for choice in getattr(alias, "choices", []):
            if isinstance(choice, str) and choice.isupper():
                names.add(choice)
    return names


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@cache
def k8s_objects() -> dict[str, dict[str, Any]]:
    """kind -> object, from every manifest kustomization.yaml lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    objects: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in load_yaml_docs(K8S / name):
            assert doc["kind"] not in objects, f"two {doc['kind']} objects"
            objects[doc["kind"]] = doc
    return objects


def loopwatch_container() -> dict[str, Any]:
    (container,) = k8s_objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def resolve_args(text: str, stage: list[tuple[str, str]]) -> str:
    """Substitute ${NAME} from the stage's ARG defaults."""
    defaults = {}
    for keyword, rest in stage:
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name.strip()] = value.strip()
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), text)


def exec_form(rest: str) -> list[str]:
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def copy_sources() -> list[str]:
    """Context paths the Dockerfile COPY/ADDs (copies from another stage excluded)."""
    sources = []
    for keyword, rest in dockerfile_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = exec_form(rest)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(paths[:-1])
    return sources


class DockerIgnore:
    """.dockerignore matching as Docker does it (moby/patternmatcher): Go-style globs relative to
    the context root, ``**`` across directories, ``!`` re-includes, the last matching rule wins,
    and a pattern that matches a parent directory matches everything below it."""

    def __init__(self, text: str) -> None:
        self.patterns: list[tuple[re.Pattern[str], bool, str]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            pattern = os.path.normpath(line[1:].strip() if exclusion else line).lstrip("/")
            self.patterns.append((re.compile(self._regex(pattern)), exclusion, pattern))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]", end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return f"^{out}$"

    def excluded(self, path: str) -> bool:
        parts = path.split("/")
        parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for regex, exclusion, _ in self.patterns:
            if exclusion != matched:
                continue
            if regex.match(path) or any(regex.match(parent) for parent in parents):
                matched = not exclusion
        return matched

    def may_reinclude_under(self, directory: str) -> bool:
        return any(exclusion and raw.startswith(directory + "/") for _, exclusion, raw in self.patterns)


@cache
def build_context() -> dict[str, int]:
    """Relative path -> size of every file `docker build -f deploy/Dockerfile .` would send."""
    ignore = DockerIgnore(DOCKERIGNORE.read_text(encoding="utf-8"))
    files: dict[str, int] = {}
    for root, dirs, names in os.walk(REPO):
        rel_root = Path(root).relative_to(REPO).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not (ignore.excluded(prefix + d) and not ignore.may_reinclude_under(prefix + d))]
        for name in names:
            rel = prefix + name
            if not ignore.excluded(rel) and not Path(root, name).is_symlink():
                files[rel] = Path(root, name).stat().st_size
    return files


@cache
def app_paths() -> set[str]:
    """Every path the app serves (routers included lazily by FastAPI are walked too)."""

    def walk(routes: list[Any], prefix: str) -> set[str]:
        paths = set()
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                paths |= walk(included.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif hasattr(route, "path"):
                paths.add(prefix + route.path)
        return paths

    app = create_app(Settings(data_dir=Path("/nonexistent-loopwatch-data")), background=False)
    return walk(app.routes, "")


# --- the image --------------------------------------------------------------------------------


def test_dockerfile_copies_only_existing_paths_inside_the_context() -> None:
    """Every path the Dockerfile COPYs exists in the repository and is not excluded by .dockerignore."""
    sources = copy_sources()
    assert sources, "no COPY found"
    context = build_context()
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: not in the repository"
        rel = source.rstrip("/")
        if path.is_dir():
            assert any(f.startswith(rel + "/") for f in context), f"COPY {source}: excluded by .dockerignore"
        else:
            assert rel in context, f"COPY {source}: excluded by .dockerignore"
    # What pyproject.toml needs to build the wheel, and every package it ships (a package left
    # out builds a wheel without it: the image starts, then fails on its first import).
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") + "/" for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for needed in ("pyproject.toml", "requirements.lock", "README.md", *packages):
        assert needed in sources, f"the image build needs {needed}"


def test_dockerfile_is_multi_stage_slim_python_311() -> None:
    """Multi-stage: a build stage installs with `pip install -c requirements.lock .`; every stage
    uses a slim Python 3.11 base; the runtime copies the venv from the build stage."""
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    for stage in stages:
        base = resolve_args(stage.split()[0], instructions)
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install -c requirements.lock ." in runs
    assert any(keyword == "COPY" and "--from=" in rest for keyword, rest in final_stage())


def test_dockerfile_runtime_user_healthcheck_port_and_entrypoint() -> None:
    """The runtime runs as a fixed non-root uid (the one Kubernetes' runAsUser names), has a
    HEALTHCHECK through the probe script, EXPOSEs 8080, keeps /data as LOOPWATCH_DATA_DIR and a
    VOLUME, and serves on 0.0.0.0:8080 by default."""
    stage = final_stage()
    users = [resolve_args(rest, stage) for keyword, rest in stage if keyword == "USER"]
    assert users, "no USER in the runtime stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == UID
    assert k8s_objects()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == UID

    healthchecks = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert PROBE_IN_IMAGE in healthchecks[0] and '"live"' in healthchecks[0]
    assert any(keyword == "COPY" and rest.split()[-1] == PROBE_IN_IMAGE for keyword, rest in stage)

    assert [rest for keyword, rest in stage if keyword == "EXPOSE"] == ["8080"]
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "LOOPWATCH_DATA_DIR=/data"):
        assert setting in env
    assert any(keyword == "VOLUME" and "/data" in rest for keyword, rest in stage)

    entrypoint = [exec_form(rest) for keyword, rest in stage if keyword == "ENTRYPOINT"][-1]
    cmd = [exec_form(rest) for keyword, rest in stage if keyword == "CMD"][-1]
    assert entrypoint + cmd == ["loopwatch", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert loopwatch_container()["args"] == cmd


def test_dockerfile_bakes_in_no_secrets() -> None:
    """No ENV or ARG names a token, secret or password, and nothing in the file looks like one."""
    for keyword, rest in dockerfile_instructions():
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", rest) or [rest.split("=")[0]]
            for name in names:
                assert not SECRET_NAME.search(name), f"{keyword} {name} would bake a secret into the image"
    assert not SECRET_VALUE.search(DOCKERFILE.read_text(encoding="utf-8"))


def test_dockerignore_keeps_environments_data_and_secrets_out() -> None:
    """.dockerignore excludes virtual environments, data directories, caches, VCS and .env files."""
    ignore = DockerIgnore(DOCKERIGNORE.read_text(encoding="utf-8"))
    for path in (
        ".venv/bin/python",
        ".venv-labelstudio/bin/label-studio",
        "loopwatch-data/loopwatch.duckdb",
        ".cache/label-studio/label_studio.sqlite3",
        "test-artifacts/report.html",
        ".git/HEAD",
        "bench/results/ingest.json",
        "deploy/.env",
        "deploy/k8s/loopwatch-secrets.env",
        "monitor/__pycache__/store.cpython-311.pyc",
        "x.duckdb",
    ):
        assert ignore.excluded(path), f"{path} would be sent to the Docker build"
    for path in ("monitor/store.py", "api/app.py", "deploy/probe.py", "pyproject.toml"):
        assert not ignore.excluded(path), f"{path} is needed by the build"


def test_build_context_stays_small() -> None:
    """The files the Docker build would send (.dockerignore applied) stay under 20 MB, hold no
    virtual environment, data directory, VCS data or .env file, and include the packages."""
    context = build_context()
    total = sum(context.values())
    assert total < MAX_CONTEXT_BYTES, f"build context is {total / 1e6:.1f} MB"
    forbidden = re.compile(r"^(\.venv|\.git/|loopwatch-data/|\.cache/)|(^|/)\.env$|\.duckdb")
    leaked = sorted(path for path in context if forbidden.search(path))
    assert not leaked, leaked[:10]
    assert "monitor/settings.py" in context and "deploy/probe.py" in context


def test_package_data_reaches_the_image() -> None:
    """The image installs a wheel, not the source tree: every non-Python file inside a package is
    matched by pyproject's package-data patterns, or the image would silently lack it."""
    import fnmatch
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = pyproject["tool"]["setuptools"]["package-data"]
    patterns = package_data["*"]  # file names, in every package
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    missing = []
    for package in packages:
        own = package_data.get(package, [])  # paths relative to the package (globs, ** included)
        for path in (REPO / package).rglob("*"):
            is_data = path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
            relative = path.relative_to(REPO / package).as_posix()
            covered = any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns) or any(
                fnmatch.fnmatch(relative, pattern) for pattern in own
            )
            if is_data and not covered:
                missing.append(path.relative_to(REPO).as_posix())
    assert not missing, f"not in the wheel (add to [tool.setuptools.package-data]): {missing}"


# --- compose ----------------------------------------------------------------------------------


def test_compose_services_volumes_and_health() -> None:
    """Compose runs loopwatch and Label Studio with named persistent volumes, healthchecks and a
    restart policy; loopwatch waits for a healthy Label Studio and is built from deploy/Dockerfile."""
    spec = compose()
    services = spec["services"]
    assert set(services) == {"loopwatch", "label-studio"}
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always"), name
        assert service["healthcheck"]["test"][0] == "CMD", name
        for mount in service["volumes"]:
            volume = mount.partition(":")[0]
            assert volume in spec["volumes"], f"{name}: {volume} is not a named volume"
    loopwatch = services["loopwatch"]
    assert loopwatch["depends_on"] == {"label-studio": {"condition": "service_healthy"}}
    assert (COMPOSE.parent / loopwatch["build"]["context"]).resolve() == REPO
    assert (REPO / loopwatch["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert "loopwatch-data:/data" in loopwatch["volumes"]
    assert loopwatch["healthcheck"]["test"][1:] == ["python", PROBE_IN_IMAGE, "ready"]
    assert all(port.endswith(":8080") for port in loopwatch["ports"])


def test_compose_label_studio_matches_the_launcher() -> None:
    """Label Studio runs the version the launcher pins, creates its admin and legacy API token on
    first start, makes no calls home, and may call loopwatch's webhook on the compose network."""
    launcher = (DEPLOY / "label-studio" / "launch.py").read_text(encoding="utf-8")
    version = re.search(r'LABEL_STUDIO_VERSION = "([^"]+)"', launcher).group(1)
    label_studio = compose()["services"]["label-studio"]
    assert label_studio["image"] == f"heartexlabs/label-studio:{version}"
    assert "--enable-legacy-api-token" in label_studio["command"]
    env = label_studio["environment"]
    assert {"LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN"} <= set(env)
    assert env["LATEST_VERSION_CHECK"] == "false"
    assert env["SSRF_PROTECTION_ENABLED"] == "false"
    assert "/health" in " ".join(label_studio["healthcheck"]["test"])
    loopwatch_env = compose()["services"]["loopwatch"]["environment"]
    assert loopwatch_env["LOOPWATCH_LABEL_STUDIO_URL"] == "http://label-studio:8080"
    # loopwatch and Label Studio get the same token from deploy/.env.
    assert re.match(r"\$\{LABEL_STUDIO_TOKEN\b", loopwatch_env["LOOPWATCH_LABEL_STUDIO_TOKEN"])
    assert re.match(r"\$\{LABEL_STUDIO_TOKEN\b", env["LABEL_STUDIO_USER_TOKEN"])


def test_compose_secrets_come_from_the_env_file() -> None:
    """Secret values in compose are `${VAR}` references without defaults; every variable compose
    reads is documented in deploy/.env.example, whose secret entries are empty placeholders."""
    text = COMPOSE.read_text(encoding="utf-8")
    assert not SECRET_VALUE.search(text)
    for service in compose()["services"].values():
        for name, value in service.get("environment", {}).items():
            if SECRET_NAME.search(name):
                assert re.fullmatch(r"\$\{\w+(:-|:\?[^}]*)?\}", str(value)), f"{name}: {value!r} is not a reference"
    example = env_file(ENV_EXAMPLE)
    missing = set(re.findall(r"\$\{(\w+)", text)) - set(example)
    assert not missing, f"not in deploy/.env.example: {sorted(missing)}"
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == "", f"deploy/.env.example {name} must be an empty placeholder"
    assert not SECRET_VALUE.search(ENV_EXAMPLE.read_text(encoding="utf-8"))


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


# --- Kubernetes -------------------------------------------------------------------------------


def test_k8s_manifests_parse_with_expected_kinds() -> None:
    """Every manifest in deploy/k8s parses, kustomization.yaml lists them all, the kinds are the
    expected set, and no object pins a namespace (namespace-agnostic)."""
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization" and "namespace" not in kustomization
    assert sorted(kustomization["resources"]) == files
    objects = k8s_objects()
    assert set(objects) == EXPECTED_K8S_KINDS
    for kind, obj in objects.items():
        assert obj["apiVersion"] and obj["metadata"]["name"], kind
        assert "namespace" not in obj["metadata"], f"{kind} pins a namespace"
    assert {image["name"] for image in kustomization["images"]} == {loopwatch_container()["image"].split(":")[0]}


def test_k8s_deployment_is_one_replica_recreate() -> None:
    """The embedded DuckDB store has one writer: replicas 1 and the Recreate strategy (a rolling
    update would start a second pod on the same data), and the manifest says why."""
    deployment = k8s_objects()["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    text = (K8S / "deployment.yaml").read_text(encoding="utf-8")
    assert "DuckDB" in text and "writ" in text


def test_k8s_objects_reference_each_other() -> None:
    """The Deployment mounts the PVC, reads the ConfigMap and Secret, and the Service selects the
    pods and targets the container's named port."""
    objects = k8s_objects()
    pod = objects["Deployment"]["spec"]["template"]
    container = loopwatch_container()
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {objects["PersistentVolumeClaim"]["metadata"]["name"]}
    refs = {next(iter(source.values()))["name"] for source in container["envFrom"]}
    assert refs == {objects["ConfigMap"]["metadata"]["name"], objects["Secret"]["metadata"]["name"]}
    service = objects["Service"]["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert objects["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["ports"]
    (container_port,) = container["ports"]
    assert port["targetPort"] == container_port["name"] and container_port["containerPort"] == 8080


def test_k8s_probes_match_the_app_routes() -> None:
    """Startup and liveness probe /healthz (an open route of the app); readiness runs the probe
    script the image installs, which checks /readyz (also a route)."""
    paths = app_paths()
    assert {"/healthz", "/readyz", "/metrics"} <= paths
    container = loopwatch_container()
    for probe in ("startupProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz" and http["port"] == container["ports"][0]["name"]
    command = container["readinessProbe"]["exec"]["command"]
    assert command[:3] == ["python", PROBE_IN_IMAGE, "ready"]
    assert container["readinessProbe"]["timeoutSeconds"] > float(command[command.index("--timeout") + 1])


def test_k8s_security_context() -> None:
    """Non-root, read-only root file system with an emptyDir on /tmp, no privilege escalation, all
    capabilities dropped, fsGroup so the volume is writable, and resource requests and limits."""
    pod = k8s_objects()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == UID
    container = loopwatch_container()
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "persistentVolumeClaim" in volumes[mounts["/data"]]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_k8s_secret_holds_only_placeholders() -> None:
    """The Secret is a template: every value is an empty placeholder, no base64 `data`, and no
    manifest contains anything that looks like a real token or key."""
    secret = k8s_objects()["Secret"]
    assert "data" not in secret
    assert secret["stringData"], "the template should name the secret settings"
    for name, value in secret["stringData"].items():
        assert value == "", f"{name} must be an empty placeholder in the template"
    for path in K8S.glob("*.yaml"):
        assert not SECRET_VALUE.search(path.read_text(encoding="utf-8")), path.name
    config = k8s_objects()["ConfigMap"]["data"]
    assert not [name for name in config if SECRET_NAME.search(name)], "secrets belong in the Secret"


# --- settings ---------------------------------------------------------------------------------


def test_every_env_var_for_loopwatch_is_a_setting() -> None:
    """Every variable compose, the Kubernetes manifests or deploy/.env.example give loopwatch is a
    real setting (LOOPWATCH_<FIELD> of monitor.settings.Settings, or the SLACK_BOT_TOKEN alias)."""
    known = setting_env_names() | NON_SETTING_ENV
    assert {"LOOPWATCH_DATA_DIR", "LOOPWATCH_SLACK_TOKEN", "SLACK_BOT_TOKEN"} <= known
    given: dict[str, set[str]] = {
        "compose.yaml": set(compose()["services"]["loopwatch"]["environment"]),
        "k8s ConfigMap": set(k8s_objects()["ConfigMap"]["data"]),
        "k8s Secret": set(k8s_objects()["Secret"]["stringData"]),
        "k8s Deployment env": {e["name"] for e in loopwatch_container().get("env", [])},
        ".env.example": {n for n in env_file(ENV_EXAMPLE) if n.startswith("LOOPWATCH_")},
    }
    for source, names in given.items():
        unknown = names - known
        assert not unknown, f"{source} sets {sorted(unknown)}, which are not settings"
    assert not SECRET_NAME.search(" ".join(given["k8s ConfigMap"]))


# --- the probe script ---------------------------------------------------------------------------


def run_probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "LOOPWATCH_PROBE_KEY"}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "probe.py"), *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_probe_script_against_a_real_server(server_factory: Any) -> None:
    """`loopwatch-probe live` passes on /healthz; `ready` passes on /readyz using the server's
    per-run token from the data directory (no key configured) or LOOPWATCH_PROBE_KEY; a wrong key
    or a stopped server fails with exit code 1."""
    server, key = server_factory()
    env = {"LOOPWATCH_DATA_DIR": str(server.data_dir)}
    assert run_probe("ready", env=env).returncode == 1  # not started: no server.json yet
    server.start()
    try:
        assert run_probe("live", "--url", server.url).returncode == 0
        ready = run_probe("ready", env=env)
        assert ready.returncode == 0, ready.stderr
        assert run_probe("ready", env={**env, "LOOPWATCH_PROBE_KEY": key}).returncode == 0
        wrong = run_probe("ready", env={**env, "LOOPWATCH_PROBE_KEY": "lw_not-a-key"})
        assert wrong.returncode == 1 and "401" in wrong.stderr
    finally:
        server.stop()
    stopped = run_probe("live", "--url", server.url, "--timeout", "2")
    assert stopped.returncode == 1 and "loopwatch-probe live" in stopped.stderr


# --- the operations guide ------------------------------------------------------------------------


def test_operations_guide_matches_the_code() -> None:
    """docs/operations.md names every Prometheus metric the service exports, and the Slack and
    Label Studio endpoints and webhook header it tells operators to configure exist."""
    text = OPERATIONS.read_text(encoding="utf-8")
    for family in Metrics().registry.collect():
        assert f"`{family.name}" in text, f"docs/operations.md does not list {family.name}"
    for path in ("/slack/actions", "/v1/labeling/webhook", "/healthz", "/readyz", "/metrics"):
        assert path in app_paths() and path in text, path
    assert WEBHOOK_HEADER.lower() in text.lower()
    assert "replicas: 1" in text or "one replica" in text.lower()
