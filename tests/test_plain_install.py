"""What an operator installs is what is tested: the wheel, installed with no extras into a fresh virtual
environment by the container image's own install steps (Dockerfile build stage, deploy/install.sh), serves
every provider type, streamed and not.

The rest of the suite runs from `pip install -e '.[test]'`, whose test extras (botocore, the SDKs, httpx)
drag in modules orgate may import without declaring (urllib3 and packaging for google-auth's transport were
the case that started this test). Here the gateway process runs from a venv that holds only the wheel and
its declared dependencies; the clients (official SDKs) and the fakes run in the test process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

from tests.clients.helpers import sdk_turn
from tests.fakes import anthropic_fake as af
from tests.gateway import Gateway, free_port
from tests.paths import REPO
from tests.routing.conftest import CLAUDE, SONNET_PRICE, Clouds, Spec, deployment

OPENAI_TYPES = ("openai", "openai_compatible")
# Building and installing the wheel takes minutes on a busy machine; the module-scoped install runs inside the
# first test's time limit.
pytestmark = pytest.mark.timeout(1500)
MSG = [{"role": "user", "content": "Hi"}]


def _image_build_steps() -> tuple[list[tuple[str, str]], str]:
    """The Dockerfile's build stage: what it COPYs into /src, and the install script it RUNs."""
    build = (REPO / "Dockerfile").read_text().split("\nFROM ")[1]
    copies = re.findall(r"^COPY (\S+(?: \S+)*) (\S+)$", build, re.M)
    (run,) = re.findall(r"^RUN (.+)$", build, re.M)
    return copies, run


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exactly the image's install steps (no container engine here): the build stage's COPYs into a clean
    directory, then its RUN line with /src and /opt/orgate mapped to temporary paths."""
    root = tmp_path_factory.mktemp("plain-install")
    src, venv = root / "src", root / "venv"
    copies, run = _image_build_steps()
    for sources, dest in copies:
        for name in sources.split():
            target = src / Path(dest).relative_to("/src") / (Path(name).name if dest.endswith("/") else "")
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / name, target)
    command = run.replace("/opt/orgate", str(venv)).replace("/src", str(src))
    subprocess.run(["sh", "-c", command], check=True, timeout=900)
    return venv


@pytest.fixture(scope="module")
def clouds(fake_session: af.FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    c = Clouds(fake_session, tmp_path_factory.mktemp("plain-clouds"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def gw(plain_venv: Path, clouds: Clouds, fake_session: af.FakeAnthropic) -> Iterator[Gateway]:
    gw = Gateway(fake_session.url, command=[str(plain_venv / "bin" / "orgate"), "serve"])
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # nothing of this checkout's environment leaks in
        gw.env.pop(var, None)
    models = {f"via-{p}": {"deployments": [deployment(p)], "price": SONNET_PRICE} for p in CLAUDE}
    # Bedrock's Messages API (/anthropic/v1/messages, Claude Opus 4.7 and later) on the same Bedrock provider
    models["via-bedrock-messages"] = {"deployments": [{"provider": "bedrock", "model": "us.anthropic.claude-opus-5-5"}],
                                      "price": SONNET_PRICE}
    for t in OPENAI_TYPES:
        models[f"via-{t}"] = {"deployments": [{"provider": t, "model": "llama3.1:8b"}],
                              "price": {"input": "0.5", "output": "1.5"}}
    oai = {"base_url": clouds.openai.base_url, "api_key": clouds.openai.api_key}
    providers = clouds.providers(openai={"type": "openai", **oai}, openai_compatible={"type": "openai_compatible", **oai})
    path = Path(gw.data_dir) / "orgate.yaml"
    path.write_text(yaml.safe_dump({"providers": providers, "models": models}))
    gw.env["ORGATE_CONFIG"] = str(path)
    gw.start(timeout=60)
    yield gw
    gw.stop()


def key_id(gw: Gateway, name: str) -> int:
    return gw.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]


def test_the_gateway_runs_from_the_plain_venv(gw: Gateway, plain_venv: Path) -> None:
    out = subprocess.run([str(plain_venv / "bin" / "python"), "-c", "import orgate; print(orgate.__file__)"],
                         capture_output=True, text=True, check=True, cwd=gw.data_dir).stdout
    assert out.startswith(str(plain_venv)), out
    for test_only in ("botocore", "anthropic", "openai", "pytest"):  # the test extra's, not declared
        probe = subprocess.run([str(plain_venv / "bin" / "python"), "-c", f"import {test_only}"],
                               capture_output=True, cwd=gw.data_dir)
        assert probe.returncode != 0, f"{test_only} is installed in the plain venv"


@pytest.mark.parametrize("provider", CLAUDE)
@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_claude_provider(gw: Gateway, clouds: Clouds, provider: str, stream: bool) -> None:
    key = gw.create_key(f"plain-{provider}-{stream}")
    clouds.push(provider, Spec(text=f"Hello via {provider}."))
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    text, final = sdk_turn(client, stream, model=f"via-{provider}", max_tokens=64, messages=MSG)
    assert text == f"Hello via {provider}." and final.usage.output_tokens == 7
    assert clouds.count(provider) >= 1, gw.logs()[-2000:]
    (row,) = gw.ledger(1, key_id=key_id(gw, f"plain-{provider}-{stream}"))
    assert row["provider"] == provider and row["status"] == 200 and row["cost_micros"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_bedrock_messages_api(gw: Gateway, clouds: Clouds, stream: bool) -> None:
    key = gw.create_key(f"plain-bedrock-messages-{stream}")
    clouds.push("bedrock", Spec(text="Hello via the Messages API."))
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    text, final = sdk_turn(client, stream, model="via-bedrock-messages", max_tokens=64, messages=MSG)
    assert text == "Hello via the Messages API." and final.usage.output_tokens == 7
    rec = clouds.bedrock.requests[-1]
    assert rec.raw_path == "/anthropic/v1/messages" and rec.json["model"] == "us.anthropic.claude-opus-5-5"
    (row,) = gw.ledger(1, key_id=key_id(gw, f"plain-bedrock-messages-{stream}"))
    assert row["provider"] == "bedrock" and row["status"] == 200 and row["cost_micros"] > 0


@pytest.mark.parametrize("ptype", OPENAI_TYPES)
@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_openai_provider(gw: Gateway, clouds: Clouds, ptype: str, stream: bool) -> None:
    key = gw.create_key(f"plain-{ptype}-{stream}")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    if stream:
        chunks = list(client.chat.completions.create(model=f"via-{ptype}", messages=MSG, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model=f"via-{ptype}", messages=MSG).choices[0].message.content
    assert text == "Hello from the OpenAI fake."
    assert clouds.openai.requests[-1]["body"]["model"] == "llama3.1:8b"
    (row,) = gw.ledger(1, key_id=key_id(gw, f"plain-{ptype}-{stream}"))
    assert row["provider"] == ptype and row["status"] == 200 and row["output_tokens"] == 8


def test_no_request_failed_with_an_import_error(gw: Gateway) -> None:
    log = gw.logs()
    assert "ModuleNotFoundError" not in log and "ImportError" not in log, log[-3000:]


def test_config_check_names_the_extra_a_bedrock_provider_needs(plain_venv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "orgate.yaml"
    cfg.write_text(yaml.safe_dump({"providers": {"aws": {"type": "bedrock", "region": "us-east-1"}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORGATE_", "PYTHON"))}
    r = subprocess.run([str(plain_venv / "bin" / "orgate"), "config", "check", "--config", str(cfg)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "pip install 'orgate[aws]'" in r.stderr and "providers.aws" in r.stderr, r
    cfg.write_text(yaml.safe_dump({"providers": {"aws": {"type": "bedrock", "bearer_token": "ABSK-x"}}}))
    r = subprocess.run([str(plain_venv / "bin" / "orgate"), "config", "check", "--config", str(cfg)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r


def test_the_images_healthcheck_passes_against_the_plain_install(gw: Gateway, plain_venv: Path) -> None:
    (check,) = re.findall(r'HEALTHCHECK .*?CMD (\[.*?\])\n', (REPO / "Dockerfile").read_text(), re.S)
    argv = json.loads(check)
    env = {"PATH": f"{plain_venv / 'bin'}:{os.environ['PATH']}", "ORGATE_SERVER__PORT": str(gw.port)}
    assert subprocess.run(argv, env=env, timeout=30).returncode == 0
    env["ORGATE_SERVER__PORT"] = str(free_port())  # nothing there: the check must fail
    assert subprocess.run(argv, env=env, timeout=30, capture_output=True).returncode != 0


def test_the_image_runs_unprivileged_with_a_data_volume() -> None:
    runtime = (REPO / "Dockerfile").read_text().split("\nFROM ")[-1]
    assert re.search(r"^USER orgate$", runtime, re.M) and "useradd --system" in runtime
    assert 'VOLUME ["/var/lib/orgate"]' in runtime and "ORGATE_DATA_DIR=/var/lib/orgate" in runtime
    assert "COPY --from=build /opt/orgate /opt/orgate" in runtime and "-slim" in runtime.splitlines()[0]
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert {"db", "redis", "orgate"} <= set(compose["services"])
    assert compose["services"]["orgate"]["deploy"]["replicas"] == 2
