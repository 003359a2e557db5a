"""Provision the running test world (idempotent) and write .run/env.

Called by `up` after moto, OpenBao and the front answer. One line per step; no secret is
printed. Keys minted here live only in .run/ (mode 0600), which git ignores.

moto runs in auth mode: `up` starts it with unauthenticated actions allowed, this script
creates the IAM fixtures through moto's /moto-api/reset-auth switch, then switches auth on, so
from then on every AWS request must be signed by a real moto key and IAM policies apply.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
RUN = HERE / ".run"
ACCOUNT = "123456789012"
# Ports come from lib.sh (WORLD_PORT_BASE); the defaults are the documented ones.
FRONT = f"http://127.0.0.1:{os.environ.get('WORLD_FRONT_PORT', '18200')}"
OPENBAO = f"http://127.0.0.1:{os.environ.get('WORLD_OPENBAO_PORT', '18201')}"
MOTO = f"http://127.0.0.1:{os.environ.get('WORLD_MOTO_PORT', '18203')}"
FRONT_TLS = f"https://127.0.0.1:{os.environ.get('WORLD_FRONT_TLS_PORT', '18204')}"
OPENBAO_TLS = f"https://127.0.0.1:{os.environ.get('WORLD_OPENBAO_TLS_PORT', '18205')}"
# An OpenBao namespace with its own policy, AppRole and AWS-engine roles (X-Vault-Namespace).
NAMESPACE = "team-a"
# Service account the world's Kubernetes "cluster" vouches for (front's TokenReview endpoint).
K8S_NAMESPACE, K8S_ACCOUNT = "ci", "jenkins"
ROOT_TOKEN = "world-root"
REGION = "us-east-1"
VAULT_USER = "vault-aws-engine"
VAULT_USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/{VAULT_USER}"
# docs/vault-setup.md, section 1: assume the Jenkins roles, and rotate its own key
# (`vault write -f aws/config/rotate-root`: GetUser, CreateAccessKey, DeleteAccessKey).
VAULT_USER_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/jenkins-*"},
    {"Effect": "Allow", "Action": ["iam:GetUser", "iam:CreateAccessKey", "iam:DeleteAccessKey"],
     "Resource": VAULT_USER_ARN}]}
# Tests' IAM administrator (IAM only, no STS): creates the users and roles a test needs, e.g.
# an engine identity to rotate, or the IAM setup docs/vault-setup.md describes.
IAM_ADMIN = "world-iam-admin"
# Bumped when the fixtures change, so that `up` re-provisions a world made by an older one.
FIXTURES_VERSION = 2

# IAM role -> its inline policy. The Vault roles below map onto these.
IAM_ROLES = {
    "jenkins-ecr-push-role": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
    "jenkins-deploy-role": [
        {"Effect": "Allow", "Action": ["s3:*", "ecr:*", "cloudformation:*"], "Resource": "*"}],
    "jenkins-deploy-readonly-role": [
        {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "ecr:Describe*", "ecr:List*"],
         "Resource": "*"}],
    "jenkins-admin-role": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
VAULT_ROLES = {
    "ecr-push": ["jenkins-ecr-push-role"],
    # two ARNs, so callers must say which (role_arn is required)
    "deploy": ["jenkins-deploy-role", "jenkins-deploy-readonly-role"],
    # exists in the engine, but the jenkins policy denies it
    "forbidden": ["jenkins-admin-role"],
}
# Exactly the parameters withAwsRole sends to aws/sts/<role> (OpenBao's ACL checks them, as
# Vault's does: the front replays each request on a KV shadow, see front.py check_acl).
STS_PARAMETERS = 'allowed_parameters = { "ttl" = [] "role_session_name" = [] "role_arn" = [] }'
JENKINS_POLICY = f"""
# withAwsRole's pipelines may mint credentials for any role but "forbidden".
path "aws/sts/*"           {{ capabilities = ["read", "update"] {STS_PARAMETERS} }}
path "aws/creds/*"         {{ capabilities = ["read", "update"] {STS_PARAMETERS} }}
path "aws/sts/forbidden"   {{ capabilities = ["deny"] }}
path "aws/creds/forbidden" {{ capabilities = ["deny"] }}
# refresh: true (docs/refresh.md): a child token per block, holding one withawsrole-sts-* policy.
path "auth/token/create"             {{ capabilities = ["update"] }}
path "auth/token/create/withawsrole" {{ capabilities = ["update"] }}
"""
# refresh: true: one policy per purpose allowing only its STS path; Jenkins' logins hold them
# (auth/token/create gives a child only policies its parent has), and the token role
# `withawsrole` (orphan children, allowed_policies_glob withawsrole-sts-*) needs none of them.
REFRESH_PURPOSES = ["ecr-push", "deploy"]
JENKINS_TOKEN_POLICIES = ["jenkins"] + [f"withawsrole-sts-{p}" for p in REFRESH_PURPOSES]
TOKEN_ROLE = "withawsrole"


def step(message: str) -> None:
    print(f"up: {message}", flush=True)


def fail(message: str) -> None:
    print(f"up: FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def read_state(name: str) -> dict:
    path = RUN / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_private(name: str, text: str) -> None:
    path = RUN / name
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# moto


def moto_auth(count: str) -> None:
    response = requests.post(f"{MOTO}/moto-api/reset-auth", data=count, timeout=10)
    response.raise_for_status()


def moto_provisioned(keys: dict) -> bool:
    """True when the stored keys are the current fixtures' and work: the vault user can assume
    every fixture role, the IAM admin can read IAM."""
    admin = read_state("moto-iam-admin.json")
    if not keys.get("access_key") or keys.get("fixtures") != FIXTURES_VERSION or not admin.get("access_key"):
        return False
    try:
        boto3.client("iam", endpoint_url=MOTO, region_name=REGION, aws_access_key_id=admin["access_key"],
                     aws_secret_access_key=admin["secret_key"]).get_user(UserName=IAM_ADMIN)
    except ClientError:
        return False
    sts = boto3.client("sts", endpoint_url=MOTO, region_name=REGION,
                       aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"])
    try:
        for name in IAM_ROLES:
            sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
                            RoleSessionName="world-up-check", DurationSeconds=900)
    except ClientError:
        return False
    return True


def provision_moto() -> dict:
    keys = read_state("moto-vault-user.json")
    # A live world keeps auth on: no unauthenticated window when nothing is missing.
    if moto_provisioned(keys):
        step(f"moto: user {VAULT_USER} and roles {', '.join(IAM_ROLES)} already there (auth mode on)")
        return keys
    moto_auth("inf")  # provisioning window: unauthenticated actions allowed
    try:
        cfg = BotoConfig(retries={"max_attempts": 2})
        iam = boto3.client("iam", endpoint_url=MOTO, region_name=REGION, config=cfg,
                           aws_access_key_id="provisioning", aws_secret_access_key="provisioning")
        try:
            iam.create_user(UserName=VAULT_USER)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        iam.put_user_policy(UserName=VAULT_USER, PolicyName="assume-jenkins-roles",
                            PolicyDocument=json.dumps(VAULT_USER_POLICY))
        live = {k["AccessKeyId"] for k in iam.list_access_keys(UserName=VAULT_USER)["AccessKeyMetadata"]}
        if keys.get("access_key") not in live:
            for key_id in live:
                iam.delete_access_key(UserName=VAULT_USER, AccessKeyId=key_id)
            created = iam.create_access_key(UserName=VAULT_USER)["AccessKey"]
            keys = {"access_key": created["AccessKeyId"], "secret_key": created["SecretAccessKey"]}
            step(f"moto: user {VAULT_USER} with a new access key")
        else:
            step(f"moto: user {VAULT_USER} (access key reused)")
        keys["fixtures"] = FIXTURES_VERSION
        write_private("moto-vault-user.json", json.dumps(keys))
        try:
            iam.create_user(UserName=IAM_ADMIN)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        iam.put_user_policy(UserName=IAM_ADMIN, PolicyName="iam-admin", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}))
        for old in iam.list_access_keys(UserName=IAM_ADMIN)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=IAM_ADMIN, AccessKeyId=old["AccessKeyId"])
        created = iam.create_access_key(UserName=IAM_ADMIN)["AccessKey"]
        write_private("moto-iam-admin.json", json.dumps(
            {"access_key": created["AccessKeyId"], "secret_key": created["SecretAccessKey"]}))
        step(f"moto: user {IAM_ADMIN} (iam:* only, for tests; key in .run/moto-iam-admin.json)")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": VAULT_USER_ARN}, "Action": "sts:AssumeRole"}]})
        for name, statements in IAM_ROLES.items():
            try:
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, MaxSessionDuration=3600)
            except iam.exceptions.EntityAlreadyExistsException:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
                iam.update_role(RoleName=name, MaxSessionDuration=3600)
            iam.put_role_policy(RoleName=name, PolicyName="world", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements}))
        step(f"moto: roles {', '.join(IAM_ROLES)} (MaxSessionDuration 3600)")
    finally:
        moto_auth("0")  # from here on every request must be signed and authorised
    step("moto: auth mode on (signed requests only, IAM policies enforced)")
    sts = boto3.client("sts", endpoint_url=MOTO, region_name=REGION,
                       aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"])
    try:
        arn = sts.get_caller_identity()["Arn"]
    except ClientError as err:
        fail(f"moto rejects the vault user's key: {err}")
    if arn != VAULT_USER_ARN:
        fail(f"moto says the vault user is {arn}")
    return keys


# ---------------------------------------------------------------------------------------------
# Vault API (front for the AWS engine, OpenBao for the rest)


def vault(method: str, base: str, path: str, token: str = ROOT_TOKEN, body=None, ok=(200, 204),
          ns: str | None = None):
    headers = {"X-Vault-Token": token}
    if ns:
        headers["X-Vault-Namespace"] = ns
    response = requests.request(method, f"{base}/v1/{path}", headers=headers, json=body, timeout=15)
    if response.status_code not in ok:
        try:
            detail = response.json().get("errors")
        except ValueError:
            detail = response.text[:200]
        fail(f"{method} {path} -> {response.status_code} {detail}")
    return response.json() if response.content else {}


def provision_front(keys: dict, ns: str | None = None) -> None:
    where = f" in namespace {ns}" if ns else ""
    vault("POST", FRONT, "aws/config/root", ns=ns, body={
        "access_key": keys["access_key"], "secret_key": keys["secret_key"], "region": REGION,
        "sts_endpoint": MOTO, "iam_endpoint": MOTO})
    step(f"front: aws/config/root -> moto{where}")
    for name, iam_roles in VAULT_ROLES.items():
        vault("POST", FRONT, f"aws/roles/{name}", ns=ns, body={
            "credential_type": "assumed_role",
            "role_arns": [f"arn:aws:iam::{ACCOUNT}:role/{r}" for r in iam_roles]})
    step(f"front: vault roles {', '.join(VAULT_ROLES)} (assumed_role){where}")


def provision_openbao() -> dict:
    vault("PUT", OPENBAO, "sys/policies/acl/jenkins", body={"policy": JENKINS_POLICY})
    step("openbao: policy jenkins")
    provision_refresh()
    auths = vault("GET", OPENBAO, "sys/auth")
    if "approle/" not in (auths.get("data") or auths):
        vault("POST", OPENBAO, "sys/auth/approle", body={"type": "approle"})
    vault("POST", OPENBAO, "auth/approle/role/jenkins", body={
        "token_policies": JENKINS_TOKEN_POLICIES, "token_ttl": "1h", "token_max_ttl": "4h"})
    role_id = vault("GET", OPENBAO, "auth/approle/role/jenkins/role-id")["data"]["role_id"]
    state = read_state("openbao.json")
    secret_id = state.get("secret_id")
    if secret_id:
        found = requests.post(f"{OPENBAO}/v1/auth/approle/role/jenkins/secret-id/lookup",
                              headers={"X-Vault-Token": ROOT_TOKEN}, json={"secret_id": secret_id},
                              timeout=15)
        if found.status_code != 200 or not found.content:
            secret_id = None
    if not secret_id:
        secret_id = vault("POST", OPENBAO, "auth/approle/role/jenkins/secret-id")["data"]["secret_id"]
    step("openbao: approle jenkins (token_ttl 1h)")
    token = state.get("token")
    if token:
        looked = requests.get(f"{OPENBAO}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token},
                              timeout=15)
        if looked.status_code != 200 or not set(JENKINS_TOKEN_POLICIES) <= set(looked.json()["data"].get("policies", [])):
            token = None
        else:
            vault("POST", OPENBAO, "auth/token/renew-self", token=token, body={})
    if not token:
        token = vault("POST", OPENBAO, "auth/token/create", body={
            "policies": JENKINS_TOKEN_POLICIES, "period": "24h", "display_name": "jenkins-world",
            "renewable": True})["auth"]["client_token"]
    step("openbao: periodic token with policy jenkins (period 24h)")
    provision_jwt(auths.get("data") or auths)
    provision_kubernetes(auths.get("data") or auths)
    result = {"role_id": role_id, "secret_id": secret_id, "token": token}
    write_private("openbao.json", json.dumps(result))
    return result


def provision_refresh() -> None:
    """Per-purpose STS policies and the token role for refresh: true (docs/refresh.md)."""
    for purpose in REFRESH_PURPOSES:
        vault("PUT", OPENBAO, f"sys/policies/acl/withawsrole-sts-{purpose}", body={
            # read too: Jenkins' logins hold these, and Vault applies the most specific path rule
            # of all a token's policies, so this one replaces the jenkins policy's aws/sts/* here.
            "policy": f'path "aws/sts/{purpose}" {{ capabilities = ["read", "update"] {STS_PARAMETERS} }}\n'})
    vault("POST", OPENBAO, f"auth/token/roles/{TOKEN_ROLE}", body={
        "allowed_policies_glob": ["withawsrole-sts-*"], "orphan": True, "renewable": False,
        "token_explicit_max_ttl": "24h", "token_type": "service"})
    step(f"openbao: policies withawsrole-sts-{{{','.join(REFRESH_PURPOSES)}}}, token role {TOKEN_ROLE} (orphan)")


def provision_jwt(auths: dict) -> None:
    """JWT auth that trusts a key in .run/: tests play Jenkins' OIDC provider (mint_jwt.py)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_file = RUN / "jwt-key.pem"
    if not key_file.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_private("jwt-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if "jwt/" not in auths:
        vault("POST", OPENBAO, "sys/auth/jwt", body={"type": "jwt"})
    vault("POST", OPENBAO, "auth/jwt/config", body={
        "jwt_validation_pubkeys": [public], "bound_issuer": "https://jenkins.world.test/oidc"})
    vault("POST", OPENBAO, "auth/jwt/role/jenkins", body={
        "role_type": "jwt", "bound_audiences": ["withawsrole"], "user_claim": "sub",
        "token_policies": JENKINS_TOKEN_POLICIES, "token_ttl": "1h"})
    # Jenkins' OIDC provider puts the job in `sub`: this role admits only the deploy job's builds.
    vault("POST", OPENBAO, "auth/jwt/role/jenkins-deploy-job", body={
        "role_type": "jwt", "bound_audiences": ["withawsrole"], "user_claim": "sub",
        "bound_claims_type": "glob", "bound_claims": {"sub": "job/deploy/*"},
        "token_policies": ["jenkins"], "token_ttl": "1h"})
    # A controller that logs in as each build (WITHAWSROLE_JOB_ID_TOKEN): the OIDC provider
    # plugin's default claims put the job's URL in `sub`; this role admits the builds of the jobs
    # in folder team-a only.
    vault("POST", OPENBAO, "auth/jwt/role/jenkins-team-a-builds", body={
        "role_type": "jwt", "bound_audiences": ["withawsrole"], "user_claim": "sub",
        "bound_claims_type": "glob",
        "bound_claims": {"sub": "https://jenkins.world.test/job/team-a/*"},
        "token_policies": JENKINS_TOKEN_POLICIES, "token_ttl": "1h"})
    step("openbao: jwt auth, roles jenkins (audience withawsrole, key in .run/jwt-key.pem), "
         "jenkins-deploy-job (bound claim sub = job/deploy/*) and jenkins-team-a-builds "
         "(sub = https://jenkins.world.test/job/team-a/*)")


def provision_kubernetes(auths: dict) -> None:
    """Kubernetes auth whose "cluster" is the front's TokenReview endpoint (no real cluster):
    it vouches for tokens signed with .run/jwt-key.pem, minted by mint_jwt.py --k8s."""
    if "kubernetes/" not in auths:
        vault("POST", OPENBAO, "sys/auth/kubernetes", body={"type": "kubernetes"})
    # OpenBao wants a CA even for an http:// host (unused); the TLS world's CA will do.
    vault("POST", OPENBAO, "auth/kubernetes/config", body={
        "kubernetes_host": f"{FRONT}/_world/k8s", "disable_local_ca_jwt": True,
        "kubernetes_ca_cert": (RUN / "tls" / "vault-ca.pem").read_text()})
    vault("POST", OPENBAO, "auth/kubernetes/role/jenkins", body={
        "bound_service_account_names": [K8S_ACCOUNT],
        "bound_service_account_namespaces": [K8S_NAMESPACE],
        "token_policies": ["jenkins"], "token_ttl": "1h"})
    step(f"openbao: kubernetes auth, role jenkins (service account {K8S_NAMESPACE}/{K8S_ACCOUNT})")


def provision_namespace(keys: dict) -> dict:
    """Namespace team-a: its own jenkins policy and AppRole, and the AWS engine's roles."""
    if vault("GET", OPENBAO, f"sys/namespaces/{NAMESPACE}", ok=(200, 404)).get("data") is None:
        vault("POST", OPENBAO, f"sys/namespaces/{NAMESPACE}", body={})
    vault("PUT", OPENBAO, "sys/policies/acl/jenkins", ns=NAMESPACE, body={"policy": JENKINS_POLICY})
    auths = vault("GET", OPENBAO, "sys/auth", ns=NAMESPACE)
    if "approle/" not in (auths.get("data") or auths):
        vault("POST", OPENBAO, "sys/auth/approle", ns=NAMESPACE, body={"type": "approle"})
    vault("POST", OPENBAO, "auth/approle/role/jenkins", ns=NAMESPACE, body={
        "token_policies": ["jenkins"], "token_ttl": "1h", "token_max_ttl": "4h"})
    role_id = vault("GET", OPENBAO, "auth/approle/role/jenkins/role-id", ns=NAMESPACE)["data"]["role_id"]
    secret_id = vault("POST", OPENBAO, "auth/approle/role/jenkins/secret-id", ns=NAMESPACE)["data"]["secret_id"]
    step(f"openbao: namespace {NAMESPACE} with policy jenkins and approle jenkins")
    provision_front(keys, ns=NAMESPACE)
    return {"ns_role_id": role_id, "ns_secret_id": secret_id}


def write_env(bao: dict) -> None:
    venv = os.environ["WORLD_VENV"]
    empty = RUN / "aws-empty"
    empty.write_text("")  # the aws CLI and SDKs read this instead of the user's ~/.aws files
    lines = [
        "# Written by test/world/up. Source it: `. test/world/.run/env`. Holds minted secrets.",
        f"export VAULT_ADDR={FRONT}",
        f"export VAULT_TOKEN={bao['token']}",
        f"export VAULT_ROLE_ID={bao['role_id']}",
        f"export VAULT_SECRET_ID={bao['secret_id']}",
        f"export WORLD_ROOT_TOKEN={ROOT_TOKEN}",
        f"export WORLD_CONTROL_URL={FRONT}/_world",
        f"export WORLD_OPENBAO_ADDR={OPENBAO}",
        f"export AWS_ENDPOINT_URL={MOTO}",
        f"export AWS_REGION={REGION}",
        f"export AWS_DEFAULT_REGION={REGION}",
        f"export AWS_CONFIG_FILE={empty}",
        f"export AWS_SHARED_CREDENTIALS_FILE={empty}",
        # No instance-metadata lookups: without keys from withAwsRole, AWS calls must fail fast.
        "export AWS_EC2_METADATA_DISABLED=true",
        f"export WORLD_ACCOUNT_ID={ACCOUNT}",
        "export WORLD_JWT_ROLE=jenkins",
        "export WORLD_JWT_BOUND_ROLE=jenkins-deploy-job",
        f"export WORLD_JWT_KEY_FILE={RUN / 'jwt-key.pem'}",
        "export WORLD_K8S_ROLE=jenkins",
        f"export WORLD_NAMESPACE={NAMESPACE}",
        f"export WORLD_NAMESPACE_ROLE_ID={bao['ns_role_id']}",
        f"export WORLD_NAMESPACE_SECRET_ID={bao['ns_secret_id']}",
        f"export WORLD_TLS_ADDR={FRONT_TLS}",
        f"export WORLD_OPENBAO_TLS_ADDR={OPENBAO_TLS}",
        f"export WORLD_TLS_CACERT={RUN / 'tls' / 'vault-ca.pem'}",
        f"export WORLD_VENV={venv}",
        f'export PATH="{venv}/bin:$PATH"',
        # Keys must come only from withAwsRole, never from the caller's environment.
        "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE",
    ]
    write_private("env", "\n".join(lines) + "\n")
    step(f"env: {RUN / 'env'}")


def main() -> None:
    RUN.mkdir(exist_ok=True)
    keys = provision_moto()
    provision_front(keys)
    bao = provision_openbao()
    bao.update(provision_namespace(keys))
    write_env(bao)


if __name__ == "__main__":
    main()
