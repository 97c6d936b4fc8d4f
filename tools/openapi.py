import json
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def s(t, **kw): d={"type":t}; d.update(kw); return d
B64 = s("string", format="byte", description="base64")
TIME = s("string", format="date-time")
DUR = s("string", description="duration such as \"86400s\" (input also accepts m, h, d)", example="2592000s")
ALGS = ["AES_256_GCM","EC_SIGN_P256_SHA256","EC_SIGN_P384_SHA384","EC_SIGN_ED25519","RSA_SIGN_PSS_2048_SHA256","RSA_SIGN_PSS_3072_SHA256","RSA_SIGN_PSS_4096_SHA256","RSA_SIGN_PSS_4096_SHA512","RSA_SIGN_PKCS1_2048_SHA256","RSA_SIGN_PKCS1_3072_SHA256","RSA_SIGN_PKCS1_4096_SHA256","RSA_SIGN_PKCS1_4096_SHA512","RSA_DECRYPT_OAEP_2048_SHA256","RSA_DECRYPT_OAEP_3072_SHA256","RSA_DECRYPT_OAEP_4096_SHA256","HMAC_SHA256","AES_256_KEY_WRAP"]
# (crates/sovra-server/tests/openapi.rs checks these lists, the routes, the custom methods and
# the error codes against the Rust types: run this script after changing any of them.)
import os, re
_HERE = os.path.dirname(os.path.abspath(__file__))
# Every stable error code, read from the one place they are defined.
CODES = re.findall(r'= \("([A-Z0-9_]+)", \d{3}\)', open(os.path.join(_HERE, "..", "crates/sovra-proto/src/error.rs")).read())
ID = s("string", pattern="^[A-Za-z0-9_-]{1,63}$")
PRINCIPAL = s("string", pattern="^[A-Za-z0-9._@-]{1,63}$")
EVIDENCE_TYPES = ["sev-snp","az-snp-vtpm","az-tdx-vtpm","tdx","sgx","tpm","nitro","nvidia-gpu"]
# AzureGuest: Azure's guest attestation protocol; its one policy governs az-snp-vtpm and az-tdx-vtpm.
MAA_TYPES = ["SevSnpVm","SgxEnclave","OpenEnclave","TdxVm","Tpm","AzureGuest"]
SCOPE = s("string", pattern="^(\\*|locations/[A-Za-z0-9_-]{1,63}(/keyRings/[A-Za-z0-9_-]{1,63}(/cryptoKeys/[A-Za-z0-9_-]{1,63})?)?)$", description="* or a location, key-ring or crypto-key name")
DUR = s("string", pattern="^0*[0-9]{1,11}(\\.0)?[smhd]$", description="duration such as \"86400s\" (input also accepts m, h, d); at most 36500d", example="2592000s")
def nullable(schema):
    # serde reads null as "absent" for every optional member.
    if "$ref" in schema:
        return {"anyOf":[schema, {"type":"null"}]}
    if isinstance(schema.get("type"), str):
        d = dict(schema); d["type"] = [schema["type"], "null"]
        if "enum" in d: d["enum"] = d["enum"] + [None]
        return d
    return schema
def obj(props, req=(), add=False):
    props = {k: (v if k in req else nullable(v)) for k, v in props.items()}
    return {"type":"object","properties":props,"required":list(req),"additionalProperties":add}
schemas = {
 "Error": obj({"error": obj({"code": s("string", enum=CODES), "message": s("string"), "status": s("integer")}, ["code","message","status"])}, ["error"]),
 "Algorithm": s("string", enum=ALGS),
 "Purpose": s("string", enum=["ENCRYPT_DECRYPT","ASYMMETRIC_SIGN","ASYMMETRIC_DECRYPT","MAC","KEY_WRAP"]),
 "ProtectionLevel": s("string", enum=["SOFTWARE","HSM"]),
 "VersionState": s("string", enum=["ENABLED","DISABLED","DESTROY_SCHEDULED","DESTROYED"]),
 "Role": s("string", enum=["ADMINISTRATOR","CRYPTO_OFFICER","CRYPTO_USER","RELEASE_USER","POLICY_ADMINISTRATOR","AUDITOR","KEY_IMPORTER"]),
 "Location": obj({"name":s("string"),"locationId":s("string"),"hsm":s("string"),"createTime":TIME}, ["name","locationId","hsm","createTime"]),
 "KeyRing": obj({"name":s("string"),"createTime":TIME,"auditDataAccess":s("boolean")}, ["name","createTime"]),
 "VersionTemplate": obj({"algorithm":ref("Algorithm"),"protectionLevel":ref("ProtectionLevel")}, ["algorithm"]),
 "CryptoKeyVersion": obj({"name":s("string"),"state":ref("VersionState"),"algorithm":ref("Algorithm"),"protectionLevel":ref("ProtectionLevel"),"createTime":TIME,"destroyTime":TIME,"destroyEventTime":TIME,"attestation":ref("KeyAttestation"),"notBeforeTime":TIME,"expireTime":TIME}, ["name","state","algorithm","protectionLevel","createTime"]),
 "CryptoKey": obj({"name":s("string"),"purpose":ref("Purpose"),"primary":ref("CryptoKeyVersion"),"createTime":TIME,"versionTemplate":ref("VersionTemplate"),"rotationPeriod":DUR,"nextRotationTime":TIME,"destroyScheduledDuration":DUR,"labels":s("object", additionalProperties=s("string")),"exportable":s("boolean"),"releasePolicy":ref("ReleasePolicy"),"keyOps":ref("KeyOps")}, ["name","purpose","createTime","versionTemplate","destroyScheduledDuration"]),
 "KeyOps": s("array", items=s("string", enum=["encrypt","decrypt","sign","verify","wrapKey","unwrapKey"]), minItems=1, description="The only operations the key may be used for (a subset of what its purpose offers; absent: all of them)"),
 "CreateKeyRingRequest": obj({"auditDataAccess":s("boolean")}),
 "UpdateKeyRingRequest": obj({"auditDataAccess":s("boolean")}),
 "CreateCryptoKeyRequest": obj({"purpose":ref("Purpose"),"versionTemplate":ref("VersionTemplate"),"rotationPeriod":DUR,"nextRotationTime":TIME,"destroyScheduledDuration":DUR,"labels":s("object", additionalProperties=s("string")),"skipInitialVersionCreation":s("boolean"),"exportable":s("boolean"),"releasePolicy":ref("ReleasePolicy"),"keyOps":ref("KeyOps")}, ["purpose"]),
 "UpdateCryptoKeyRequest": obj({"rotationPeriod":DUR,"nextRotationTime":TIME,"labels":s("object", additionalProperties=s("string")),"versionTemplate":ref("VersionTemplate"),"releasePolicy":ref("ReleasePolicy"),"keyOps":ref("KeyOps")}),
 "UpdatePrimaryVersionRequest": obj({"cryptoKeyVersionId":s("string", pattern="^[1-9][0-9]{0,9}$")}, ["cryptoKeyVersionId"]),
 "UpdateVersionRequest": obj({"state":s("string", enum=["ENABLED","DISABLED"], description="use :destroy and :restore for destruction")}, ["state"]),
 "Empty": obj({}),
 "ListLocationsResponse": obj({"locations":s("array", items=ref("Location"))}, ["locations"]),
 "ListKeyRingsResponse": obj({"keyRings":s("array", items=ref("KeyRing")),"nextPageToken":s("string")}, ["keyRings"]),
 "ListCryptoKeysResponse": obj({"cryptoKeys":s("array", items=ref("CryptoKey")),"nextPageToken":s("string")}, ["cryptoKeys"]),
 "DeletedCryptoKey": obj({"cryptoKey":ref("CryptoKey"),"deleteTime":TIME,"purgeTime":TIME}, ["cryptoKey","deleteTime","purgeTime"]),
 "ListDeletedCryptoKeysResponse": obj({"deletedKeys":s("array", items=ref("DeletedCryptoKey")),"nextPageToken":s("string")}, ["deletedKeys"]),
 "ListVersionsResponse": obj({"cryptoKeyVersions":s("array", items=ref("CryptoKeyVersion")),"nextPageToken":s("string")}, ["cryptoKeyVersions"]),
 "EncryptRequest": obj({"plaintext":B64,"additionalAuthenticatedData":B64}, ["plaintext"]),
 "EncryptResponse": obj({"name":s("string"),"ciphertext":B64}, ["name","ciphertext"]),
 "DecryptRequest": obj({"ciphertext":B64,"additionalAuthenticatedData":B64}, ["ciphertext"]),
 "DecryptResponse": obj({"plaintext":B64,"name":s("string"),"usedPrimary":s("boolean")}, ["plaintext","name","usedPrimary"]),
 "Digest": obj({"sha256":B64,"sha384":B64,"sha512":B64}),
 "AsymmetricSignRequest": obj({"data":B64,"digest":ref("Digest")}),
 "AsymmetricSignResponse": obj({"signature":B64,"name":s("string")}, ["signature","name"]),
 "AsymmetricVerifyRequest": obj({"data":B64,"digest":ref("Digest"),"signature":B64}, ["signature"]),
 "VerifyResponse": obj({"valid":s("boolean"),"name":s("string")}, ["valid","name"]),
 "AsymmetricDecryptRequest": obj({"ciphertext":B64}, ["ciphertext"]),
 "AsymmetricDecryptResponse": obj({"plaintext":B64,"name":s("string")}, ["plaintext","name"]),
 "MacSignRequest": obj({"data":B64}, ["data"]),
 "MacSignResponse": obj({"mac":B64,"name":s("string")}, ["mac","name"]),
 "MacVerifyRequest": obj({"data":B64,"mac":B64}, ["data","mac"]),
 "KeyWrapMode": s("string", enum=["AES_KEY_WRAP_PAD","AES_KEY_WRAP"], description="AES_KEY_WRAP_PAD (RFC 5649, default): any length from 1 byte; AES_KEY_WRAP (RFC 3394): a multiple of 8 bytes, at least 16"),
 "WrapKeyRequest": obj({"key":B64,"mode":ref("KeyWrapMode")}, ["key"]),
 "WrapKeyResponse": obj({"wrappedKey":B64,"name":s("string")}, ["wrappedKey","name"]),
 "UnwrapKeyRequest": obj({"wrappedKey":B64,"mode":ref("KeyWrapMode")}, ["wrappedKey"]),
 "UnwrapKeyResponse": obj({"key":B64,"name":s("string")}, ["key","name"]),
 "PublicKey": obj({"pem":s("string"),"algorithm":ref("Algorithm"),"name":s("string")}, ["pem","algorithm","name"]),
 "GenerateRandomBytesRequest": obj({"lengthBytes":s("integer", minimum=1, maximum=1024)}, ["lengthBytes"]),
 "GenerateRandomBytesResponse": obj({"data":B64}, ["data"]),
 "CreateLocationRequest": obj({"locationId":ID}, ["locationId"]),
 "TokenInfo": obj({"id":s("string"),"principal":s("string"),"description":s("string"),"createTime":TIME,"expireTime":TIME,"revoked":s("boolean")}, ["id","principal","createTime","revoked"]),
 "CreateTokenRequest": obj({"principal":PRINCIPAL,"description":s("string", maxLength=256),"ttl":DUR}, ["principal"]),
 "CreateTokenResponse": obj({"token":s("string"),"info":ref("TokenInfo")}, ["token","info"]),
 "ListTokensResponse": obj({"tokens":s("array", items=ref("TokenInfo"))}, ["tokens"]),
 "RoleBinding": obj({"id":s("string"),"principal":s("string"),"role":ref("Role"),"scope":s("string"),"createTime":TIME}, ["id","principal","role","scope","createTime"]),
 "CreateRoleBindingRequest": obj({"principal":PRINCIPAL,"role":ref("Role"),"scope":SCOPE}, ["principal","role","scope"]),
 "ListRoleBindingsResponse": obj({"roleBindings":s("array", items=ref("RoleBinding"))}, ["roleBindings"]),
 "Quota": obj({"principal":s("string"),"symmetricPerMinute":s("integer"),"asymmetricPerMinute":s("integer"),"default":s("boolean")}, ["principal","symmetricPerMinute","asymmetricPerMinute","default"]),
 "SetQuotaRequest": obj({"symmetricPerMinute":s("integer", minimum=1, maximum=1000000000),"asymmetricPerMinute":s("integer", minimum=1, maximum=1000000000)}, ["symmetricPerMinute","asymmetricPerMinute"]),
 "Settings": obj({"defaultLocation":s("string"),"minDestroyScheduledDuration":DUR,"defaultDestroyScheduledDuration":DUR,"requireDisableBeforeDestroy":s("boolean")}, ["defaultLocation","minDestroyScheduledDuration","defaultDestroyScheduledDuration","requireDisableBeforeDestroy"]),
 "UpdateSettingsRequest": obj({"minDestroyScheduledDuration":DUR,"defaultDestroyScheduledDuration":DUR,"requireDisableBeforeDestroy":s("boolean")}),
 "WhoAmI": obj({"principal":s("string"),"tokenId":s("string"),"roleBindings":s("array", items=ref("RoleBinding"))}, ["principal","tokenId","roleBindings"]),
 "ReleasePolicy": obj({"policy":s("object",description="Azure SKR grammar 1.0.0/1.2.0 (JSON object or string)"),"immutable":s("boolean")}, ["policy"]),
 "ReleaseRequest": obj({"target":s("string",description="attestation JWT"),"nonce":s("string"),"enc":s("string",enum=["CKM_RSA_AES_KEY_WRAP","RSA_AES_KEY_WRAP_256","RSA_AES_KEY_WRAP_384"])}, ["target"]),
 "RecipientRequest": obj({"target":s("string"),"ciphertext":B64,"additionalAuthenticatedData":B64,"nonce":s("string"),"enc":s("string",enum=["CKM_RSA_AES_KEY_WRAP","RSA_AES_KEY_WRAP_256","RSA_AES_KEY_WRAP_384"])}, ["target"]),
 "ReleaseResponse": obj({"value":s("string",description="JWS signed by Sovra, Azure payload shape")}, ["value"]),
 "TrustedIssuer": obj({"issuer":s("string", pattern="^https?://[^/?#]+"),"certificates":s("array",items=s("string",description="PEM")),"jwksUri":s("string",description="https:// URL of the issuer's JWKS"),"caCertificates":s("array",items=s("string",description="PEM CA for the JWKS server's TLS certificate; default: system CAs"))}, ["issuer"]),
 "BoundData": obj({"data":s("string",description="base64url"),"dataType":s("string",enum=["Binary","JSON"])}, ["data"]),
 "AttestRequest": obj({"evidence":s("string",description="base64 evidence exactly as the platform produced it"),"certChain":s("array",items=s("string")),"collateral":s("string"),"eventLog":s("string"),"runtimeData":ref("BoundData"),"initTimeData":ref("BoundData"),"expectedNonce":s("string",description="hex"),"nonce":{}}, ["evidence"]),
 "MaaAttestRequest": obj({"report":s("string"),"quote":s("string"),"data":s("string",description="Tpm: base64url of {\"type\": \"aikcert\"}, {\"request\": JWS} (MAA's TPM protocol) or Sovra's TPM envelope"),"runtimeData":ref("BoundData"),"initTimeData":ref("BoundData"),"draftPolicyForAttestation":s("string"),"nonce":{},"AttestationInfo":s("string",description="AzureGuest: base64url of the guest's AttestationInfo JSON")}, add=True),
 "AttestResponse": obj({"token":s("string",description="JWT (RS256 by default)")}, ["token"]),
 "MaaAttestResponse": obj({"token":s("string",description="JWT (RS256 by default); for AzureGuest sealed to the vTPM key"),"data":s("string",description="Tpm with MAA's TPM protocol: base64url of the answer, {challenge, service_context} or {report}")}),
 "Provider": obj({"name":s("string"),"issuer":s("string"),"createTime":s("string")}, ["name","issuer","createTime"]),
 "PolicyInfo": obj({"evidenceType":s("string"),"language":s("string",enum=["maa","rego"]),"text":s("string"),"hash":s("string"),"isDefault":s("boolean"),"signer":s("string")}, ["evidenceType","language","text","hash","isDefault"]),
 "SetPolicyRequest": obj({"language":s("string",enum=["maa","rego"]),"policy":s("string",description="policy text, or an MAA policy JWS")}, ["policy"]),
 "ReferenceValues": obj({"name":s("string"),"values":s("object",additionalProperties=s("array",minItems=1),propertyNames=s("string",minLength=1),minProperties=1),"updateTime":s("string")}, ["values"]),
 "ChallengeRequest": obj({"ekPublic":B64,"ekCertificate":B64,"ekCertChain":s("array",items=B64),"akPublic":B64}, ["ekPublic","ekCertificate","akPublic"]),
 "ImportCollateralRequest": obj({"kind":s("string",enum=["amd-certs","intel","trust-anchor","policy-signer"]),"platform":s("string"),"content":s("string",description="base64")}, ["kind","content"]),
 "CollateralInfo": obj({"id":s("string"),"kind":s("string"),"platform":s("string"),"description":s("string"),"createTime":s("string")}, ["id","kind","description","createTime"]),
 "AuditVerifyReport": obj({"records":s("integer"),"ok":s("boolean"),"firstBrokenSeq":s("integer"),"problem":s("string"),"headHash":s("string")}, ["records","ok","headHash"]),
 # HSM-held keys (docs/hsm.md): key attestation, import, the security domain, unsealing.
 "KeyAttestation": dict(obj({"format":s("string",enum=["SOVRA_JWS_ES256"]),"content":s("string")}, ["format","content"]), description="A key attestation statement: a compact JWS (ES256) whose x5c carries the HSM attestation certificate and the owner root (docs/hsm.md)."),
 "KeyAttestationRoots": obj({"ownerRoot":s("string"),"attestationCertificate":s("string")}, ["ownerRoot","attestationCertificate"]),
 "SetKeyAttestationRootsRequest": obj({"ownerRoot":s("string",maxLength=65536),"attestationCertificate":s("string",maxLength=65536)}, ["ownerRoot","attestationCertificate"]),
 "KeyAttestationCsr": obj({"csr":s("string")}, ["csr"]),
 "RotateKeyAttestationResponse": obj({"publicKeySha256":s("string")}, ["publicKeySha256"]),
 "ImportMethod": s("string", enum=["RSA_OAEP_3072_SHA1_AES_256","RSA_OAEP_4096_SHA1_AES_256","RSA_OAEP_3072_SHA256_AES_256","RSA_OAEP_4096_SHA256_AES_256","RSA_OAEP_3072_SHA256","RSA_OAEP_4096_SHA256"]),
 "CreateImportJobRequest": obj({"importMethod":ref("ImportMethod"),"protectionLevel":ref("ProtectionLevel"),"ttl":dict(DUR, description="how long the job accepts imports, 1h to 30d (default 3d)", example="3d")}, ["importMethod"]),
 "ImportJob": obj({"name":s("string"),"importMethod":ref("ImportMethod"),"protectionLevel":ref("ProtectionLevel"),"state":s("string",enum=["ACTIVE","EXPIRED"]),"createTime":TIME,"expireTime":TIME,"publicKey":s("string"),"attestation":ref("KeyAttestation")}, ["name","importMethod","protectionLevel","state","createTime","expireTime","publicKey","attestation"]),
 "ImportVersionRequest": obj({"importJob":s("string",maxLength=1024),"algorithm":ref("Algorithm"),"wrappedKey":s("string",maxLength=32768),"publicKey":s("string",maxLength=16384),"cryptoKeyVersion":s("string",maxLength=1024,description="re-import into this DESTROYED, formerly imported version (full name); the material must be the one it held")}, ["importJob","algorithm","wrappedKey"]),
 "ListImportJobsResponse": obj({"importJobs":s("array",items=ref("ImportJob")),"nextPageToken":s("string")}, ["importJobs"]),
 "DownloadSecurityDomainRequest": obj({"certificates":s("array",items=s("string",maxLength=16384),minItems=3,maxItems=10,description="the administrators' certificates (PEM), each with its own RSA key of at least 2048 bits"),"quorum":s("integer",minimum=2,maximum=10,description="how many of their private keys open it (at most the number of certificates)")}, ["certificates","quorum"]),
 "DomainShare": obj({"certificateSha256":s("string",description="SHA-256 of the administrator's certificate (DER), hex"),"publicKeySha256":s("string",description="SHA-256 of its public key (SubjectPublicKeyInfo DER), hex"),"encryptedShare":s("string",description="the share, RSA-OAEP-SHA256 to that key, base64")}, ["certificateSha256","publicKeySha256","encryptedShare"]),
 "SecurityDomain": obj({"format":s("string",enum=["sovra-security-domain/1"]),"createTime":TIME,"backend":s("string",description="the HSM backend it restores (software)"),"quorum":s("integer",minimum=2,maximum=10),"shares":s("array",items=ref("DomainShare")),"ciphertext":s("string",description="the domain, AES-256-GCM under the split key, bound to every other field; base64")}, ["format","createTime","backend","quorum","shares","ciphertext"]),
 "UnsealShare": obj({"certificateSha256":s("string"),"publicKeySha256":s("string"),"encryptedShare":s("string",description="RSA-OAEP-SHA256 to the administrator's key, base64"),"commitment":s("string",description="SHA-256 commitment to the share, hex")}, ["certificateSha256","publicKeySha256","encryptedShare","commitment"]),
 "UnsealStatus": obj({"sealed":s("boolean"),"quorum":s("integer",minimum=0,maximum=10),"received":s("integer",minimum=0,maximum=10),"shares":s("array",items=ref("UnsealShare"))}, ["sealed","quorum","received"]),
}
def P(name, desc, schema=None, where="path", example=None):
    d={"name":name,"in":where,"required": where=="path","schema": schema or s("string"),"description":desc}
    if example is not None: d["example"]=example
    return d
LOC=P("location","location ID",ID,example="global"); RING=P("keyRing","key-ring ID",ID,example="ring"); KEY=P("cryptoKey","crypto-key ID",ID,example="key"); VER=P("cryptoKeyVersion","version number", s("integer", minimum=1, maximum=4294967295),example=1)
TYPE=P("type","evidence type",s("string",enum=EVIDENCE_TYPES)); PROV=P("provider","attestation provider ID",s("string",pattern="^[a-z0-9-]{1,63}$")); MAAT=P("maaType","MAA attestation type",s("string",enum=MAA_TYPES))
PRIN=P("principal","principal",PRINCIPAL)
PAGE=[P("pageSize","page size (default 100, at most 1000)", s("integer", minimum=0, maximum=1000), "query"), P("pageToken","nextPageToken of the previous page", where="query")]
def Q(name, desc, schema): d=P(name, desc, schema, "query"); d["required"]=True; return d
ERR={"description":"error","content":{"application/json":{"schema":ref("Error")}}}
def op(summary, params, req=None, resp=None, public=False, status="200", content="application/json", opid=None, media="application/json"):
    o={"summary":summary,"operationId":opid,"parameters":params,"responses":{}}
    if req:
        # A body is required where its schema has required members; an empty body is {}.
        body_schema = ref(req) if isinstance(req, str) else req
        needed = bool(schemas.get(req, {}).get("required")) if isinstance(req, str) else True
        o["requestBody"]={"required":needed,"content":{media:{"schema":body_schema}}}
    if resp: o["responses"][status]={"description":"OK","content":{content:{"schema":ref(resp) if isinstance(resp,str) else resp}}}
    else: o["responses"][status]={"description":"OK"}
    o["responses"]["4XX"]=ERR; o["responses"]["5XX"]=ERR
    if public: o["security"]=[]
    return o
K="/v1/locations/{location}/keyRings/{keyRing}/cryptoKeys/{cryptoKey}"
V=K+"/cryptoKeyVersions/{cryptoKeyVersion}"
paths={
 "/v1/locations": {"get":op("List locations",[],None,"ListLocationsResponse",opid="listLocations"),"post":op("Create a location (wrapping key in the HSM)",[],"CreateLocationRequest","Location",opid="createLocation")},
 "/v1/locations/{location}": {"get":op("Get a location",[LOC],None,"Location",opid="getLocation")},
 "/v1/locations/{location}:generateRandomBytes": {"post":op("Random bytes",[LOC],"GenerateRandomBytesRequest","GenerateRandomBytesResponse",opid="generateRandomBytes")},
 "/v1/locations/{location}/keyRings": {"get":op("List key rings",[LOC]+PAGE,None,"ListKeyRingsResponse",opid="listKeyRings"),"post":op("Create a key ring",[LOC,Q("keyRingId","new key-ring ID",ID)],"CreateKeyRingRequest","KeyRing",opid="createKeyRing")},
 "/v1/locations/{location}/keyRings/{keyRing}": {"get":op("Get a key ring",[LOC,RING],None,"KeyRing",opid="getKeyRing"),"patch":op("Update a key ring",[LOC,RING],"UpdateKeyRingRequest","KeyRing",opid="updateKeyRing")},
 "/v1/locations/{location}/keyRings/{keyRing}/cryptoKeys": {"get":op("List keys",[LOC,RING]+PAGE,None,"ListCryptoKeysResponse",opid="listCryptoKeys"),"post":op("Create a key",[LOC,RING,Q("cryptoKeyId","new key ID",ID)],"CreateCryptoKeyRequest","CryptoKey",opid="createCryptoKey")},
 K: {"get":op("Get a key",[LOC,RING,KEY],None,"CryptoKey",opid="getCryptoKey"),"patch":op("Update a key",[LOC,RING,KEY],"UpdateCryptoKeyRequest","CryptoKey",opid="updateCryptoKey")},
 K+":encrypt": {"post":op("Encrypt with the primary version",[LOC,RING,KEY],"EncryptRequest","EncryptResponse",opid="encrypt")},
 K+":decrypt": {"post":op("Decrypt (the ciphertext names its version)",[LOC,RING,KEY],"DecryptRequest","DecryptResponse",opid="decrypt")},
 K+":rotate": {"post":op("New primary version",[LOC,RING,KEY],"Empty","CryptoKey",opid="rotate")},
 K+":delete": {"post":op("Delete the key recoverably: out of reach of every API, kept for its destroyScheduledDuration, then purged (needs the rights to manage keys and destroy versions; audited)",[LOC,RING,KEY],"Empty","DeletedCryptoKey",opid="deleteCryptoKey")},
 "/v1/locations/{location}/keyRings/{keyRing}/deletedKeys": {"get":op("List a key ring's deleted keys",[LOC,RING]+PAGE,None,"ListDeletedCryptoKeysResponse",opid="listDeletedCryptoKeys")},
 "/v1/locations/{location}/keyRings/{keyRing}/deletedKeys/{cryptoKey}": {"get":op("A deleted key",[LOC,RING,KEY],None,"DeletedCryptoKey",opid="getDeletedCryptoKey")},
 "/v1/locations/{location}/keyRings/{keyRing}/deletedKeys/{cryptoKey}:recover": {"post":op("Recover a deleted key as it was",[LOC,RING,KEY],"Empty","CryptoKey",opid="recoverDeletedCryptoKey")},
 "/v1/locations/{location}/keyRings/{keyRing}/deletedKeys/{cryptoKey}:purge": {"post":op("Purge a deleted key whose retention has ended (403 PURGE_PROTECTED before its purgeTime)",[LOC,RING,KEY],"Empty","Empty",opid="purgeDeletedCryptoKey")},
 K+":updatePrimaryVersion": {"post":op("Set the primary version",[LOC,RING,KEY],"UpdatePrimaryVersionRequest","CryptoKey",opid="updatePrimaryVersion")},
 K+":asymmetricSign": {"post":op("Sign with the primary version",[LOC,RING,KEY],"AsymmetricSignRequest","AsymmetricSignResponse",opid="keyAsymmetricSign")},
 K+":asymmetricVerify": {"post":op("Verify with the primary version",[LOC,RING,KEY],"AsymmetricVerifyRequest","VerifyResponse",opid="keyAsymmetricVerify")},
 K+":asymmetricDecrypt": {"post":op("RSA-OAEP decrypt with the primary version",[LOC,RING,KEY],"AsymmetricDecryptRequest","AsymmetricDecryptResponse",opid="keyAsymmetricDecrypt")},
 K+":macSign": {"post":op("HMAC with the primary version",[LOC,RING,KEY],"MacSignRequest","MacSignResponse",opid="keyMacSign")},
 K+":macVerify": {"post":op("Check an HMAC with the primary version",[LOC,RING,KEY],"MacVerifyRequest","VerifyResponse",opid="keyMacVerify")},
 K+":wrapKey": {"post":op("AES key wrap with the primary version (KEY_WRAP keys)",[LOC,RING,KEY],"WrapKeyRequest","WrapKeyResponse",opid="keyWrapKey")},
 K+":unwrapKey": {"post":op("AES key unwrap with the primary version (400 CIPHERTEXT_INVALID if another version, mode or key wrapped it)",[LOC,RING,KEY],"UnwrapKeyRequest","UnwrapKeyResponse",opid="keyUnwrapKey")},
 K+":decryptTo": {"post":op("Decrypt; the plaintext only wrapped to an attested TEE",[LOC,RING,KEY],"RecipientRequest","ReleaseResponse",opid="decryptTo")},
 K+":generateDataKeyTo": {"post":op("New data key: ciphertext in clear, the key only wrapped to an attested TEE",[LOC,RING,KEY],"RecipientRequest","ReleaseResponse",opid="generateDataKeyTo")},
 K+":release": {"post":op("Release an exportable key to an attested TEE (primary version)",[LOC,RING,KEY],"ReleaseRequest","ReleaseResponse",opid="release")},
 K+"/publicKey": {"get":op("Public key of the primary version",[LOC,RING,KEY],None,"PublicKey",opid="keyPublicKey")},
 K+"/cryptoKeyVersions": {"get":op("List versions",[LOC,RING,KEY]+PAGE,None,"ListVersionsResponse",opid="listVersions"),"post":op("Create a version",[LOC,RING,KEY],"Empty","CryptoKeyVersion",opid="createVersion")},
 V: {"get":op("Get a version",[LOC,RING,KEY,VER],None,"CryptoKeyVersion",opid="getVersion"),"patch":op("Enable or disable a version",[LOC,RING,KEY,VER],"UpdateVersionRequest","CryptoKeyVersion",opid="updateVersion")},
 V+":destroy": {"post":op("Schedule destruction",[LOC,RING,KEY,VER],"Empty","CryptoKeyVersion",opid="destroyVersion")},
 V+":restore": {"post":op("Cancel scheduled destruction",[LOC,RING,KEY,VER],"Empty","CryptoKeyVersion",opid="restoreVersion")},
 V+":asymmetricSign": {"post":op("Sign",[LOC,RING,KEY,VER],"AsymmetricSignRequest","AsymmetricSignResponse",opid="asymmetricSign")},
 V+":asymmetricVerify": {"post":op("Verify",[LOC,RING,KEY,VER],"AsymmetricVerifyRequest","VerifyResponse",opid="asymmetricVerify")},
 V+":asymmetricDecrypt": {"post":op("RSA-OAEP decrypt",[LOC,RING,KEY,VER],"AsymmetricDecryptRequest","AsymmetricDecryptResponse",opid="asymmetricDecrypt")},
 V+":macSign": {"post":op("HMAC",[LOC,RING,KEY,VER],"MacSignRequest","MacSignResponse",opid="macSign")},
 V+":macVerify": {"post":op("Check an HMAC",[LOC,RING,KEY,VER],"MacVerifyRequest","VerifyResponse",opid="macVerify")},
 V+":wrapKey": {"post":op("AES key wrap (KEY_WRAP keys)",[LOC,RING,KEY,VER],"WrapKeyRequest","WrapKeyResponse",opid="wrapKey")},
 V+":unwrapKey": {"post":op("AES key unwrap (400 CIPHERTEXT_INVALID if another version, mode or key wrapped it)",[LOC,RING,KEY,VER],"UnwrapKeyRequest","UnwrapKeyResponse",opid="unwrapKey")},
 V+":release": {"post":op("Release a version to an attested TEE",[LOC,RING,KEY,VER],"ReleaseRequest","ReleaseResponse",opid="releaseVersion")},
 V+"/publicKey": {"get":op("Public key",[LOC,RING,KEY,VER],None,"PublicKey",opid="publicKey")},
 "/v1/tokens": {"get":op("List tokens",[],None,"ListTokensResponse",opid="listTokens"),"post":op("Create a token (secret shown once)",[],"CreateTokenRequest","CreateTokenResponse",opid="createToken")},
 "/v1/tokens/{id}": {"delete":op("Revoke a token",[P("id","token ID",s("string",pattern="^[0-9a-f]{16}$"))],None,"TokenInfo",opid="revokeToken")},
 "/v1/roleBindings": {"get":op("List role bindings",[P("principal","only this principal",PRINCIPAL,"query")],None,"ListRoleBindingsResponse",opid="listRoleBindings"),"post":op("Grant a role",[],"CreateRoleBindingRequest","RoleBinding",opid="createRoleBinding")},
 "/v1/roleBindings/{principal}/{id}": {"delete":op("Revoke a role binding",[PRIN,P("id","binding ID",ID)],None,None,status="204",opid="deleteRoleBinding")},
 "/v1/quotas/{principal}": {"get":op("Get quotas",[PRIN],None,"Quota",opid="getQuota"),"put":op("Set quotas",[PRIN],"SetQuotaRequest","Quota",opid="setQuota")},
 "/v1/settings": {"get":op("Organisation settings",[],None,"Settings",opid="getSettings"),"patch":op("Change settings",[],"UpdateSettingsRequest","Settings",opid="updateSettings")},
 "/v1/whoami": {"get":op("The caller and its roles",[],None,"WhoAmI",opid="whoami")},
 "/v1/audit": {"get":op("Audit records (JSON lines)",[P("fromSeq","first record",s("integer",minimum=1,maximum=18446744073709551615),"query"),P("limit","at most (1..10000)",s("integer",minimum=1,maximum=10000),"query")],None,s("string"),content="application/x-ndjson",opid="exportAudit")},
 "/v1/audit:verify": {"get":op("Verify the audit hash chain (and that it still holds the anchored checkpoint)",[],None,"AuditVerifyReport",opid="verifyAudit")},
 "/v1/audit:checkpoint": {"get":op("The sealed checkpoint of the audit log's head, signed for anchoring elsewhere",[],None,s("object"),opid="auditCheckpoint")},
 "/v1/trust": {"get":op("The trust configuration: pinned roots, operator anchors, policy signers, external issuers",[],None,s("object"),opid="trust")},
 "/v1/attest/{type}": {"post":op("Attest with the default provider (no token needed)",[TYPE],"AttestRequest","AttestResponse",public=True,opid="attest")},
 "/v1/attestation/providers": {"get":op("List attestation providers",[],None,s("object"),opid="listProviders")},
 "/v1/attestation/providers/{provider}": {"post":op("Create an attestation provider",[PROV],None,"Provider",opid="createProvider")},
 "/v1/attestation/providers/{provider}/attest/{type}": {"post":op("Attest with a provider (no token needed)",[PROV,TYPE],"AttestRequest","AttestResponse",public=True,opid="attestProvider")},
 "/v1/attestation/providers/{provider}/policies/{type}": {"get":op("Policy in force",[PROV,TYPE],None,"PolicyInfo",opid="getPolicy"),"put":op("Set the policy",[PROV,TYPE],"SetPolicyRequest","PolicyInfo",opid="setPolicy"),"delete":op("Back to the default policy",[PROV,TYPE],None,"PolicyInfo",opid="resetPolicy")},
 "/v1/attestation/referenceValues": {"get":op("List reference-value sets",[],None,s("object"),opid="listReferenceValues")},
 "/v1/attestation/referenceValues/{name}": {"put":op("Create or replace a reference-value set",[P("name","set name",ID)],"ReferenceValues","ReferenceValues",opid="putReferenceValues"),"delete":op("Delete a reference-value set",[P("name","set name",ID)],None,None,status="204",opid="deleteReferenceValues")},
 "/v1/attestation/collateral": {"get":op("List collateral",[],None,s("object"),opid="listCollateral"),"post":op("Import collateral",[],"ImportCollateralRequest","CollateralInfo",opid="importCollateral")},
 "/v1/attestation/collateral/{id}": {"delete":op("Delete collateral",[P("id","collateral ID",s("string",pattern="^[0-9a-f]{64}$"))],None,None,status="204",opid="deleteCollateral")},
 "/v1/attestation/signingKeys:rotate": {"post":op("Rotate the token signing key",[],"Empty",s("object"),opid="rotateSigningKey")},
 "/v1/attest/tpm/challenge": {"post":op("TPM-only machines: a credential-activation challenge for an AK, after checking the EK certificate",[],"ChallengeRequest",s("object"),public=True,opid="tpmChallenge")},
 "/v1/release/nonces": {"post":op("A single-use release nonce (5 minutes)",[],"Empty",s("object"),opid="releaseNonce")},
 "/v1/release/issuers": {"get":op("External token issuers trusted for release",[],None,s("object"),opid="listIssuers"),"post":op("Trust an external token issuer (pinned certificates or a JWKS URL)",[],"TrustedIssuer","TrustedIssuer",opid="putIssuer")},
 "/attest/{maaType}": {"post":op("MAA-compatible attest (SevSnpVm, SgxEnclave, OpenEnclave, TdxVm; Tpm: MAA's TPM protocol, {data} in and out; AzureGuest: {AttestationInfo}, the token sealed to the vTPM key)",[MAAT],"MaaAttestRequest","MaaAttestResponse",public=True,opid="maaAttest")},
 "/providers/{provider}/attest/{maaType}": {"post":op("MAA-compatible attest with a provider's policy",[PROV,MAAT],"MaaAttestRequest","MaaAttestResponse",public=True,opid="maaAttestProvider")},
 "/certs": {"get":op("JWKS of the token signing keys and of the management keys that sign MAA policy tokens",[],None,s("object"),public=True,opid="certs")},
 "/release/certs": {"get":op("JWKS of the keys that sign key-release responses (typ sovra-key-release+jwt)",[],None,s("object"),public=True,opid="releaseCerts")},
 "/.well-known/openid-configuration": {"get":op("OpenID Connect metadata",[],None,s("object"),public=True,opid="openidConfiguration")},
 "/providers/{provider}/.well-known/openid-configuration": {"get":op("OpenID Connect metadata of a provider",[PROV],None,s("object"),public=True,opid="openidConfigurationProvider")},
 "/policies/{maaType}:reset": {"post":op("MAA: back to the default policy",[MAAT],None,s("object"),opid="maaResetPolicy")},
 "/policies/{maaType}": {"get":op("MAA: get policy (token)",[MAAT],None,s("object"),opid="maaGetPolicy"),"put":op("MAA: set policy (JWS body, text/plain)",[MAAT],s("string",description="policy JWS"),s("object"),opid="maaSetPolicy",media="text/plain")},
 "/certificates": {"get":op("MAA: policy-management certificates (token with x-ms-policy-certificates)",[],None,s("object"),opid="maaGetCertificates")},
 "/certificates:add": {"post":op("MAA: add a policy-management certificate (JSON string of a JWS signed by a current one; body {policyCertificate})",[],s("string",description="JWS"),s("object"),opid="maaAddCertificate")},
 "/certificates:remove": {"post":op("MAA: remove a policy-management certificate (the last one stays)",[],s("string",description="JWS"),s("object"),opid="maaRemoveCertificate")},
 "/v1/keyAttestation/roots": {"get":op("The owner root certificate and this node's HSM key-attestation certificate (PEM)",[],None,"KeyAttestationRoots",opid="keyAttestationRoots"),"put":op("Install an owner root held by your own CA, with the certificate it issued for this node's HSM attestation key (Administrator)",[],"SetKeyAttestationRootsRequest","KeyAttestationRoots",opid="setKeyAttestationRoots")},
 "/v1/keyAttestation:rotate": {"post":op("Replace this node's HSM attestation key with a new one generated inside the HSM; the old one is destroyed, statements already made stay verifiable (Administrator; audited)",[],None,"RotateKeyAttestationResponse",opid="rotateKeyAttestation")},
 "/v1/keyAttestation:csr": {"post":op("A CSR for this node's HSM attestation key, signed inside the HSM (Administrator)",[],None,"KeyAttestationCsr",opid="keyAttestationCsr")},
 K+"/cryptoKeyVersions:import": {"post":op("Import key material wrapped to an import job's key as a new version (KEY_IMPORTER)",[LOC,RING,KEY],"ImportVersionRequest","CryptoKeyVersion",opid="importCryptoKeyVersion")},
 "/v1/locations/{location}/keyRings/{keyRing}/importJobs": {"get":op("List a key ring's import jobs",[LOC,RING]+PAGE,None,"ListImportJobsResponse",opid="listImportJobs"),"post":op("Create an import job: an RSA wrapping key generated inside the HSM (KEY_IMPORTER)",[LOC,RING,Q("importJobId","new import job ID",ID)],"CreateImportJobRequest","ImportJob",opid="createImportJob")},
 "/v1/locations/{location}/keyRings/{keyRing}/importJobs/{importJob}": {"get":op("An import job, with its wrapping key and that key's attestation statement",[LOC,RING,P("importJob","import job ID",ID,example="job")],None,"ImportJob",opid="getImportJob")},
 "/v1/securityDomain:download": {"post":op("The security domain (the software HSM's root and sealed keys), encrypted so that a quorum of the given administrators' RSA certificates opens it (Administrator; once per deployment unless hsm.security_domain_downloads = always; audited)",[],"DownloadSecurityDomainRequest","SecurityDomain",opid="downloadSecurityDomain")},
 "/v1/unseal": {"get":op("Whether this node is sealed by a quorum, and how many shares it has. A sealed node serves only this route, POST /v1/unseal (one share: {\"share\": base64}, from `sovra unseal submit`) and /healthz, answering 503 SEALED to everything else; a running node answers sealed=false.",[],None,"UnsealStatus",public=True,opid="unsealStatus")},
 "/healthz": {"get":op("Liveness",[],None,None,public=True,opid="healthz")},
 "/readyz": {"get":op("Readiness (store reachable, not shutting down)",[],None,None,public=True,opid="readyz")},
 "/metrics": {"get":op("Prometheus metrics (needs audit.read)",[],None,s("string"),content="text/plain",opid="metrics")},
 "/openapi.json": {"get":op("This document",[],None,None,public=True,opid="openapi")},
}

# --- The Azure Key Vault / Managed HSM keys API (docs/azure.md) ---
KV_VERSIONS = ["2025-07-01", "7.6", "7.5", "7.4"]
B64URL = s("string", description="base64url (padding optional on input)")
schemas.update({
 "KeyVaultError": obj({"error": obj({"code": s("string", description="Key Vault's code (KeyNotFound, BadParameter, Unauthorized, Forbidden, Conflict, NotSupported, Throttled, ...)"), "message": s("string"), "innererror": obj({"code": s("string", enum=CODES)}, ["code"], True)}, ["code","message"], True)}, ["error"], True),
 "KvJsonWebKey": obj({"kid":s("string"),"kty":s("string",enum=["RSA","RSA-HSM","EC","EC-HSM","oct","oct-HSM","OKP","OKP-HSM"]),"key_ops":s("array",items=s("string")),"n":B64URL,"e":B64URL,"crv":s("string"),"x":B64URL,"y":B64URL}, ["kid","kty","key_ops"], True),
 "KvKeyAttributes": obj({"enabled":s("boolean"),"created":s("integer"),"updated":s("integer"),"recoveryLevel":s("string"),"recoverableDays":s("integer"),"exportable":s("boolean"),"hsmPlatform":s("string"),"nbf":s("integer"),"exp":s("integer")}, [], True),
 "KvReleasePolicy": obj({"contentType":s("string"),"data":B64URL,"immutable":s("boolean")}, [], True),
 "KvKeyBundle": obj({"key":ref("KvJsonWebKey"),"attributes":ref("KvKeyAttributes"),"tags":s("object",additionalProperties=s("string")),"release_policy":ref("KvReleasePolicy")}, ["key","attributes"], True),
 "KvKeyItem": obj({"kid":s("string"),"attributes":ref("KvKeyAttributes"),"tags":s("object",additionalProperties=s("string"))}, ["kid"], True),
 "KvKeyList": obj({"value":s("array",items=ref("KvKeyItem")),"nextLink":s(["string","null"])}, ["value"], True),
 "KvDeletedKeyBundle": obj({"key":ref("KvJsonWebKey"),"attributes":ref("KvKeyAttributes"),"tags":s("object",additionalProperties=s("string")),"release_policy":ref("KvReleasePolicy"),"recoveryId":s("string"),"deletedDate":s("integer"),"scheduledPurgeDate":s("integer")}, ["attributes","recoveryId","deletedDate","scheduledPurgeDate"], True),
 "KvDeletedKeyList": obj({"value":s("array",items=obj({"kid":s("string"),"attributes":ref("KvKeyAttributes"),"tags":s("object",additionalProperties=s("string")),"recoveryId":s("string"),"deletedDate":s("integer"),"scheduledPurgeDate":s("integer")},["kid","recoveryId"],True)),"nextLink":s(["string","null"])}, ["value"], True),
 "KvImportKey": obj({"key":obj({"kty":s("string",enum=["RSA","RSA-HSM","EC","EC-HSM","oct","oct-HSM"]),"key_ops":s("array",items=s("string")),"n":B64URL,"e":B64URL,"d":B64URL,"p":B64URL,"q":B64URL,"dp":B64URL,"dq":B64URL,"qi":B64URL,"crv":s("string",enum=["P-256","P-384"]),"x":B64URL,"y":B64URL,"k":B64URL,"key_hsm":B64URL},["kty"],True),"Hsm":s("boolean"),"attributes":ref("KvAttributesIn"),"tags":s("object",additionalProperties=s("string",maxLength=256)),"release_policy":ref("KvReleasePolicy")}, ["key"], True),
 "KvRotationPolicy": obj({"id":s("string"),"lifetimeActions":s("array",items=obj({"trigger":obj({"timeAfterCreate":s("string"),"timeBeforeExpiry":s("string")},[],True),"action":obj({"type":s("string",enum=["Rotate","Notify","rotate","notify"])},["type"],True)},["trigger","action"],True)),"attributes":obj({"expiryTime":s("string",description="refused: versions do not expire"),"created":s("integer"),"updated":s("integer")},[],True)}, [], True),
 "KvAttributesIn": obj({"enabled":s("boolean"),"exportable":s("boolean"),"nbf":s("integer",minimum=0,maximum=253402300799,description="activation: before it the version is not used"),"exp":s("integer",minimum=0,maximum=253402300799,description="expiry: from it the version no longer encrypts, signs or is released; it still decrypts and verifies")}, [], True),
 "KvCreateKey": obj({"kty":s("string",enum=["RSA","RSA-HSM","EC","EC-HSM","oct","oct-HSM"]),"key_size":s("integer",enum=[256,2048,3072,4096]),"public_exponent":s("integer",enum=[65537]),"key_ops":s("array",items=s("string",enum=["encrypt","decrypt","sign","verify","wrapKey","unwrapKey","import"])),"attributes":ref("KvAttributesIn"),"tags":s("object",additionalProperties=s("string",maxLength=256)),"crv":s("string",enum=["P-256","P-384"]),"release_policy":ref("KvReleasePolicy")}, ["kty"], True),
 "KvUpdateKey": obj({"key_ops":s("array",items=s("string")),"attributes":ref("KvAttributesIn"),"tags":s("object",additionalProperties=s("string",maxLength=256)),"release_policy":ref("KvReleasePolicy")}, [], True),
 "KvOperation": obj({"alg":s("string",description="A256GCM; A256KW, CKM_AES_KEY_WRAP(_PAD); RSA-OAEP-256, RSA-OAEP, RSA1_5 (decrypted with implicit rejection); the key's signature algorithm (ES256, ES384, RS256, ...)"),"value":B64URL,"iv":B64URL,"aad":B64URL,"tag":B64URL,"digest":B64URL}, ["alg","value"], True),
 "KvOperationResult": obj({"kid":s("string"),"value":B64URL,"iv":B64URL,"tag":B64URL,"aad":B64URL}, ["value"], True),
 "KvVerifyResult": obj({"value":s("boolean")}, ["value"], True),
 "KvRelease": obj({"target":s("string",minLength=1,description="the attestation token of the TEE"),"nonce":s("string"),"enc":s("string",enum=["CKM_RSA_AES_KEY_WRAP","RSA_AES_KEY_WRAP_256","RSA_AES_KEY_WRAP_384"])}, ["target"], True),
 "KvValue": obj({"value":s("string")}, ["value"], True),
 "KvRandom": obj({"count":s("integer",minimum=1,maximum=128)}, ["count"], True),
})
KV_ERR={"description":"error (Key Vault's shape)","content":{"application/json":{"schema":ref("KeyVaultError")}}}
APIV=Q("api-version","the Key Vault api-version",s("string",enum=KV_VERSIONS))
KVN=P("name","key name",s("string",pattern="^[0-9a-zA-Z-]{1,63}$"),example="kvkey")
KVV=P("version","key version (Sovra numbers them 1, 2, ...)",s("string",pattern="^[1-9][0-9]{0,9}$"),example="1")
KVPAGE=[P("maxresults","page size, 1 to 25 (default 25)",s("integer",minimum=1,maximum=25),"query"),P("$skiptoken","from the previous page's nextLink",where="query")]
def kv(summary, params, req=None, resp=None, opid=None, status="200"):
    o=op("Key Vault: "+summary,[APIV]+params,req,resp,opid=opid,status=status)
    o["responses"]["4XX"]=KV_ERR; o["responses"]["5XX"]=KV_ERR
    return o
UNSUP=" (answers 400 NotSupported / OPERATION_UNSUPPORTED: not offered yet)"
for ver, vp, tag in (("/{version}", [KVN,KVV], "Version"), ("/", [KVN], "Current"), ("", [KVN], "CurrentCollapsed")):
    for opname, summary, resp in (("encrypt","encrypt (A256GCM; RSA-OAEP-256, RSA-OAEP, RSA1_5)","KvOperationResult"),("decrypt","decrypt","KvOperationResult"),("wrapkey","wrap a key (RSA-OAEP-256, RSA-OAEP, RSA1_5; A256KW, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD with an oct key created for wrapKey/unwrapKey)","KvOperationResult"),("unwrapkey","unwrap a key","KvOperationResult"),("sign","sign a digest with the key's algorithm (ECDSA as raw r||s)","KvOperationResult"),("verify","verify a signature over a digest","KvVerifyResult")):
        paths["/keys/{name}"+ver+"/"+opname]={"post":kv(summary,vp,"KvOperation",resp,opid="kv"+opname.capitalize()+tag)}
    paths["/keys/{name}"+ver+"/release"]={"post":kv("secure key release to an attested TEE (the native release service and policy)",vp,"KvRelease","KvValue",opid="kvRelease"+tag)}
    paths["/keys/{name}"+ver+"/attestation"]={"get":kv("the bundle with attributes.attestation: Sovra's key attestation statement (JWS) and the certificates that verify it",vp,None,"KvKeyBundle",opid="kvAttestation"+tag)}
paths.update({
 "/keys": {"get":kv("list keys",KVPAGE,None,"KvKeyList",opid="kvListKeys")},
 "/keys/restore": {"post":kv("restore a backup as the key of the same name in this vault (the same location; the name must be free)",[],"KvValue","KvKeyBundle",opid="kvRestore")},
 "/keys/{name}": {"get":kv("the current version",[KVN],None,"KvKeyBundle",opid="kvGetKeyNoSlash"),"put":kv("import a JWK with its private members, or a BYOK blob (key.key_hsm) wrapped to a KEK of this vault, as the key's new current version",[KVN],"KvImportKey","KvKeyBundle",opid="kvImport"),"delete":kv("delete recoverably: the key is kept for its destroy-scheduled duration, then purged",[KVN],None,"KvDeletedKeyBundle",opid="kvDelete")},
 "/keys/{name}/": {"get":kv("the current version",[KVN],None,"KvKeyBundle",opid="kvGetKey"),"patch":kv("update the current version (enabled, tags, release_policy)",[KVN],"KvUpdateKey","KvKeyBundle",opid="kvUpdateKey")},
 "/keys/{name}/{version}": {"get":kv("one version",[KVN,KVV],None,"KvKeyBundle",opid="kvGetVersion"),"patch":kv("update a version",[KVN,KVV],"KvUpdateKey","KvKeyBundle",opid="kvUpdateVersion")},
 "/keys/{name}/create": {"post":kv("create a key, or a new version of one of the same type; key_ops [import] makes a KEK for BYOK (RSA-3072/4096, an import job)",[KVN],"KvCreateKey","KvKeyBundle",opid="kvCreate")},
 "/keys/{name}/rotate": {"post":kv("a new current version",[KVN],None,"KvKeyBundle",opid="kvRotate")},
 "/keys/{name}/backup": {"post":kv("a backup of the key and its versions, sealed to this deployment's HSM",[KVN],None,"KvValue",opid="kvBackup")},
 "/keys/{name}/versions": {"get":kv("list versions",[KVN]+KVPAGE,None,"KvKeyList",opid="kvListVersions")},
 "/keys/{name}/rotationpolicy": {"get":kv("the key's automatic rotation as a rotation policy",[KVN],None,"KvRotationPolicy",opid="kvGetRotationPolicy"),"put":kv("set automatic rotation: one Rotate action with timeAfterCreate (oct keys; Notify and expiryTime: NotSupported)",[KVN],"KvRotationPolicy","KvRotationPolicy",opid="kvSetRotationPolicy")},
 "/deletedkeys": {"get":kv("deleted keys",KVPAGE,None,"KvDeletedKeyList",opid="kvListDeleted")},
 "/deletedkeys/{name}": {"get":kv("a deleted key",[KVN],None,"KvDeletedKeyBundle",opid="kvGetDeleted"),"delete":kv("purge a deleted key whose retention has ended (403 PURGE_PROTECTED before)",[KVN],None,None,opid="kvPurge",status="204")},
 "/deletedkeys/{name}/recover": {"post":kv("recover a deleted key",[KVN],None,"KvKeyBundle",opid="kvRecover")},
 "/rng": {"post":kv("random bytes",[],"KvRandom","KvValue",opid="kvRandom")},
})
# Managed HSM local RBAC: role definitions (the built-in roles Sovra serves) and role assignments
# (= role bindings), at the vault ("/" and "/keys" are the vault's key ring) and at a key.
schemas.update({
 "KvRoleDefinition": obj({"id":s("string"),"name":s("string"),"type":s("string"),"properties":obj({"roleName":s("string"),"description":s("string"),"type":s("string"),"permissions":s("array",items=obj({"actions":s("array",items=s("string")),"notActions":s("array",items=s("string")),"dataActions":s("array",items=s("string")),"notDataActions":s("array",items=s("string"))},[],True)),"assignableScopes":s("array",items=s("string"))},[],True)}, ["id","name","properties"], True),
 "KvRoleDefinitionList": obj({"value":s("array",items=ref("KvRoleDefinition")),"nextLink":s(["string","null"])}, ["value"], True),
 "KvRoleAssignment": obj({"id":s("string"),"name":s("string"),"type":s("string"),"properties":obj({"scope":s("string"),"roleDefinitionId":s("string"),"principalId":s("string")},[],True)}, ["id","name","properties"], True),
 "KvRoleAssignmentList": obj({"value":s("array",items=ref("KvRoleAssignment")),"nextLink":s(["string","null"])}, ["value"], True),
 "KvRoleAssignmentCreate": obj({"properties":obj({"roleDefinitionId":s("string",description="a role definition's id or GUID"),"principalId":s("string",description="the Sovra principal")},["roleDefinitionId","principalId"],True)}, ["properties"], True),
})
RDID=P("id","role definition GUID",s("string"),example="21dbd100-6940-42c2-9190-5d6cb909625b")
RAN=P("name","role assignment name (= role binding ID): 1-64 letters, digits, dashes",s("string",pattern="^[0-9a-zA-Z-]{1,64}$"),example="3611c13f-0309-4651-a121-a890181b10b7")
KVK=P("key","key name (the scope /keys/{key})",s("string",pattern="^[0-9a-zA-Z-]{1,63}$"),example="kvkey")
FILTER=P("$filter","roleName eq '...' (definitions); atScope() or principalId eq '...' (assignments)",where="query")
for prefix, pp, tag in (("", [], "Vault"), ("/keys", [], "Keys"), ("/keys/{key}", [KVK], "Key")):
    base=prefix+"/providers/Microsoft.Authorization/"
    paths[base+"roleDefinitions"]={"get":kv("Managed HSM role definitions Sovra serves (Crypto Officer, Crypto User, Crypto Auditor, Crypto Service Release User)",pp+[FILTER],None,"KvRoleDefinitionList",opid="kvListRoleDefinitions"+tag)}
    paths[base+"roleDefinitions/{id}"]={"get":kv("a role definition",pp+[RDID],None,"KvRoleDefinition",opid="kvGetRoleDefinition"+tag),
        "put":kv("custom role definitions"+UNSUP,pp+[RDID],s("object"),"KvRoleDefinition",opid="kvSetRoleDefinition"+tag),
        "delete":kv("custom role definitions"+UNSUP,pp+[RDID],None,"KvRoleDefinition",opid="kvDeleteRoleDefinition"+tag)}
    paths[base+"roleAssignments"]={"get":kv("role assignments at this scope (role bindings in the vault)",pp+[FILTER],None,"KvRoleAssignmentList",opid="kvListRoleAssignments"+tag)}
    paths[base+"roleAssignments/{name}"]={"get":kv("a role assignment",pp+[RAN],None,"KvRoleAssignment",opid="kvGetRoleAssignment"+tag),
        "put":kv("assign a role: a role binding with this ID (Administrator only; 409 if the name or the grant exists)",pp+[RAN],"KvRoleAssignmentCreate","KvRoleAssignment",opid="kvCreateRoleAssignment"+tag,status="201"),
        "delete":kv("remove a role assignment",pp+[RAN],None,"KvRoleAssignment",opid="kvDeleteRoleAssignment"+tag)}
doc={"openapi":"3.1.0","info":{"title":"Sovra native API","version":"0.1.0","license":{"name":"Apache-2.0","identifier":"Apache-2.0"},
 "description":"Key management after Cloud KMS. Binary fields are base64; errors are {\"error\":{\"code\",\"message\",\"status\"}} with stable codes. Request bodies are limited to 256 KiB by default (limits.max_body_bytes; attestation bodies 1 MiB) and must arrive within 30 s; plaintext, AAD and data fields to 64 KiB decoded. Bodies are JSON (Content-Type application/json, else 415) except the MAA policy and certificate routes, which also take text/plain. A method a route does not have is 405 with Allow."},
 "servers":[{"url":"https://127.0.0.1:8443"}],
 "security":[{"bearer":[]}],
 "components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"sovra_<id>_<secret> API token"}},"schemas":schemas},
 "paths":paths}
json.dump(doc, open(os.path.join(_HERE, "..", "crates/sovra-server/openapi.json"),"w"), indent=1)
print(len(paths))
