"""Mint a JWT that the world's OpenBao accepts at auth/jwt (role "jenkins").

Plays Jenkins' OIDC provider: signs with the RS256 key that `up` generated in .run/ and
registered in OpenBao. Tests choose the claims, including expired or wrong-audience tokens.

    python mint_jwt.py --sub job/deploy/42 > token.jwt
    python mint_jwt.py --ttl -60            # already expired
    python mint_jwt.py --aud someone-else   # refused by the role's bound_audiences
    python mint_jwt.py --k8s ci/jenkins     # a Kubernetes service-account token (auth/kubernetes)
"""

import argparse
import base64
import json
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

HERE = Path(__file__).resolve().parent
ISSUER = "https://jenkins.world.test/oidc"
AUDIENCE = "withawsrole"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(sub: str = "job/world/1", aud: str = AUDIENCE, ttl: int = 300, iss: str = ISSUER,
         extra: dict | None = None, key_file: Path = HERE / ".run" / "jwt-key.pem") -> str:
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    now = int(time.time())
    claims = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "nbf": now - 5, "exp": now + ttl,
              **(extra or {})}
    header = {"alg": "RS256", "typ": "JWT", "kid": "world"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def mint_k8s(account: str, ttl: int = 600) -> str:
    """A projected service-account token as the world's "cluster" issues it (NAMESPACE/NAME);
    the front's TokenReview endpoint vouches for it."""
    namespace, name = account.split("/", 1)
    return mint(sub=f"system:serviceaccount:{namespace}:{name}", iss="kubernetes/serviceaccount",
                ttl=ttl, extra={"aud": ["https://kubernetes.default.svc"], "kubernetes.io": {
                    "namespace": namespace,
                    "serviceaccount": {"name": name, "uid": f"uid-{namespace}-{name}"}}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sub", default="job/world/1")
    parser.add_argument("--aud", default=AUDIENCE)
    parser.add_argument("--iss", default=ISSUER)
    parser.add_argument("--ttl", type=int, default=300, help="seconds until exp; negative = expired")
    parser.add_argument("--claim", action="append", default=[], metavar="K=V")
    parser.add_argument("--k8s", metavar="NAMESPACE/NAME", help="a service-account token instead")
    args = parser.parse_args()
    if args.k8s:
        print(mint_k8s(args.k8s, args.ttl))
        return
    extra = dict(c.split("=", 1) for c in args.claim)
    print(mint(args.sub, args.aud, args.ttl, args.iss, extra))


if __name__ == "__main__":
    main()
