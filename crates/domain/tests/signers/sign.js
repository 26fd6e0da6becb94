// Independent bitcoin signers for crates/domain/tests/independent_signers.rs: BIP-322 from
// bip322-js (simple; full built from bip322-js's own to_spend/to_sign construction and
// bitcoinjs-lib), BIP-137 from bitcoinjs-message (Bitcoin Core, Trezor and Electrum header
// styles). Keys from ecpair over @bitcoinerlab/secp256k1.
//
//   node sign.js keys            -> {"<kind>": [{"secret": WIF, "address": "..."}, x2]}
//   node sign.js sign < jobs     -> one object of named signatures per job
//                                   (jobs: [{"kind", "secret", "address", "message"}])
'use strict';

const bitcoin = require('bitcoinjs-lib');
const ecc = require('@bitcoinerlab/secp256k1');
const { ECPairFactory } = require('ecpair');
const bitcoinMessage = require('bitcoinjs-message');
const { Signer, Verifier, BIP322 } = require('bip322-js');

bitcoin.initEccLib(ecc);
const ECPair = ECPairFactory(ecc);
const network = bitcoin.networks.bitcoin;
const toXOnly = (pubkey) => pubkey.subarray(1, 33);

function address(kind, key) {
  const pubkey = key.publicKey;
  switch (kind) {
    case 'p2pkh':
    case 'p2pkh_uncompressed':
      return bitcoin.payments.p2pkh({ pubkey, network }).address;
    case 'p2wpkh':
      return bitcoin.payments.p2wpkh({ pubkey, network }).address;
    case 'p2sh_p2wpkh':
      return bitcoin.payments.p2sh({ redeem: bitcoin.payments.p2wpkh({ pubkey, network }), network }).address;
    case 'p2tr':
      return bitcoin.payments.p2tr({ internalPubkey: toXOnly(pubkey), network }).address;
    case 'p2wsh':
      return bitcoin.payments.p2wsh({
        redeem: bitcoin.payments.p2ms({ m: 1, pubkeys: [pubkey], network }),
        network,
      }).address;
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

const KINDS = ['p2pkh', 'p2pkh_uncompressed', 'p2wpkh', 'p2sh_p2wpkh', 'p2tr', 'p2wsh'];

function keys() {
  const out = {};
  for (const kind of KINDS) {
    out[kind] = [0, 1].map(() => {
      const key = ECPair.makeRandom({ compressed: kind !== 'p2pkh_uncompressed', network });
      return { secret: key.toWIF(), address: address(kind, key) };
    });
  }
  return out;
}

// A BIP-322 `to_sign` transaction signed and finalised the way bip322-js's Signer does it;
// `sighash` undefined gives Taproot's SIGHASH_DEFAULT (a 64-byte signature).
function signedToSign(key, addr, message, sighash) {
  const scriptPubKey = bitcoin.address.toOutputScript(addr, network);
  const toSpend = BIP322.buildToSpendTx(message, scriptPubKey);
  let toSign;
  let signer = key;
  if (addr.startsWith('3')) {
    const redeem = bitcoin.payments.p2wpkh({ pubkey: key.publicKey, network }).output;
    toSign = BIP322.buildToSignTx(toSpend.getId(), redeem, true);
  } else if (addr.startsWith('bc1q')) {
    toSign = BIP322.buildToSignTx(toSpend.getId(), scriptPubKey);
  } else {
    const internal = toXOnly(key.publicKey);
    signer = key.tweak(bitcoin.crypto.taggedHash('TapTweak', internal));
    toSign = BIP322.buildToSignTx(toSpend.getId(), scriptPubKey, false, internal);
    if (sighash !== undefined) {
      toSign.updateInput(0, { sighashType: sighash });
    }
  }
  const allowed = sighash === undefined ? undefined : [sighash];
  return toSign.signAllInputs(signer, allowed).finalizeAllInputs();
}

function sign(job) {
  const key = ECPair.fromWIF(job.secret, network);
  const m = job.message;
  const out = {};
  const priv = key.privateKey;
  switch (job.kind) {
    case 'p2pkh':
      out.bip137_core = Signer.sign(job.secret, job.address, m);
      break;
    case 'p2pkh_uncompressed':
      out.bip137_core_uncompressed = bitcoinMessage.sign(m, priv, false).toString('base64');
      break;
    case 'p2wpkh':
    case 'p2sh_p2wpkh': {
      out.bip322_simple = Signer.sign(job.secret, job.address, m);
      const tx = signedToSign(key, job.address, m, bitcoin.Transaction.SIGHASH_ALL).extractTransaction();
      out.bip322_full = tx.toBuffer().toString('base64');
      const segwitType = job.kind === 'p2wpkh' ? 'p2wpkh' : 'p2sh(p2wpkh)';
      out.bip137_trezor = bitcoinMessage.sign(m, priv, true, { segwitType }).toString('base64');
      out.bip137_electrum = bitcoinMessage.sign(m, priv, true).toString('base64');
      break;
    }
    case 'p2tr': {
      out.bip322_simple = Signer.sign(job.secret, job.address, m); // SIGHASH_ALL: 65 bytes
      const psbt = signedToSign(key, job.address, m, undefined);
      out.bip322_simple_64 = BIP322.encodeWitness(psbt);
      out.bip322_full = psbt.extractTransaction().toBuffer().toString('base64');
      break;
    }
    default:
      throw new Error(`cannot sign for ${job.kind}`);
  }
  // bip322-js's own verifier must accept what it signed (BIP-137 included).
  for (const [name, signature] of Object.entries(out)) {
    if (!name.endsWith('_full') && !Verifier.verifySignature(job.address, m, signature)) {
      throw new Error(`bip322-js refuses its own ${name} signature for ${job.address}`);
    }
  }
  return out;
}

function main() {
  const command = process.argv[2];
  if (command === 'keys') {
    process.stdout.write(JSON.stringify(keys()));
    return;
  }
  if (command === 'sign') {
    const jobs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
    process.stdout.write(JSON.stringify(jobs.map(sign)));
    return;
  }
  throw new Error('usage: node sign.js keys | sign < jobs.json');
}

main();
