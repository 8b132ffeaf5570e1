"""Write the generated seeds of ``tests/fuzz/seeds/`` (run once; the output is committed).

The conformance data has no COSE envelope and no RFC 3161 token, so this makes them the way a
signer does: a Notation JWS and COSE envelope, each countersigned by an ``openssl ts`` TSA (an
independent implementation), the token alone, and the CA and TSA roots they verify against.

    .venv/bin/python -m tests.fuzz.make_seeds
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.notation_signing import (
    issue,
    make_ca,
    openssl_stamper,
    sign_cose,
    sign_jws,
    target,
)

SEEDS = Path(__file__).resolve().parent / "seeds"
#: The digest and size every generated envelope signs (the image manifest served by targets).
IMAGE_MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'


def main() -> None:
    SEEDS.mkdir(exist_ok=True)
    ca, tsa_ca = make_ca("fuzz seed CA", days=36500), make_ca("fuzz seed TSA CA", days=36500)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=36000)
    signer = issue(ca, "fuzz seed signer", end=end)
    tsa = issue(tsa_ca, "fuzz seed TSA", end=end, eku=ExtendedKeyUsageOID.TIME_STAMPING)
    stamp = openssl_stamper(tsa)
    payload = target("sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest(), len(IMAGE_MANIFEST))
    (SEEDS / "notation.jws.json").write_bytes(sign_jws(signer, payload, stamp=stamp))
    (SEEDS / "notation.cose").write_bytes(sign_cose(signer, payload, stamp=stamp))
    (SEEDS / "rfc3161.token.der").write_bytes(stamp(b"fuzz seed signature"))
    (SEEDS / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (SEEDS / "tsa-ca.pem").write_bytes(tsa_ca.cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main()
