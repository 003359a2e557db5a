"""Run moto's server with three fidelity fixes for STS and one for IAM, then hand over to moto.

moto is the world's AWS. It enforces signatures and IAM policies in auth mode, but its STS
is lenient where real AWS is strict, and our client must meet the strict behaviour:

1. AssumeRole on a role that does not exist succeeds in moto; AWS says AccessDenied.
2. AssumeRole ignores the role's MaxSessionDuration and the 900 s minimum; AWS refuses both
   with ValidationError (the error a too-long Vault ttl produces in real life).
3. Assumed-role credentials never expire in moto; AWS answers ExpiredToken after expiry.
4. moto checks IAM actions against the resource `*` only, so a policy granting a user its own
   key management (Resource = the user's ARN, as Vault's rotate-root needs) is never matched;
   AWS checks the user the request is about (UserName, else the caller).

Each patch checks that the moto internals it wraps still exist, so a moto upgrade that moves
them fails loudly at start instead of silently dropping a check.

Usage: python moto_server.py -H 127.0.0.1 -p 18203   (same arguments as moto_server)
"""

import sys

from moto.core.exceptions import _RESTError
from moto.core.utils import utcnow
from moto.iam import access_control
from moto.iam.models import iam_backends
from moto.sts import models as sts_models
from moto.sts import responses as sts_responses
from moto.sts.exceptions import STSValidationError
from moto.utilities.utils import get_partition

MIN_DURATION_SECONDS = 900


class AssumeRoleAccessDenied(_RESTError):
    code = 403

    def __init__(self, caller_arn: str, role_arn: str):
        super().__init__(
            "AccessDenied",
            f"User: {caller_arn} is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}",
        )


class ExpiredTokenError(_RESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__("ExpiredToken", "The security token included in the request is expired")


def _caller_arn(response) -> str:
    """ARN of the IAM user whose access key signed this request (best effort)."""
    auth = response.headers.get("Authorization", "")
    key_id = auth.partition("Credential=")[2].partition("/")[0]
    try:
        for user in iam_backends[response.current_account][get_partition(response.region)].users.values():
            for key in user.access_keys:
                if key.access_key_id == key_id:
                    return user.arn
    except Exception:  # noqa: BLE001 - only decorates an error message
        pass
    return f"arn:aws:iam::{response.current_account}:user/unknown"


def patch_assume_role() -> None:
    original = sts_responses.TokenResponse.assume_role

    def assume_role(self):
        role_arn = self._get_param("RoleArn") or ""
        duration = self._get_int_param("DurationSeconds", 3600)
        account_id = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        role = None
        try:
            role = iam_backends[account_id][get_partition(self.region)].get_role_by_arn(role_arn)
        except Exception:  # noqa: BLE001 - moto raises its own NotFound types
            role = None
        if role is None:
            raise AssumeRoleAccessDenied(_caller_arn(self), role_arn)
        if duration < MIN_DURATION_SECONDS:
            raise STSValidationError(
                f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
                f"satisfy constraint: Member must have value greater than or equal to {MIN_DURATION_SECONDS}"
            )
        if duration > int(role.max_session_duration or 3600):
            raise STSValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        return original(self)

    sts_responses.TokenResponse.assume_role = assume_role


def patch_expiry() -> None:
    original_init = access_control.AssumedRoleAccessKey.__init__

    def init(self, account_id, partition, access_key_id, headers):
        original_init(self, account_id, partition, access_key_id, headers)
        for assumed in sts_models.sts_backends[account_id][partition].assumed_roles:
            if assumed.access_key_id == access_key_id and utcnow() >= assumed.expiration:
                raise ExpiredTokenError()

    access_control.AssumedRoleAccessKey.__init__ = init


# IAM actions on a user's keys, whose resource is that user (AWS's service authorization reference).
USER_KEY_ACTIONS = {"iam:GetUser", "iam:CreateAccessKey", "iam:DeleteAccessKey",
                    "iam:ListAccessKeys", "iam:UpdateAccessKey"}


def patch_iam_user_resources() -> None:
    original = access_control.IAMRequestBase.check_action_permitted

    def check_action_permitted(self, resource):
        if resource == "*" and self._action in USER_KEY_ACTIONS:
            name = self._data.get("UserName")
            name = name[0] if isinstance(name, list) else name
            if name:
                try:
                    resource = self.backend.get_user(name).arn
                except Exception:  # noqa: BLE001 - a missing user: the ARN it would have
                    resource = f"arn:{get_partition(self._region)}:iam::{self.account_id}:user/{name}"
            else:
                resource = self._access_key.arn
        return original(self, resource)

    access_control.IAMRequestBase.check_action_permitted = check_action_permitted


def main() -> None:
    # Fail at start if moto moved what we wrap (see module docstring).
    assert hasattr(sts_responses.TokenResponse, "assume_role")
    assert hasattr(access_control.AssumedRoleAccessKey, "__init__")
    assert hasattr(sts_models.STSBackend, "assume_role")
    assert hasattr(access_control.IAMRequestBase, "check_action_permitted")
    patch_assume_role()
    patch_expiry()
    patch_iam_user_resources()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
