# Drives Sovra's Key Vault-compatible API with the unmodified azure-keyvault-keys SDK (PyPI)
# and only its public calls: a custom credential returns a Sovra API token, the client trusts
# Sovra's CA, and verify_challenge_resource is off (the vault is on 127.0.0.1).
# Usage: keyvault.py PHASE INPUT_JSON
#   PHASE main:  every key operation, soft delete and recover, release, roles, a second vault.
#   PHASE purge: after the organisation's destroy-scheduled duration was set to 0s: delete,
#                purge and reuse of the name.
# Prints "ok <check>" per check and exits 1 if any failed.
import base64, hashlib, json, sys, time

from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyCurveName,
    KeyReleasePolicy,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
)
from azure.keyvault.keys.crypto import (
    CryptographyClient,
    EncryptionAlgorithm,
    KeyWrapAlgorithm,
    SignatureAlgorithm,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

phase = sys.argv[1]
cfg = json.load(open(sys.argv[2]))
failed = []


def check(name, cond, detail=""):
    if cond:
        print("ok", name)
    else:
        print("FAIL", name, detail)
        failed.append(name)


def raises(name, exc, fn, status=None, code=None):
    try:
        fn()
    except exc as e:
        got = getattr(getattr(e, "error", None), "code", None)
        st = getattr(e, "status_code", None)
        ok = (status is None or st == status) and (code is None or got == code)
        check(name, ok, f"status {st} code {got}: {e}")
        return
    except Exception as e:  # noqa: BLE001
        check(name, False, f"raised {type(e).__name__}: {e}")
        return
    check(name, False, "did not raise")


class SovraToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kw):
        return AccessToken(self.token, int(time.time()) + 3600)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def client(url, token):
    return KeyClient(url, SovraToken(token), verify_challenge_resource=False, connection_verify=cfg["ca"])


def crypto(key, token):
    return CryptographyClient(key, SovraToken(token), verify_challenge_resource=False, connection_verify=cfg["ca"])


admin = cfg["admin"]
kc = client(cfg["url"], admin)

if phase == "purge":
    k = kc.create_ec_key("short-lived", curve=KeyCurveName.p_256)
    kc.begin_delete_key("short-lived").result()
    kc.purge_deleted_key("short-lived")
    check("purged key is gone", not [d for d in kc.list_deleted_keys() if d.name == "short-lived"])
    raises("purged key is not a deleted key", ResourceNotFoundError, lambda: kc.get_deleted_key("short-lived"))
    again = kc.create_ec_key("short-lived", curve=KeyCurveName.p_256)
    check("a purged name is free again", again.properties.version == "1" and again.id != "", again.id)
    sys.exit(1 if failed else 0)

# --- create, of every type Sovra has ---
enc = kc.create_rsa_key("rsa-enc", size=2048)
check("RSA encryption key", enc.key_type == "RSA" and set(enc.key_operations) >= {"decrypt", "unwrapKey"} and len(enc.key.n) == 256, enc.key_operations)
sig = kc.create_rsa_key("rsa-sign", size=3072, key_operations=["sign", "verify"])
check("RSA signing key", sorted(sig.key_operations) == ["sign", "verify"] and len(sig.key.n) == 384)
ec256 = kc.create_ec_key("ec256", curve=KeyCurveName.p_256)
ec384 = kc.create_ec_key("ec384", curve=KeyCurveName.p_384, hardware_protected=True)
check("EC keys", ec256.key.crv == "P-256" and len(ec256.key.x) == 32 and ec384.key.crv == "P-384" and ec384.key_type == "EC-HSM", ec384.key_type)
aes = kc.create_oct_key("aes", size=256, tags={"Owner": "Team A"})
check("oct key has no material", aes.key_type == "oct" and not aes.key.k and aes.properties.tags == {"Owner": "Team A"})
raises("P-521 is refused as not supported", HttpResponseError, lambda: kc.create_ec_key("ec521", curve=KeyCurveName.p_521), 400, "NotSupported")

raises("a missing key is ResourceNotFoundError", ResourceNotFoundError, lambda: kc.get_key("no-such-key"), 404, "KeyNotFound")
raises("a wrong token is ClientAuthenticationError", ClientAuthenticationError, lambda: client(cfg["url"], "sovra_0000000000000000_wrong").get_key("ec256"))

# --- get and list (paging by nextLink) ---
got = kc.get_key("ec256")
check("get by name is the current version", got.id == ec256.id and got.key.x == ec256.key.x)
check("get by version", kc.get_key("ec256", ec256.properties.version).id == ec256.id)
names = sorted(p.name for p in kc.list_properties_of_keys(max_page_size=2))
check("list pages through every key", names == ["aes", "ec256", "ec384", "rsa-enc", "rsa-sign"], names)

# --- operations: SDK-side public operations, server-side private ones ---
ce = crypto(enc, admin)
ct = ce.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"a secret")
check("RSA-OAEP-256 round trip", ce.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct.ciphertext).plaintext == b"a secret")
w = ce.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"K" * 32)
check("wrap and unwrap", ce.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == b"K" * 32)
ct1 = ce.encrypt(EncryptionAlgorithm.rsa_oaep, b"sha-1 default")
check("RSA-OAEP (SHA-1, the SDKs' default) round trip", ce.decrypt(EncryptionAlgorithm.rsa_oaep, ct1.ciphertext).plaintext == b"sha-1 default")
w1 = ce.wrap_key(KeyWrapAlgorithm.rsa_oaep, b"W" * 32)
check("RSA-OAEP wrap and unwrap", ce.unwrap_key(KeyWrapAlgorithm.rsa_oaep, w1.encrypted_key).key == b"W" * 32)
# RSA1_5: the SDK encrypts and wraps locally, the vault decrypts with implicit rejection (an
# altered ciphertext gives a stable, different message instead of an error: no padding oracle).
c15 = ce.encrypt(EncryptionAlgorithm.rsa1_5, b"legacy client")
check("RSA1_5 round trip", ce.decrypt(EncryptionAlgorithm.rsa1_5, c15.ciphertext).plaintext == b"legacy client")
w15 = ce.wrap_key(KeyWrapAlgorithm.rsa1_5, b"L" * 32)
check("RSA1_5 wrap and unwrap", ce.unwrap_key(KeyWrapAlgorithm.rsa1_5, w15.encrypted_key).key == b"L" * 32)
altered = bytes([c15.ciphertext[0] ^ 1]) + c15.ciphertext[1:]
once, twice = (ce.decrypt(EncryptionAlgorithm.rsa1_5, altered).plaintext for _ in range(2))
check("an altered RSA1_5 ciphertext decrypts to a stable other message, not an error", once == twice and once != b"legacy client", once)
oaep_as_15 = ce.decrypt(EncryptionAlgorithm.rsa1_5, ct.ciphertext).plaintext
check("an OAEP ciphertext read as RSA1_5 is answered the same way", oaep_as_15 != b"a secret")

digest = hashlib.sha256(b"message").digest()
c256 = crypto(ec256, admin)
s = c256.sign(SignatureAlgorithm.es256, digest)
pub = ec.EllipticCurvePublicNumbers(int.from_bytes(ec256.key.x, "big"), int.from_bytes(ec256.key.y, "big"), ec.SECP256R1()).public_key()
r, sv = int.from_bytes(s.signature[:32], "big"), int.from_bytes(s.signature[32:], "big")
try:
    pub.verify(encode_dss_signature(r, sv), b"message", ec.ECDSA(hashes.SHA256()))
    independent = True
except Exception:  # noqa: BLE001
    independent = False
check("ES256 is raw r||s and verifies with the JWK", len(s.signature) == 64 and independent)
check("SDK verify", c256.verify(SignatureAlgorithm.es256, digest, s.signature).is_valid)
check("SDK verify refuses another digest", not c256.verify(SignatureAlgorithm.es256, hashlib.sha256(b"other").digest(), s.signature).is_valid)
s384 = crypto(ec384, admin).sign(SignatureAlgorithm.es384, hashlib.sha384(b"m").digest())
check("ES384 in the HSM", len(s384.signature) == 96 and crypto(ec384, admin).verify(SignatureAlgorithm.es384, hashlib.sha384(b"m").digest(), s384.signature).is_valid)
cs = crypto(sig, admin)
rs = cs.sign(SignatureAlgorithm.rs256, digest)
rpub = rsa.RSAPublicNumbers(int.from_bytes(sig.key.e, "big"), int.from_bytes(sig.key.n, "big")).public_key()
rpub.verify(rs.signature, b"message", padding.PKCS1v15(), hashes.SHA256())
check("RS256 verifies with the JWK", True)
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
every_rsa = True
for sa, h in ((SignatureAlgorithm.ps256, hashes.SHA256()), (SignatureAlgorithm.ps384, hashes.SHA384()), (SignatureAlgorithm.ps512, hashes.SHA512()),
              (SignatureAlgorithm.rs384, hashes.SHA384()), (SignatureAlgorithm.rs512, hashes.SHA512())):
    hd = hashlib.new(h.name, b"message").digest()
    sg = cs.sign(sa, hd).signature
    pad = padding.PKCS1v15() if sa.value.startswith("RS") else padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
    try:
        rpub.verify(sg, hd, pad, Prehashed(h))
    except Exception as e:  # noqa: BLE001
        every_rsa = False
        print("  ", sa, e)
    every_rsa = every_rsa and cs.verify(sa, hd, sg).is_valid
check("one RSA key signs RS256 to PS512, each verifiable with its JWK", every_rsa)
raises("ES256 on an RSA key is refused", HttpResponseError, lambda: cs.sign(SignatureAlgorithm.es256, digest), 400)

ca = crypto(aes, admin)
g = ca.encrypt(EncryptionAlgorithm.a256_gcm, b"plain", additional_authenticated_data=b"context")
check("A256GCM gives iv and tag", len(g.iv) == 12 and len(g.tag) == 16)
check("A256GCM round trip", ca.decrypt(EncryptionAlgorithm.a256_gcm, g.ciphertext, iv=g.iv, authentication_tag=g.tag, additional_authenticated_data=b"context").plaintext == b"plain")
raises("A256GCM with another AAD fails", HttpResponseError, lambda: ca.decrypt(EncryptionAlgorithm.a256_gcm, g.ciphertext, iv=g.iv, authentication_tag=g.tag, additional_authenticated_data=b"other"), 400)
r1, r2 = kc.get_random_bytes(32), kc.get_random_bytes(32)
check("random bytes", len(r1) == 32 and r1 != r2)

# --- rotate, versions, update ---
old_sig = c256.sign(SignatureAlgorithm.es256, digest).signature
rot = kc.rotate_key("ec256")
check("rotate makes a new current version", rot.properties.version != ec256.properties.version and kc.get_key("ec256").id == rot.id)
versions = sorted(p.version for p in kc.list_properties_of_key_versions("ec256", max_page_size=1))
check("versions list pages", versions == ["1", "2"], versions)
check("the old version still verifies", crypto(ec256, admin).verify(SignatureAlgorithm.es256, digest, old_sig).is_valid)
upd = kc.update_key_properties("aes", enabled=False, tags={"Owner": "Team B"})
check("disable and retag", upd.properties.enabled is False and upd.properties.tags == {"Owner": "Team B"})
raises("a disabled key refuses to encrypt", HttpResponseError, lambda: ca.encrypt(EncryptionAlgorithm.a256_gcm, b"x"), 403, "Forbidden")
check("enable again", kc.update_key_properties("aes", enabled=True).properties.enabled is True)

# --- activation and expiry dates are kept and enforced ---
import datetime
utc = datetime.timezone.utc
dated = kc.create_oct_key("dated", size=256, expires_on=datetime.datetime(2099, 1, 1, tzinfo=utc))
check("an expiry date is kept", dated.properties.expires_on == datetime.datetime(2099, 1, 1, tzinfo=utc), dated.properties.expires_on)
cd = crypto(dated, admin)
before = cd.encrypt(EncryptionAlgorithm.a256_gcm, b"made before expiry")
past = datetime.datetime.now(utc) - datetime.timedelta(hours=1)
kc.update_key_properties("dated", expires_on=past)
raises("an expired key no longer encrypts", HttpResponseError, lambda: cd.encrypt(EncryptionAlgorithm.a256_gcm, b"x"), 403, "Forbidden")
check("an expired key still decrypts", cd.decrypt(EncryptionAlgorithm.a256_gcm, before.ciphertext, iv=before.iv, authentication_tag=before.tag).plaintext == b"made before expiry")
kc.update_key_properties("dated", not_before=datetime.datetime.now(utc) + datetime.timedelta(hours=1), expires_on=datetime.datetime(2099, 1, 1, tzinfo=utc))
raises("before its activation time a key does nothing", HttpResponseError, lambda: cd.decrypt(EncryptionAlgorithm.a256_gcm, before.ciphertext, iv=before.iv, authentication_tag=before.tag), 403, "Forbidden")
raises("an expiry before the activation time is refused", HttpResponseError, lambda: kc.update_key_properties("dated", expires_on=datetime.datetime(2000, 1, 1, tzinfo=utc)), 400)

# --- soft delete and recover ---
deleted = kc.begin_delete_key("rsa-sign").result()
check("delete is recoverable", deleted.recovery_id.endswith("/deletedkeys/rsa-sign") and deleted.scheduled_purge_date > deleted.deleted_date, deleted.recovery_id)
raises("a deleted key is not found", ResourceNotFoundError, lambda: kc.get_key("rsa-sign"))
check("deleted keys list it", [d.name for d in kc.list_deleted_keys()] == ["rsa-sign"])
raises("its name cannot be reused while recoverable", ResourceExistsError, lambda: kc.create_rsa_key("rsa-sign", size=3072, key_operations=["sign"]))
raises("purge before its retention ends is refused", HttpResponseError, lambda: kc.purge_deleted_key("rsa-sign"), 403, "Forbidden")
rec = kc.begin_recover_deleted_key("rsa-sign").result()
check("recover brings it back as it was", rec.id == sig.id and crypto(rec, admin).verify(SignatureAlgorithm.rs256, digest, rs.signature).is_valid)

# --- secure key release to an attested TEE ---
policy = json.dumps(cfg["release_policy"]).encode()
exp = kc.create_rsa_key("exportable", size=2048, hardware_protected=True, exportable=True, release_policy=KeyReleasePolicy(policy))
check("exportable key keeps its policy", exp.properties.exportable and json.loads(exp.properties.release_policy.encoded_policy) == cfg["release_policy"])
rel = kc.release_key("exportable", cfg["release_token"])
payload = json.loads(b64d(rel.value.split(".")[1]))
key_hsm = json.loads(b64d(payload["response"]["key"]["key"]["key_hsm"]))
blob = b64d(key_hsm["ciphertext"])
tee = serialization.load_pem_private_key(cfg["tee_key_pem"].encode(), None)
n = tee.key_size // 8
transfer = tee.decrypt(blob[:n], padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
released = serialization.load_der_private_key(aes_key_unwrap_with_padding(transfer, blob[n:]), None)
check("the released key is the vault's key", released.public_key().public_numbers().n == int.from_bytes(exp.key.n, "big"))
rel_v = kc.release_key("exportable", cfg["release_token"], version=exp.properties.version)
check("release of a named version", len(rel_v.value.split(".")) == 3)
raises("a key that is not exportable is not released", HttpResponseError, lambda: kc.release_key("rsa-enc", cfg["release_token"]), 403, "Forbidden")

# --- roles: a crypto user uses keys but does not manage them ---
user = client(cfg["url"], cfg["user"])
raises("a crypto user cannot create keys", HttpResponseError, lambda: user.create_ec_key("by-user"), 403, "Forbidden")
us = crypto(user.get_key("ec256"), cfg["user"]).sign(SignatureAlgorithm.es256, digest)
check("a crypto user signs", len(us.signature) == 64)
raises("a crypto user cannot delete", HttpResponseError, lambda: user.begin_delete_key("ec256").result(), 403, "Forbidden")

# --- key_ops: a key limited to some of its operations, at creation or by an update ---
wrap_only = kc.create_rsa_key("rsa-wrap-only", size=2048, key_operations=["wrapKey", "unwrapKey"])
check("a key created for wrapping lists only that", sorted(wrap_only.key_operations) == ["unwrapKey", "wrapKey"], wrap_only.key_operations)
cw = crypto(wrap_only, admin)
ww = cw.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"D" * 32)
check("it wraps and unwraps", cw.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, ww.encrypted_key).key == b"D" * 32)
raises("it does not decrypt", HttpResponseError, lambda: cw.decrypt(EncryptionAlgorithm.rsa_oaep_256, ww.encrypted_key), 403, "Forbidden")
narrowed = kc.update_key_properties("aes", key_operations=["encrypt"])
check("an update narrows a key", narrowed.key_operations == ["encrypt"], narrowed.key_operations)
sealed = ca.encrypt(EncryptionAlgorithm.a256_gcm, b"write only")
open_sealed = lambda: ca.decrypt(EncryptionAlgorithm.a256_gcm, sealed.ciphertext, iv=sealed.iv, authentication_tag=sealed.tag)
raises("a narrowed key refuses what was taken away", HttpResponseError, open_sealed, 403, "Forbidden")
raises("a crypto user cannot widen it", HttpResponseError, lambda: user.update_key_properties("aes", key_operations=["encrypt", "decrypt"]), 403, "Forbidden")
raises("an operation the key type lacks is refused", HttpResponseError, lambda: kc.update_key_properties("aes", key_operations=["sign"]), 400, "BadParameter")
widened = kc.update_key_properties("aes", key_operations=["decrypt", "encrypt"])
check("an officer widens it again", sorted(widened.key_operations) == ["decrypt", "encrypt"] and open_sealed().plaintext == b"write only", widened.key_operations)

# --- a second vault on the same server is another key ring ---
other = client(cfg["second_url"], admin)
check("the second vault starts empty", list(other.list_properties_of_keys()) == [])
o = other.create_ec_key("ec256", curve=KeyCurveName.p_256)
check("same name, another key", o.id.startswith(cfg["second_url"]) and o.key.x != kc.get_key("ec256").key.x)

check("a key not in the second vault is not found there", not [k for k in other.list_properties_of_keys() if k.name == "aes"])

# --- backup, and restore into the second vault ---
blob = kc.backup_key("rsa-enc")
restored = other.restore_key_backup(blob)
check("restore into another vault keeps the key", restored.id.startswith(cfg["second_url"] + "/keys/rsa-enc/") and restored.key.n == enc.key.n)
check("the restored key decrypts what the original's public key encrypted", crypto(restored, admin).decrypt(EncryptionAlgorithm.rsa_oaep_256, ct.ciphertext).plaintext == b"a secret")
raises("restoring over an existing key is a conflict", ResourceExistsError, lambda: other.restore_key_backup(blob))
raises("an altered backup is refused", HttpResponseError, lambda: kc.restore_key_backup(blob[:-1] + bytes([blob[-1] ^ 1])), 400, "BadParameter")

# --- import: keys made elsewhere, as JWKs ---
def b(i, n):
    return i.to_bytes(n, "big")
rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pn = rk.private_numbers()
jwk = JsonWebKey(kty="RSA", key_ops=["decrypt", "encrypt"], n=b(pn.public_numbers.n, 256), e=b(pn.public_numbers.e, 3), d=b(pn.d, 256), p=b(pn.p, 128), q=b(pn.q, 128), dp=b(pn.dmp1, 128), dq=b(pn.dmq1, 128), qi=b(pn.iqmp, 128))
imp = kc.import_key("imported-rsa", jwk, hardware_protected=True)
check("an imported RSA key is the one given", imp.key.n == b(pn.public_numbers.n, 256) and imp.key_type == "RSA-HSM", imp.key_type)
ict = rk.public_key().encrypt(b"for the vault", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
check("the vault decrypts with the imported key", crypto(imp, admin).decrypt(EncryptionAlgorithm.rsa_oaep_256, ict).plaintext == b"for the vault")
ek = ec.generate_private_key(ec.SECP256R1())
en = ek.private_numbers()
eimp = kc.import_key("imported-ec", JsonWebKey(kty="EC", crv="P-256", d=b(en.private_value, 32), x=b(en.public_numbers.x, 32), y=b(en.public_numbers.y, 32)))
esig = crypto(eimp, admin).sign(SignatureAlgorithm.es256, digest).signature
ek.public_key().verify(encode_dss_signature(int.from_bytes(esig[:32], "big"), int.from_bytes(esig[32:], "big")), b"message", ec.ECDSA(hashes.SHA256()))
check("the imported EC key signs", True)
again = kc.import_key("imported-ec", JsonWebKey(kty="EC", crv="P-256", d=b(en.private_value, 32), x=b(en.public_numbers.x, 32), y=b(en.public_numbers.y, 32)))
check("importing again makes a new current version", again.properties.version == "2")
bad_point = JsonWebKey(kty="EC", crv="P-256", d=b(en.private_value, 32), x=b(en.public_numbers.x, 32), y=b(en.public_numbers.y ^ 1, 32))
raises("a JWK whose parts do not match is refused", HttpResponseError, lambda: kc.import_key("imported-bad", bad_point), 400)
raises("and leaves no key behind", ResourceNotFoundError, lambda: kc.get_key("imported-bad"))

# --- AES key wrap: an oct key made for wrapKey/unwrapKey. The vault unwraps what the
# cryptography library wrapped with the key's own bytes (imported, so the test knows them):
# A256KW and CKM_AES_KEY_WRAP are RFC 3394, CKM_AES_KEY_WRAP_PAD RFC 5649; and what the vault
# wrapped unwraps with those bytes. (azure-keyvault-keys 4.11.3 does A128/192/256KW "locally"
# under a random key, since no vault returns an oct key's k; it sends the CKM_ names to the
# vault, and the Rust test checks A256KW over REST.) ---
import os
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_unwrap_with_padding, aes_key_wrap, aes_key_wrap_with_padding

kw_bytes = os.urandom(32)
kw = kc.import_key("kw-known", JsonWebKey(kty="oct", k=kw_bytes, key_ops=["wrapKey", "unwrapKey"]))
check("an oct key for wrapping lists wrapKey and unwrapKey", kw.key_operations == ["wrapKey", "unwrapKey"], kw.key_operations)
kwc = crypto(kw, admin)
dek = os.urandom(32)
for alg in (KeyWrapAlgorithm.aes_256, KeyWrapAlgorithm.ckm_aes_key_wrap):
    check(f"the vault unwraps {alg.value} as RFC 3394", kwc.unwrap_key(alg, aes_key_wrap(kw_bytes, dek)).key == dek)
odd = b"a 21-byte key to wrap"
w = kwc.wrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap, dek)
check("the vault wraps CKM_AES_KEY_WRAP as RFC 3394", aes_key_unwrap(kw_bytes, w.encrypted_key) == dek)
w = kwc.wrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap_pad, odd)
check("the vault wraps CKM_AES_KEY_WRAP_PAD as RFC 5649", aes_key_unwrap_with_padding(kw_bytes, w.encrypted_key) == odd)
check("the vault unwraps CKM_AES_KEY_WRAP_PAD as RFC 5649", kwc.unwrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap_pad, aes_key_wrap_with_padding(kw_bytes, odd)).key == odd)
w = aes_key_wrap(kw_bytes, dek)
raises("an altered wrap is refused", HttpResponseError, lambda: kwc.unwrap_key(KeyWrapAlgorithm.aes_256, bytes([w[0] ^ 1]) + w[1:]), 400)
made = kc.create_oct_key("kw-made", hardware_protected=True, key_operations=["wrapKey", "unwrapKey"])
check("a created wrapping key is one", made.key_operations == ["wrapKey", "unwrapKey"] and made.key.kty == "oct-HSM", made.key_operations)

# --- BYOK: a KEK made in the vault, a .byok blob made outside it as the vendors' tools do ---
kek = kc.create_rsa_key("kek", size=4096, hardware_protected=True, key_operations=["import"])
check("a KEK has only the import operation", kek.key_operations == ["import"] and len(kek.key.n) == 512, kek.key_operations)
check("a KEK can be read back", kc.get_key("kek").key.n == kek.key.n)
kek_pub = rsa.RSAPublicNumbers(int.from_bytes(kek.key.e, "big"), int.from_bytes(kek.key.n, "big")).public_key()
raises("a 2048-bit KEK is refused as not supported", HttpResponseError, lambda: kc.create_rsa_key("kek2048", size=2048, key_operations=["import"]), 400, "NotSupported")
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
import os as _os


def byok_blob(kid, material):
    transfer = _os.urandom(32)
    ct = kek_pub.encrypt(transfer, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    ct += aes_key_wrap_with_padding(transfer, material)
    return json.dumps({"schema_version": "1.0.0", "header": {"kid": kid, "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
                       "ciphertext": base64.urlsafe_b64encode(ct).rstrip(b"=").decode(), "generator": "sovra test"}).encode()


brk = rsa.generate_private_key(public_exponent=65537, key_size=3072)
pkcs8 = brk.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
byok_key = kc.import_key("byok-rsa", JsonWebKey(kty="RSA-HSM", key_ops=["encrypt", "decrypt"], t=byok_blob(kek.id, pkcs8)), hardware_protected=True)
check("a BYOK RSA-3072 key is the one wrapped", byok_key.key.n == b(brk.private_numbers().public_numbers.n, 384) and byok_key.key_type == "RSA-HSM")
check("a BYOK key keeps its JWK's key_ops", sorted(byok_key.key_operations) == ["decrypt", "encrypt"], byok_key.key_operations)
bct = brk.public_key().encrypt(b"byok", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
check("the vault decrypts with the BYOK key", crypto(byok_key, admin).decrypt(EncryptionAlgorithm.rsa_oaep_256, bct).plaintext == b"byok")
aes_byok = kc.import_key("byok-aes", JsonWebKey(kty="oct-HSM", t=byok_blob(kek.id, b"\x09" * 32)))
g3 = crypto(aes_byok, admin).encrypt(EncryptionAlgorithm.a256_gcm, b"byok aes")
check("a BYOK AES key is the one wrapped", AESGCM(b"\x09" * 32).decrypt(g3.iv, g3.ciphertext + g3.tag, None) == b"byok aes")
raises("a blob for another KEK is refused", ResourceNotFoundError, lambda: kc.import_key("byok-x", JsonWebKey(kty="RSA-HSM", t=byok_blob(cfg["url"] + "/keys/no-such-kek", pkcs8))))
wrong = json.loads(byok_blob(kek.id, pkcs8))
wrong["ciphertext"] = wrong["ciphertext"][:-4] + ("AAAA" if not wrong["ciphertext"].endswith("AAAA") else "BBBB")
raises("an altered blob is refused", HttpResponseError, lambda: kc.import_key("byok-y", JsonWebKey(kty="RSA-HSM", t=json.dumps(wrong).encode())), 400)
raises("a refused BYOK import leaves no key behind", ResourceNotFoundError, lambda: kc.get_key("byok-y"))
aimp = kc.import_key("imported-aes", JsonWebKey(kty="oct", k=b"\x07" * 32, key_ops=["encrypt", "decrypt"]))
g2 = crypto(aimp, admin).encrypt(EncryptionAlgorithm.a256_gcm, b"with my key")
check("an imported AES key is the one given", AESGCM(b"\x07" * 32).decrypt(g2.iv, g2.ciphertext + g2.tag, None) == b"with my key")

# --- key attestation (7.6) ---
att = kc.get_key_attestation("ec384")
a = att.properties.attestation
stmt = a.private_key_attestation.decode() if isinstance(a.private_key_attestation, bytes) else a.private_key_attestation
claims = json.loads(b64d(stmt.split(".")[1]))
check("key attestation names the version and its HSM", claims.get("name", "").endswith("/cryptoKeys/ec384/cryptoKeyVersions/1") and b"BEGIN CERTIFICATE" in a.certificate_pem_file, claims)

att1 = kc.get_key_attestation("ec384", version="1")
check("key attestation of a named version", att1.properties.attestation.private_key_attestation == a.private_key_attestation)
check("update of a named version", kc.update_key_properties("ec256", version="1", tags={"v": "1"}).properties.tags == {"v": "1"})

# --- rotation policy ---
pol = kc.update_key_rotation_policy("aes", KeyRotationPolicy(lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")]))
got = kc.get_key_rotation_policy("aes")
check("a rotation policy sets the rotation period", got.lifetime_actions[0].time_after_create == "P30D" and got.lifetime_actions[0].action == KeyRotationPolicyAction.rotate)
raises("Notify actions are refused as not supported", HttpResponseError, lambda: kc.update_key_rotation_policy("aes", KeyRotationPolicy(lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D")])), 400, "NotSupported")

print("checks failed:", len(failed))
sys.exit(1 if failed else 0)
