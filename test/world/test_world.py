"""Tests of the test world's front, run against the running world (test/world/up first).

    <venv>/bin/python -m pytest test/world -q

Each test starts from POST /_world/reset (counters zeroed, faults cleared, options default).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
ENV_FILE = HERE / ".run" / "env"
ACCOUNT = "123456789012"
ECR_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/jenkins-ecr-push-role"
DEPLOY_ARN = f"arn:aws:iam::{ACCOUNT}:role/jenkins-deploy-role"
READONLY_ARN = f"arn:aws:iam::{ACCOUNT}:role/jenkins-deploy-readonly-role"


def load_env() -> dict:
    if not ENV_FILE.exists():
        pytest.exit("the test world is not up: run test/world/up first", returncode=2)
    env = {}
    for line in ENV_FILE.read_text().splitlines():
        match = re.match(r"export (\w+)=(.*)$", line)
        if match:
            env[match.group(1)] = match.group(2).strip('"')
    return env


ENV = load_env()
ADDR = ENV["VAULT_ADDR"]
CONTROL = ENV["WORLD_CONTROL_URL"]
OPENBAO = ENV["WORLD_OPENBAO_ADDR"]
MOTO = ENV["AWS_ENDPOINT_URL"]
ROOT = ENV["WORLD_ROOT_TOKEN"]
JENKINS = ENV["VAULT_TOKEN"]


def call(method, path, token=JENKINS, body=None, headers=None, base=ADDR, **kwargs):
    all_headers = dict(headers or {})
    if token:
        all_headers["X-Vault-Token"] = token
    return requests.request(method, f"{base}/v1/{path}", headers=all_headers,
                            json=body, timeout=30, **kwargs)


def control(method, path, body=None):
    response = requests.request(method, f"{CONTROL}/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def counters():
    return control("GET", "counters")


@pytest.fixture(autouse=True)
def clean_world():
    try:
        control("POST", "reset")
    except requests.ConnectionError:
        pytest.exit("the front does not answer on VAULT_ADDR: run test/world/up", returncode=2)
    yield
    control("POST", "reset")


@pytest.fixture
def temp_role():
    """Create aws/roles/<unique> with the root token; deleted afterwards."""
    created = []

    def make(mount="aws", **fields):
        name = f"pytest-{uuid.uuid4().hex[:8]}"
        body = {"credential_type": "assumed_role", "role_arns": [ECR_ROLE_ARN], **fields}
        assert call("POST", f"{mount}/roles/{name}", ROOT, body).status_code == 204
        created.append((mount, name))
        return name

    yield make
    for mount, name in created:
        call("DELETE", f"{mount}/roles/{name}", ROOT)


def moto_keys(name: str) -> dict:
    """An IAM user's key kept by provision.py in .run/ (the engine's, or the IAM admin's)."""
    stored = json.loads((HERE / ".run" / name).read_text())
    return {"access_key": stored["access_key"], "secret_key": stored["secret_key"]}


def near(seconds: int, granted: int) -> bool:
    """Vault's lease is the time left until AWS's Expiration: the granted ttl or a few s less."""
    return granted - 5 <= seconds <= granted


def errors(response) -> list[str]:
    return response.json()["errors"]


# --- issuing credentials ------------------------------------------------------------------------

def test_sts_post_answers_exactly_like_vault():
    response = call("POST", "aws/sts/ecr-push", body={"ttl": "15m"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"request_id", "lease_id", "renewable", "lease_duration", "data",
                         "wrap_info", "warnings", "auth"}
    assert body["lease_id"].startswith("aws/sts/ecr-push/")
    assert body["renewable"] is False
    assert near(body["lease_duration"], 900)
    assert body["wrap_info"] is None and body["warnings"] is None and body["auth"] is None
    assert set(body["data"]) == {"access_key", "secret_key", "security_token", "session_token", "arn"}
    assert body["data"]["access_key"].startswith("ASIA")
    assert body["data"]["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/jenkins-ecr-push-role/vault-")


def test_issued_credentials_work_in_moto_only_within_the_role_policy():
    data = call("POST", "aws/sts/ecr-push").json()["data"]
    session = boto3.session.Session(aws_access_key_id=data["access_key"],
                                    aws_secret_access_key=data["secret_key"],
                                    aws_session_token=data["session_token"], region_name="us-east-1")
    arn = session.client("sts", endpoint_url=MOTO).get_caller_identity()["Arn"]
    assert arn == data["arn"]
    session.client("ecr", endpoint_url=MOTO).describe_repositories()
    with pytest.raises(ClientError) as denied:
        session.client("iam", endpoint_url=MOTO).list_users()
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_forged_secret_key_is_rejected_by_moto():
    data = call("POST", "aws/sts/ecr-push").json()["data"]
    client = boto3.client("ecr", endpoint_url=MOTO, region_name="us-east-1",
                          aws_access_key_id=data["access_key"], aws_secret_access_key="forged",
                          aws_session_token=data["session_token"])
    with pytest.raises(ClientError):
        client.describe_repositories()


def test_sts_get_takes_query_parameters():
    response = call("GET", "aws/sts/ecr-push", params={"ttl": "1200", "role_session_name": "from-get"})
    assert response.status_code == 200, response.text
    assert near(response.json()["lease_duration"], 1200)
    assert response.json()["data"]["arn"].endswith("/from-get")


def test_creds_path_issues_assumed_role_credentials():
    response = call("POST", "aws/creds/ecr-push", body={"ttl": 900})
    assert response.status_code == 200, response.text
    assert response.json()["lease_id"].startswith("aws/creds/ecr-push/")


def test_role_session_name_is_passed_to_aws():
    response = call("POST", "aws/sts/ecr-push", body={"role_session_name": "jenkins-job-42"})
    assert response.json()["data"]["arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/jenkins-ecr-push-role/jenkins-job-42")


# --- authorisation against OpenBao -----------------------------------------------------------------

def test_missing_token_is_permission_denied():
    response = call("POST", "aws/sts/ecr-push", token=None)
    assert response.status_code == 403
    assert errors(response) == ["permission denied"]


def test_invalid_token_is_permission_denied():
    response = call("POST", "aws/sts/ecr-push", token="s.not-a-real-token-000000")
    assert response.status_code == 403
    assert errors(response) == ["permission denied"]


def test_policy_deny_on_forbidden_role_is_enforced():
    assert call("POST", "aws/sts/forbidden").status_code == 403
    assert call("GET", "aws/creds/forbidden").status_code == 403
    # the role itself works: the root token passes
    assert call("POST", "aws/sts/forbidden", ROOT).status_code == 200


def test_get_needs_read_and_post_needs_update(temp_role):
    name = temp_role()
    policy = f'path "aws/sts/{name}" {{ capabilities = ["read"] }}'
    assert call("PUT", "sys/policies/acl/pytest-read-only", ROOT, {"policy": policy}).status_code == 204
    token = call("POST", "auth/token/create", ROOT, {"policies": ["pytest-read-only"], "ttl": "5m"}
                 ).json()["auth"]["client_token"]
    try:
        assert call("GET", f"aws/sts/{name}", token).status_code == 200
        assert call("POST", f"aws/sts/{name}", token).status_code == 403
    finally:
        call("DELETE", "sys/policies/acl/pytest-read-only", ROOT)


def test_approle_login_through_the_front_gives_a_working_token():
    login = call("POST", "auth/approle/login", token=None,
                 body={"role_id": ENV["VAULT_ROLE_ID"], "secret_id": ENV["VAULT_SECRET_ID"]})
    assert login.status_code == 200, login.text
    auth = login.json()["auth"]
    assert "jenkins" in auth["policies"] and auth["lease_duration"] == 3600
    assert call("POST", "aws/sts/ecr-push", auth["client_token"]).status_code == 200


def test_revoked_token_is_denied():
    token = call("POST", "auth/token/create", ROOT, {"policies": ["jenkins"], "ttl": "5m"}
                 ).json()["auth"]["client_token"]
    assert call("POST", "aws/sts/ecr-push", token).status_code == 200
    assert call("POST", "auth/token/revoke-self", token).status_code == 204
    assert call("POST", "aws/sts/ecr-push", token).status_code == 403


def token_with_policy(name: str, policy: str) -> str:
    assert call("PUT", f"sys/policies/acl/{name}", ROOT, {"policy": policy}).status_code == 204
    return call("POST", "auth/token/create", ROOT, {"policies": [name], "ttl": "5m"}
                ).json()["auth"]["client_token"]


LIBRARY_BODY = {"ttl": "900s", "role_session_name": "jenkins-app-main-7"}  # what the core sends


def test_policy_without_role_session_name_refuses_the_librarys_request():
    # docs/security.md's pinned policy minus role_session_name: a real Vault's ACL refuses the
    # library's every request, because allowed_parameters lists what a request may carry.
    token = token_with_policy("pytest-params", 'path "aws/sts/ecr-push" { capabilities = ["update"] '
                                               'allowed_parameters = { "ttl" = [] "role_arn" = [] } }')
    try:
        refused = call("POST", "aws/sts/ecr-push", token, LIBRARY_BODY)
        assert refused.status_code == 403 and "permission denied" in errors(refused)[0]
        assert call("POST", "aws/sts/ecr-push", token, {"ttl": "900s"}).status_code == 200
        assert counters()["sts_issued"] == 1
    finally:
        call("DELETE", "sys/policies/acl/pytest-params", ROOT)


def test_denied_and_required_parameters_and_pinned_values_apply():
    token = token_with_policy("pytest-params", """
path "aws/sts/deploy" {
  capabilities = ["update"]
  allowed_parameters = { "role_arn" = ["%s"] "ttl" = [] "role_session_name" = ["jenkins-*"] }
  required_parameters = ["role_session_name"]
}""" % READONLY_ARN)
    try:
        ok = {"role_arn": READONLY_ARN, "ttl": "900s", "role_session_name": "jenkins-x"}
        assert call("POST", "aws/sts/deploy", token, ok).status_code == 200
        for bad in ({**ok, "role_arn": DEPLOY_ARN}, {**ok, "role_session_name": "other"},
                    {"role_arn": READONLY_ARN, "ttl": "900s"}):
            assert call("POST", "aws/sts/deploy", token, bad).status_code == 403, bad
    finally:
        call("DELETE", "sys/policies/acl/pytest-params", ROOT)
    token = token_with_policy("pytest-params", 'path "aws/sts/ecr-push" { capabilities = ["update"] '
                                               'denied_parameters = { "ttl" = [] } }')
    try:
        assert call("POST", "aws/sts/ecr-push", token, {"ttl": "900s"}).status_code == 403
        assert call("POST", "aws/sts/ecr-push", token, {"role_session_name": "jenkins-x"}).status_code == 200
    finally:
        call("DELETE", "sys/policies/acl/pytest-params", ROOT)


def test_an_unknown_namespace_is_openbaos_404_not_a_policy_pass():
    response = call("POST", "aws/sts/ecr-push", body={"ttl": "900s"},
                    headers={"X-Vault-Namespace": "no-such-team"})
    assert response.status_code == 404 and errors(response) == ["namespace not found"]
    assert counters()["sts_issued"] == 0


def test_a_lost_acl_shadow_is_set_up_again():
    # As after an OpenBao restart under a running front: the KV shadow and its entries are gone.
    assert call("POST", "aws/sts/ecr-push", body=LIBRARY_BODY).status_code == 200
    assert call("DELETE", "sys/mounts/aws", ROOT, base=OPENBAO).status_code == 204
    assert call("POST", "aws/sts/ecr-push", body=LIBRARY_BODY).status_code == 200
    assert call("POST", "aws/sts/forbidden", body=LIBRARY_BODY).status_code == 403


def test_world_policy_admits_exactly_what_the_library_sends():
    assert call("POST", "aws/sts/deploy", body={**LIBRARY_BODY, "role_arn": DEPLOY_ARN}).status_code == 200
    extra = call("POST", "aws/sts/ecr-push", body={**LIBRARY_BODY, "policy_arns": "x"})
    assert extra.status_code == 403


# --- roles and role_arn ---------------------------------------------------------------------------

def test_unknown_role_is_a_400_naming_it():
    response = call("POST", "aws/sts/no-such-role")
    assert response.status_code == 400
    assert errors(response) == ['Role "no-such-role" not found']


def test_role_with_several_arns_requires_role_arn():
    response = call("POST", "aws/sts/deploy")
    assert response.status_code == 400
    assert errors(response) == ["did not supply a role_arn parameter and unable to determine one"]


def test_role_arn_must_be_one_of_the_roles_arns():
    response = call("POST", "aws/sts/deploy", body={"role_arn": ECR_ROLE_ARN})
    assert response.status_code == 400
    assert errors(response) == [
        f'role_arn "{ECR_ROLE_ARN}" not in allowed role arns for Vault role "deploy"']


def test_role_arn_picks_among_several():
    for arn, iam_role in ((DEPLOY_ARN, "jenkins-deploy-role"), (READONLY_ARN, "jenkins-deploy-readonly-role")):
        response = call("POST", "aws/sts/deploy", body={"role_arn": arn})
        assert response.status_code == 200, response.text
        assert f":assumed-role/{iam_role}/" in response.json()["data"]["arn"]


def test_iam_role_missing_in_aws_gives_access_denied(temp_role):
    name = temp_role(role_arns=[f"arn:aws:iam::{ACCOUNT}:role/jenkins-does-not-exist"])
    response = call("POST", f"aws/sts/{name}")
    assert response.status_code == 400
    assert errors(response)[0].startswith("Error assuming role: AccessDenied: ")


def test_roles_api_write_read_list_delete(temp_role):
    name = temp_role(default_sts_ttl="20m", max_sts_ttl=3600)
    role = call("GET", f"aws/roles/{name}", ROOT).json()["data"]
    assert role["credential_type"] == "assumed_role"
    assert role["role_arns"] == [ECR_ROLE_ARN]
    assert role["default_sts_ttl"] == 1200 and role["max_sts_ttl"] == 3600
    keys = requests.request("LIST", f"{ADDR}/v1/aws/roles", headers={"X-Vault-Token": ROOT}).json()["data"]["keys"]
    assert {"ecr-push", "deploy", "forbidden", name} <= set(keys)
    assert call("GET", "aws/roles", ROOT, params={"list": "true"}).json()["data"]["keys"] == keys
    assert call("DELETE", f"aws/roles/{name}", ROOT).status_code == 204
    assert call("GET", f"aws/roles/{name}", ROOT).status_code == 404


def test_role_writes_need_update_even_to_create_like_vault():
    name = f"pytest-{uuid.uuid4().hex[:8]}"
    body = {"credential_type": "assumed_role", "role_arns": [ECR_ROLE_ARN]}
    creator = token_with_policy("pytest-roles", f'path "aws/roles/{name}" {{ capabilities = ["create"] }}')
    updater = token_with_policy("pytest-roles2", f'path "aws/roles/{name}" {{ capabilities = ["update"] }}')
    try:
        # Vault's roles path has no existence check: a new role is an update, never a create.
        assert call("POST", f"aws/roles/{name}", creator, body).status_code == 403
        assert call("POST", f"aws/roles/{name}", updater, body).status_code == 204
    finally:
        call("DELETE", f"aws/roles/{name}", ROOT)
        call("DELETE", "sys/policies/acl/pytest-roles", ROOT)
        call("DELETE", "sys/policies/acl/pytest-roles2", ROOT)


def test_role_writes_merge_and_fields_of_another_type_fail_validation(temp_role):
    name = temp_role(default_sts_ttl="20m")
    assert call("POST", f"aws/roles/{name}", ROOT, {"max_sts_ttl": "1h"}).status_code == 204
    role = call("GET", f"aws/roles/{name}", ROOT).json()["data"]
    assert role["default_sts_ttl"] == 1200 and role["role_arns"] == [ECR_ROLE_ARN]
    # docs/migration.md: an iam_user role switched in place keeps user_path and fails
    iam = temp_role(credential_type="iam_user", role_arns=[], user_path="/jenkins/")
    switched = call("POST", f"aws/roles/{iam}", ROOT, {"credential_type": "assumed_role",
                                                        "role_arns": [ECR_ROLE_ARN]})
    assert switched.status_code == 400
    assert "user_path parameter only valid for iam_user" in errors(switched)[0]
    cleared = call("POST", f"aws/roles/{iam}", ROOT, {"credential_type": "assumed_role", "user_path": "",
                                                       "role_arns": [ECR_ROLE_ARN]})
    assert cleared.status_code == 204
    # and back: the assumed_role role's ttls and ARNs stay, which an iam_user role may not have
    back = call("POST", f"aws/roles/{name}", ROOT, {"credential_type": "iam_user"})
    assert back.status_code == 400
    assert "default_sts_ttl parameter only valid for" in errors(back)[0]
    assert "cannot supply role_arns when credential_type isn't assumed_role" in errors(back)[0]


def test_session_names_are_sanitized_like_vault(temp_role):
    response = call("POST", "aws/sts/ecr-push", body={"role_session_name": "team a/app#7"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["arn"].endswith("/team_a_app_7")


def test_iam_groups_are_read_with_the_engines_key_and_its_refusal_is_vaults_400(temp_role):
    name = temp_role(iam_groups=["jenkins-extra"])
    response = call("POST", f"aws/sts/{name}")
    assert response.status_code == 400
    assert errors(response)[0].startswith("AccessDenied: ")  # the engine user may not read IAM groups


def test_config_root_writes_merge_like_vault():
    control("POST", "mounts", {"mount": "aws-pytest-merge"})
    keys = moto_keys("moto-vault-user.json")
    assert call("POST", "aws-pytest-merge/config/root", ROOT,
                {**keys, "sts_endpoint": MOTO, "iam_endpoint": MOTO}).status_code == 204
    assert call("POST", "aws-pytest-merge/config/root", ROOT, {"region": "eu-west-1"}).status_code == 204
    data = call("GET", "aws-pytest-merge/config/root", ROOT).json()["data"]
    assert data["region"] == "eu-west-1" and data["sts_endpoint"] == MOTO
    assert data["access_key"] == keys["access_key"]


def test_config_root_needs_create_first_and_update_after():
    mount = f"aws-pytest-{uuid.uuid4().hex[:6]}"
    control("POST", "mounts", {"mount": mount})
    updater = token_with_policy("pytest-cfg", f'path "{mount}/config/root" {{ capabilities = ["update"] }}')
    creator = token_with_policy("pytest-cfg2", f'path "{mount}/config/root" {{ capabilities = ["create"] }}')
    try:
        assert call("POST", f"{mount}/config/root", updater, {"region": "eu-west-1"}).status_code == 403
        assert call("POST", f"{mount}/config/root", creator, {"region": "eu-west-1"}).status_code == 204
        assert call("POST", f"{mount}/config/root", creator, {"region": "us-east-1"}).status_code == 403
        assert call("POST", f"{mount}/config/root", updater, {"region": "us-east-1"}).status_code == 204
    finally:
        call("DELETE", "sys/policies/acl/pytest-cfg", ROOT)
        call("DELETE", "sys/policies/acl/pytest-cfg2", ROOT)


@pytest.fixture
def iam_user():
    """A fresh moto IAM user with one access key, made by the world's IAM admin; deleted after.
    `rotatable=True` lets it rotate its own key (docs/vault-setup.md, section 1)."""
    admin = moto_keys("moto-iam-admin.json")
    iam = boto3.client("iam", endpoint_url=MOTO, region_name="us-east-1",
                       aws_access_key_id=admin["access_key"], aws_secret_access_key=admin["secret_key"])
    made = []

    def make(rotatable: bool):
        name = f"pytest-engine-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        made.append(name)
        if rotatable:
            iam.put_user_policy(UserName=name, PolicyName="rotate", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": ["iam:GetUser", "iam:CreateAccessKey", "iam:DeleteAccessKey"],
                    "Resource": f"arn:aws:iam::{ACCOUNT}:user/{name}"}]}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return name, {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}

    yield make, iam
    for name in made:
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy)
        iam.delete_user(UserName=name)


def test_rotate_root_replaces_the_engines_key_like_vault(iam_user):
    make, iam = iam_user
    name, keys = make(rotatable=True)
    mount = f"aws-pytest-{uuid.uuid4().hex[:6]}"
    control("POST", "mounts", {"mount": mount})
    assert call("POST", f"{mount}/config/root", ROOT, {**keys, "iam_endpoint": MOTO}).status_code == 204
    seen = [keys["access_key"]]
    for _ in range(2):  # the second rotation works only if the first stored the new secret
        rotated = call("POST", f"{mount}/config/rotate-root", ROOT)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["data"]["access_key"]
        assert new not in seen
        assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]] == [new]
        assert call("GET", f"{mount}/config/root", ROOT).json()["data"]["access_key"] == new
        seen.append(new)


def test_rotate_root_without_iam_permissions_is_vaults_500(iam_user):
    make, _ = iam_user
    _, keys = make(rotatable=False)  # the docs' policy before issue 17: sts:AssumeRole only
    mount = f"aws-pytest-{uuid.uuid4().hex[:6]}"
    control("POST", "mounts", {"mount": mount})
    assert call("POST", f"{mount}/config/root", ROOT, {**keys, "iam_endpoint": MOTO}).status_code == 204
    refused = call("POST", f"{mount}/config/rotate-root", ROOT)
    assert refused.status_code == 500
    assert errors(refused)[0].startswith("error calling GetUser: AccessDenied")


def test_rotate_root_without_a_key_is_vaults_400_and_other_paths_are_unsupported():
    mount = f"aws-pytest-{uuid.uuid4().hex[:6]}"
    control("POST", "mounts", {"mount": mount})
    assert call("POST", f"{mount}/config/root", ROOT, {"region": "eu-west-1"}).status_code == 204
    refused = call("POST", f"{mount}/config/rotate-root", ROOT)
    assert refused.status_code == 400
    assert errors(refused) == ["Cannot call config/rotate-root when either access_key or secret_key is empty"]
    assert call("POST", "aws/config/lease", ROOT, {"lease": "1h"}).status_code == 404
    # the jenkins token may not rotate: OpenBao's ACL on the engine's path
    assert call("POST", "aws/config/rotate-root").status_code == 403


def test_jenkins_token_cannot_write_roles_or_config():
    assert call("POST", "aws/roles/evil", body={"credential_type": "assumed_role"}).status_code == 403
    assert call("GET", "aws/config/root").status_code == 403


def test_config_root_never_returns_the_secret_key():
    data = call("GET", "aws/config/root", ROOT).json()["data"]
    assert data["sts_endpoint"] == MOTO and data["access_key"]
    assert "secret_key" not in data


def test_other_mounts_work_once_declared(temp_role):
    control("POST", "mounts", {"mount": "aws-pytest"})
    keys = moto_keys("moto-vault-user.json")
    assert call("POST", "aws-pytest/config/root", ROOT, {**keys, "sts_endpoint": MOTO}).status_code == 204
    name = temp_role(mount="aws-pytest")
    response = call("POST", f"aws-pytest/sts/{name}", ROOT)
    assert response.status_code == 200, response.text
    assert response.json()["lease_id"].startswith(f"aws-pytest/sts/{name}/")
    assert counters()["sts_calls"] == {f"aws-pytest/{name}": 1}


# --- ttl ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ttl, seconds", [("15m", 900), ("1h", 3600), ("3600s", 3600), ("1200", 1200),
                                          (1000, 1000), ("0.5h", 1800), ("1h0m0s", 3600)])
def test_ttl_accepts_seconds_and_go_durations(ttl, seconds):
    response = call("POST", "aws/sts/ecr-push", body={"ttl": ttl})
    assert response.status_code == 200, response.text
    assert near(response.json()["lease_duration"], seconds)


def test_ttl_defaults_to_3600_or_the_roles_default(temp_role):
    assert near(call("POST", "aws/sts/ecr-push").json()["lease_duration"], 3600)
    name = temp_role(default_sts_ttl="20m")
    assert near(call("POST", f"aws/sts/{name}").json()["lease_duration"], 1200)


def test_bad_ttl_is_a_400():
    response = call("POST", "aws/sts/ecr-push", body={"ttl": "soon"})
    assert response.status_code == 400
    assert 'field "ttl"' in errors(response)[0]


def test_ttl_over_max_sts_ttl_is_capped_like_vault_never_an_error(temp_role):
    name = temp_role(max_sts_ttl="20m")
    response = call("POST", f"aws/sts/{name}", body={"ttl": "1h"})
    assert response.status_code == 200
    assert 1195 <= response.json()["lease_duration"] <= 1200
    # The old front's invented "ttl exceeds max_sts_ttl" error is gone: Vault has no such option.
    refused = requests.post(f"{CONTROL}/options", json={"ttl_over_max": "error"}, timeout=10)
    assert refused.status_code == 400


def test_ttl_over_the_iam_roles_max_session_duration_is_aws_error_text(temp_role):
    name = temp_role(max_sts_ttl="12h")
    response = call("POST", f"aws/sts/{name}", body={"ttl": "2h"})
    assert response.status_code == 400
    assert errors(response)[0].startswith(
        "Error assuming role: ValidationError: The requested DurationSeconds exceeds the "
        "MaxSessionDuration set for this role.")


def test_ttl_under_900_seconds_is_refused_as_aws_does():
    response = call("POST", "aws/sts/ecr-push", body={"ttl": "5m"})
    assert response.status_code == 400
    assert errors(response)[0].startswith("Error assuming role:")


# --- counters -------------------------------------------------------------------------------------

def test_counters_count_calls_per_role_issued_and_proxied():
    call("POST", "aws/sts/ecr-push")
    call("POST", "aws/sts/ecr-push")
    call("POST", "aws/sts/no-such-role")
    call("GET", "sys/health", token=None)
    seen = counters()
    assert seen["sts_calls"] == {"aws/ecr-push": 2, "aws/no-such-role": 1}
    assert seen["sts_total"] == 3 and seen["sts_issued"] == 2
    assert seen["proxied"] == {"sys/health": 1} and seen["proxied_total"] == 1


def test_reset_zeroes_counters_and_clears_faults():
    control("POST", "faults", {"path": "sts/"})
    call("POST", "aws/sts/ecr-push")
    control("POST", "reset")
    assert control("GET", "faults") == {"faults": []}
    seen = counters()
    assert seen["sts_total"] == 0 and seen["sts_calls"] == {} and seen["proxied_total"] == 0
    assert call("POST", "aws/sts/ecr-push").status_code == 200


# --- faults ---------------------------------------------------------------------------------------

def test_status_fault_defaults_to_sealed_503_and_is_counted():
    control("POST", "faults", {"path": "^aws/sts/ecr-push$"})
    response = call("POST", "aws/sts/ecr-push")
    assert response.status_code == 503
    assert errors(response) == ["Vault is sealed"]
    seen = counters()
    assert seen["sts_calls"] == {"aws/ecr-push": 1} and seen["sts_issued"] == 0


def test_status_fault_with_custom_status_and_string_body():
    control("POST", "faults", {"path": "sts/", "status": 502, "body": "<html>Bad Gateway</html>"})
    response = call("POST", "aws/sts/ecr-push")
    assert response.status_code == 502
    assert response.text == "<html>Bad Gateway</html>"


def test_status_fault_with_json_body():
    control("POST", "faults", {"path": "sts/", "status": 429, "body": {"errors": ["slow down"]}})
    response = call("POST", "aws/sts/ecr-push")
    assert response.status_code == 429 and errors(response) == ["slow down"]


def test_fault_count_limits_how_often_it_fires():
    control("POST", "faults", {"path": "sts/", "status": 500, "count": 2})
    assert [call("POST", "aws/sts/ecr-push").status_code for _ in range(3)] == [500, 500, 200]
    assert counters()["sts_calls"] == {"aws/ecr-push": 3}


def test_fault_ratio_zero_never_fires_and_one_always_does():
    control("POST", "faults", {"path": "sts/", "status": 500, "ratio": 0.0})
    assert call("POST", "aws/sts/ecr-push").status_code == 200
    control("DELETE", "faults")
    control("POST", "faults", {"path": "sts/", "status": 500, "ratio": 1.0})
    assert call("POST", "aws/sts/ecr-push").status_code == 500


def test_first_matching_fault_wins():
    control("POST", "faults", [{"path": "sts/ecr", "status": 418}, {"path": "sts/", "status": 500}])
    assert call("POST", "aws/sts/ecr-push").status_code == 418
    assert call("POST", "aws/sts/deploy").status_code == 500


def test_delay_fault_slows_a_request_then_serves_it():
    control("POST", "faults", {"path": "sts/", "mode": "delay", "delay_ms": 400})
    started = time.monotonic()
    response = call("POST", "aws/sts/ecr-push")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_delay_combines_with_status():
    control("POST", "faults", {"path": "sts/", "status": 503, "delay_ms": 300})
    started = time.monotonic()
    assert call("POST", "aws/sts/ecr-push").status_code == 503
    assert time.monotonic() - started >= 0.3


def test_reset_fault_breaks_the_connection_mid_response():
    control("POST", "faults", {"path": "sts/", "mode": "reset"})
    # The status line arrives, then the body is cut by a TCP RST.
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        call("POST", "aws/sts/ecr-push")
    assert counters()["sts_calls"] == {"aws/ecr-push": 1}


def test_truncate_fault_sends_half_a_json_body():
    control("POST", "faults", {"path": "sts/", "mode": "truncate"})
    response = call("POST", "aws/sts/ecr-push")
    assert response.status_code == 200
    assert response.text.startswith('{"request_id"')
    with pytest.raises(ValueError):
        json.loads(response.text)


def test_faults_apply_to_proxied_paths_too():
    control("POST", "faults", {"path": "^auth/approle/login$", "status": 500, "method": "POST"})
    response = call("POST", "auth/approle/login", token=None,
                    body={"role_id": ENV["VAULT_ROLE_ID"], "secret_id": ENV["VAULT_SECRET_ID"]})
    assert response.status_code == 500 and errors(response) == ["internal error"]


def test_delete_faults_removes_them():
    fault = control("POST", "faults", {"path": "sts/"})
    assert control("GET", "faults")["faults"][0]["id"] == fault["id"]
    control("DELETE", f"faults/{fault['id']}")
    assert call("POST", "aws/sts/ecr-push").status_code == 200


def test_bad_fault_spec_is_refused():
    response = requests.post(f"{CONTROL}/faults", json={"path": "(", "status": 500}, timeout=5)
    assert response.status_code == 400


# --- options --------------------------------------------------------------------------------------

def test_vault_1_15_answers_security_token_only():
    control("POST", "options", {"vault_version": "1.15"})
    data = call("POST", "aws/sts/ecr-push").json()["data"]
    assert set(data) == {"access_key", "secret_key", "security_token", "arn"}


def test_vault_1_16_answers_both_token_fields_and_is_the_default():
    data = call("POST", "aws/sts/ecr-push").json()["data"]
    assert set(data) == {"access_key", "secret_key", "security_token", "session_token", "arn"}
    assert data["security_token"] == data["session_token"]
    # the old default (session_token alone) matched no Vault release
    assert requests.post(f"{CONTROL}/options", json={"token_field": "session_token"},
                         timeout=10).status_code == 400


def test_reset_restores_default_options():
    control("POST", "options", {"vault_version": "1.15"})
    control("POST", "reset")
    assert "session_token" in call("POST", "aws/sts/ecr-push").json()["data"]


@pytest.mark.parametrize("version", ["1.15", "1.16"])
def test_no_lease_role_answers_ttl_in_data_and_no_lease(temp_role, version):
    control("POST", "options", {"vault_version": version})
    name = temp_role(no_lease=True, max_sts_ttl="20m")
    body = call("POST", f"aws/sts/{name}", body={"ttl": "1h"}).json()
    assert body["lease_duration"] == 0 and body["lease_id"] == ""
    assert 1195 <= body["data"]["ttl"] <= 1200  # capped by max_sts_ttl, counted from AWS's expiry


# --- proxying -------------------------------------------------------------------------------------

def test_unknown_paths_are_proxied_with_openbaos_status_and_body():
    via_front = call("GET", "sys/health", token=None)
    direct = call("GET", "sys/health", token=None, base=OPENBAO)
    assert via_front.status_code == direct.status_code == 200
    assert via_front.json()["version"] == direct.json()["version"]
    missing = call("GET", "secret/data/nothing-here", ROOT)
    assert missing.status_code == call("GET", "secret/data/nothing-here", ROOT, base=OPENBAO).status_code


def test_token_lookup_and_renewal_are_openbaos():
    looked = call("GET", "auth/token/lookup-self")
    assert looked.status_code == 200 and "jenkins" in looked.json()["data"]["policies"]
    renewed = call("POST", "auth/token/renew-self", body={})
    assert renewed.status_code == 200 and renewed.json()["auth"]["renewable"] is True


def test_namespace_header_is_passed_through():
    ns = f"pytest-{uuid.uuid4().hex[:6]}"
    created = call("POST", f"sys/namespaces/{ns}", ROOT, {})
    if created.status_code >= 400:
        pytest.skip(f"this OpenBao has no namespaces: {created.text[:100]}")
    try:
        header = {"X-Vault-Namespace": ns}
        policy = 'path "x" { capabilities = ["read"] }'
        assert call("PUT", "sys/policies/acl/in-ns", ROOT, {"policy": policy}, header).status_code == 204
        # visible in the namespace, not in root: the header reached OpenBao
        assert call("GET", "sys/policies/acl/in-ns", ROOT, headers=header, base=OPENBAO).status_code == 200
        assert call("GET", "sys/policies/acl/in-ns", ROOT, base=OPENBAO).status_code == 404
    finally:
        call("DELETE", "sys/policies/acl/in-ns", ROOT, headers={"X-Vault-Namespace": ns})
        call("DELETE", f"sys/namespaces/{ns}", ROOT)


# --- hygiene --------------------------------------------------------------------------------------

def test_front_log_holds_no_secret():
    data = call("POST", "aws/sts/ecr-push").json()["data"]
    call("GET", f"auth/token/lookup/{JENKINS}", ROOT)
    log = (HERE / ".run" / "front.log").read_text()
    for secret in (JENKINS, data["secret_key"],
                   data["session_token"], data["access_key"], ENV["VAULT_SECRET_ID"]):
        assert secret not in log
    assert "POST /v1/aws/sts/ecr-push 200" in log


def test_control_api_is_listed_and_answers_unknown_paths_with_404():
    assert requests.get(f"{CONTROL}/health", timeout=5).json()["ok"] is True
    assert requests.get(f"{CONTROL}/nope", timeout=5).status_code == 404


# --- JWT auth (tests play Jenkins' OIDC provider) --------------------------------------------------

def jwt_login(jwt: str):
    return call("POST", "auth/jwt/login", token=None, body={"role": ENV["WORLD_JWT_ROLE"], "jwt": jwt})


def test_jwt_login_with_a_minted_token_can_issue_credentials():
    from mint_jwt import mint

    login = jwt_login(mint(sub="job/deploy/42"))
    assert login.status_code == 200, login.text
    token = login.json()["auth"]["client_token"]
    assert call("POST", "aws/sts/ecr-push", token).status_code == 200
    assert call("POST", "aws/sts/forbidden", token).status_code == 403


@pytest.mark.parametrize("claims", [{"ttl": -120}, {"aud": "someone-else"}, {"iss": "https://evil.test"}])
def test_jwt_login_refuses_expired_or_foreign_tokens(claims):
    from mint_jwt import mint

    assert jwt_login(mint(**claims)).status_code in (400, 403)


# --- moto_server.py's STS fixes, in-process (no waiting 15 minutes for expiry) -----------------------

def test_moto_patches_refuse_expired_credentials_and_long_durations(monkeypatch):
    import datetime

    import moto_server
    from moto import mock_aws
    from moto.core import set_initial_no_auth_action_count
    from moto.sts.models import sts_backends

    moto_server.patch_assume_role()
    moto_server.patch_expiry()

    @set_initial_no_auth_action_count(4)
    def scenario():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="u")
        iam.put_user_policy(UserName="u", PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        iam.create_role(RoleName="r", MaxSessionDuration=3600, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/u"}}]}))
        key = iam.create_access_key(UserName="u")["AccessKey"]
        sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
        with pytest.raises(ClientError, match="MaxSessionDuration"):
            sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="ss", DurationSeconds=7200)
        with pytest.raises(ClientError, match="AccessDenied"):
            sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/missing", RoleSessionName="ss")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="ss",
                                DurationSeconds=900)["Credentials"]
        assumed = boto3.client("iam", region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                               aws_secret_access_key=creds["SecretAccessKey"],
                               aws_session_token=creds["SessionToken"])
        with pytest.raises(ClientError, match="AccessDenied"):  # valid key, role has no policy
            assumed.list_users()
        for role in sts_backends[ACCOUNT]["aws"].assumed_roles:
            role.expiration = datetime.datetime(2000, 1, 1)
        with pytest.raises(ClientError, match="ExpiredToken"):
            assumed.list_users()

    # In-process moto intercepts only AWS's own endpoint names: the world's AWS_ENDPOINT_URL would
    # send these calls to the world's moto server instead.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        scenario()


# --- TLS, Kubernetes TokenReview, namespace (for the core's auth tests) ----------------------

def test_tls_listener_is_the_same_front_with_the_dev_tls_ca():
    response = call("POST", "aws/sts/ecr-push", base=ENV["WORLD_TLS_ADDR"],
                    body={"role_session_name": "over-tls"}, verify=ENV["WORLD_TLS_CACERT"])
    assert response.status_code == 200, response.text
    assert response.json()["data"]["arn"].endswith("/over-tls")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{ENV['WORLD_TLS_ADDR']}/_world/health", timeout=10)
    health = requests.get(f"{ENV['WORLD_OPENBAO_TLS_ADDR']}/v1/sys/health",
                          verify=ENV["WORLD_TLS_CACERT"], timeout=10)
    assert health.status_code == 200


def test_token_review_vouches_only_for_tokens_the_world_signed():
    from mint_jwt import mint_k8s

    def review(token):
        response = requests.post(f"{CONTROL}/k8s/apis/authentication.k8s.io/v1/tokenreviews",
                                 json={"apiVersion": "authentication.k8s.io/v1",
                                       "kind": "TokenReview", "spec": {"token": token}},
                                 timeout=10)
        assert response.status_code == 201, response.text  # Kubernetes' "Created"
        return response.json()["status"]

    status = review(mint_k8s("ci/jenkins"))
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:ci:jenkins"
    assert review(mint_k8s("ci/jenkins", ttl=-60)) == {"authenticated": False,
                                                       "error": "token has expired"}
    head, body, _ = mint_k8s("ci/jenkins").split(".")
    assert review(f"{head}.{body}.forged")["authenticated"] is False


def test_kubernetes_login_binds_the_service_account():
    from mint_jwt import mint_k8s

    ok = call("POST", "auth/kubernetes/login", token=None,
              body={"role": ENV["WORLD_K8S_ROLE"], "jwt": mint_k8s("ci/jenkins")})
    assert ok.status_code == 200, ok.text
    assert "jenkins" in ok.json()["auth"]["policies"]
    other = call("POST", "auth/kubernetes/login", token=None,
                 body={"role": ENV["WORLD_K8S_ROLE"], "jwt": mint_k8s("ci/other")})
    assert other.status_code in (400, 403), other.text


def test_namespace_has_its_own_approle_and_engine_roles():
    ns = {"X-Vault-Namespace": ENV["WORLD_NAMESPACE"]}
    login = call("POST", "auth/approle/login", token=None, headers=ns,
                 body={"role_id": ENV["WORLD_NAMESPACE_ROLE_ID"],
                       "secret_id": ENV["WORLD_NAMESPACE_SECRET_ID"]})
    assert login.status_code == 200, login.text
    token = login.json()["auth"]["client_token"]
    issued = call("POST", "aws/sts/ecr-push", token=token, headers=ns,
                  body={"role_session_name": "in-team-a"})
    assert issued.status_code == 200, issued.text
    assert call("POST", "aws/sts/ecr-push", token=token).status_code == 403
