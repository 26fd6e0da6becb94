"""Independent signers for crates/domain/tests/independent_signers.rs.

EIP-191 with eth-account, TRON signMessageV2 with tronpy, ed25519 with PyNaCl (the Solana
off-chain envelopes are built here from their published layouts), Lightning signmessage with
coincurve (z-base-32 written here from its specification).

    python sign.py keys          -> {"<kind>": [{"secret": hex, "address": "..."}, x2]}
    python sign.py sign < jobs   -> one object of named signatures per job
                                    (jobs: [{"kind", "secret", "address", "message"}])
"""

import base64
import hashlib
import json
import os
import sys

import base58
import coincurve
import nacl.signing
from eth_account import Account
from eth_account.messages import encode_defunct
from tronpy.keys import PrivateKey as TronKey

SOLANA_SIGNING_DOMAIN = b"\xffsolana offchain"
ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32(data: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(ZBASE32[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def new_key(kind):
    secret = os.urandom(32)
    if kind == "eth":
        address = Account.from_key(secret).address
    elif kind == "tron":
        address = TronKey(secret).public_key.to_base58check_address()
    elif kind == "sol":
        verify_key = nacl.signing.SigningKey(secret).verify_key
        address = base58.b58encode(bytes(verify_key)).decode()
    elif kind == "ln":
        address = coincurve.PrivateKey(secret).public_key.format(compressed=True).hex()
    else:
        raise ValueError(kind)
    return {"secret": secret.hex(), "address": address}


def sign(job):
    secret = bytes.fromhex(job["secret"])
    message = job["message"].encode()
    kind = job["kind"]
    if kind == "eth":
        signed = Account.sign_message(encode_defunct(primitive=message), private_key=secret)
        sig = bytes(signed.signature)
        assert sig[64] in (27, 28)
        return {
            "eip191_v27": "0x" + sig.hex(),
            "eip191_v01": sig[:64].hex() + bytes([sig[64] - 27]).hex(),
        }
    if kind == "tron":
        sig = TronKey(secret).sign_msg(message)
        raw = bytes.fromhex(sig.hex())
        assert raw[64] in (0, 1)
        return {
            "tron_v01": raw.hex(),
            "tron_v27": "0x" + raw[:64].hex() + bytes([raw[64] + 27]).hex(),
        }
    if kind == "sol":
        key = nacl.signing.SigningKey(secret)
        signer = bytes(key.verify_key)
        length = len(message).to_bytes(2, "little")
        earlier = lambda fmt: SOLANA_SIGNING_DOMAIN + bytes([0, fmt]) + length + message
        anza = (
            SOLANA_SIGNING_DOMAIN
            + bytes([0])  # header version
            + bytes(32)  # application domain
            + bytes([0, 1])  # format 0, one signer
            + signer
            + length
            + message
        )
        sig = lambda payload: key.sign(payload).signature
        return {
            "raw_base58": base58.b58encode(sig(message)).decode(),
            "raw_base64": base64.b64encode(sig(message)).decode(),
            "earlier_f0_base58": base58.b58encode(sig(earlier(0))).decode(),
            "earlier_f1_base64": base64.b64encode(sig(earlier(1))).decode(),
            "anza_base58": base58.b58encode(sig(anza)).decode(),
            # An Anza envelope under an application domain of the signer's choosing: valid,
            # but not rebuildable from the proof alone.
            "anza_other_domain_base58": base58.b58encode(
                sig(anza[:17] + b"\x01" * 32 + anza[49:])
            ).decode(),
        }
    if kind == "ln":
        digest = hashlib.sha256(
            hashlib.sha256(b"Lightning Signed Message:" + message).digest()
        ).digest()
        rsv = coincurve.PrivateKey(secret).sign_recoverable(digest, hasher=None)
        r_s, recid = rsv[:64], rsv[64]
        return {
            "zbase_31": zbase32(bytes([31 + recid]) + r_s),
            "zbase_27": zbase32(bytes([27 + recid]) + r_s),
        }
    raise ValueError(kind)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "keys":
        print(json.dumps({k: [new_key(k), new_key(k)] for k in ("eth", "tron", "sol", "ln")}))
    elif command == "sign":
        print(json.dumps([sign(job) for job in json.load(sys.stdin)]))
    else:
        sys.exit("usage: python sign.py keys | sign < jobs.json")


main()
