#!/usr/bin/env python3
"""Submit CDRs to roamclear straight over Kafka, signed with your partner key.

roamclear accepts a record on `roamclear.cdr.submitted` only with a proof of who sent it
(docs/ocpi.md, "Producing straight to Kafka"). This script is the whole recipe; copy it into
your own producer. It needs only `pip install aiokafka cryptography`.

    python produce_signed_cdr.py --bootstrap kafka.hub.example:9092 \\
        --key-id pk-5b0e6f1a2c3d --private-key tnm.pem --submitter NL*TNM cdr.json [...]

- the envelope wraps each CDR file's bytes as they are (numbers keep every digit);
- the signature is Ed25519 over b"roamclear-proof-v1\\n<topic>\\n<key id>\\n<value>";
- headers `roamclear-key` (the key id) and `roamclear-signature` (base64url, no padding).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def envelope(cdr: bytes, submitter: str) -> bytes:
    country_code, party_id = submitter.split("*")
    head = {
        "event_id": str(uuid.uuid4()),
        "type": "cdr.submitted",
        "version": 1,
        "occurred_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "submitter": {"country_code": country_code, "party_id": party_id},
    }
    return json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"cdr":' + cdr + b"}"


def sign(private_key: Ed25519PrivateKey, topic: str, key_id: str, value: bytes) -> bytes:
    message = b"\n".join((b"roamclear-proof-v1", topic.encode(), key_id.encode(), value))
    return base64.urlsafe_b64encode(private_key.sign(message)).rstrip(b"=")


def partition_key(cdr: bytes) -> bytes:
    """The canonical CDR key (a credit CDR: the key of the CDR it credits), so a CDR and its
    credit share a partition. roamclear re-keys anyway; this only keeps them in order."""
    parsed = json.loads(cdr)
    cdr_id = parsed.get("credit_reference_id") if parsed.get("credit") else parsed["id"]
    return "*".join((parsed["country_code"], parsed["party_id"], cdr_id)).upper().encode()


async def main(arguments: argparse.Namespace) -> int:
    loaded = load_pem_private_key(Path(arguments.private_key).read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        print(f"{arguments.private_key} is not an Ed25519 private key", file=sys.stderr)
        return 2
    producer = AIOKafkaProducer(bootstrap_servers=arguments.bootstrap, acks="all")
    await producer.start()
    try:
        for path in arguments.cdrs:
            cdr = Path(path).read_bytes().strip()
            value = envelope(cdr, arguments.submitter)
            signature = sign(loaded, arguments.topic, arguments.key_id, value)
            headers = [
                ("roamclear-key", arguments.key_id.encode()),
                ("roamclear-signature", signature),
            ]
            sent = await producer.send_and_wait(
                arguments.topic, value, key=partition_key(cdr), headers=headers
            )
            print(f"{path}: {arguments.topic}[{sent.partition}]@{sent.offset}")
    finally:
        await producer.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="roamclear.cdr.submitted")
    parser.add_argument("--key-id", required=True, help="from roamclear partners keys")
    parser.add_argument("--private-key", required=True, help="your Ed25519 private key, PEM")
    parser.add_argument("--submitter", required=True, help="your party, e.g. NL*TNM")
    parser.add_argument("cdrs", nargs="+", help="OCPI 2.2.1 CDR JSON files, one CDR each")
    sys.exit(asyncio.run(main(parser.parse_args())))
