# Drives Sovra's MAA-compatible API with the unmodified azure-security-attestation SDK (PyPI),
# its token validation on. Usage: maa_admin.py URL TOKEN_FILE CA_PEM MODE [KEY CERT]
# MODE unsigned: metadata, signing certificates, policies get/set/reset without a signature.
# MODE signed: the same with a policy-management key, and unsigned changes refused.
# MODE attest QUOTE RUNTIME: an SGX quote (whose report data starts with SHA-256 of RUNTIME)
#   attested as SgxEnclave (binary and JSON runtime data, a draft policy) and as OpenEnclave.
# MODE tpm MESSAGE: one message of MAA's TPM protocol (the file's text) through attest_tpm;
#   prints the answer's text, or "refused CODE".
import sys, time
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.security.attestation import (
    AttestationAdministrationClient,
    AttestationClient,
    AttestationType,
)

url, token, ca, mode = sys.argv[1], open(sys.argv[2]).read().strip(), sys.argv[3], sys.argv[4]


class SovraToken:
    def get_token(self, *scopes, **kw):
        return AccessToken(token, int(time.time()) + 3600)


POLICY = """version= 1.0;
authorizationrules { => permit(); };
issuancerules { c:[type=="x-ms-sgx-is-debuggable"] => issue(type="debuggable", value=c.value); };"""

client = AttestationClient(url, SovraToken(), connection_verify=ca)
admin = AttestationAdministrationClient(url, SovraToken(), connection_verify=ca)
if mode == "unsigned":
    meta = client.get_open_id_metadata()
    print("metadata", meta["issuer"] == url, meta["jwks_uri"] == url + "/certs")
    print("signing certificates", len(client.get_signing_certificates()) > 0)
    for t in (AttestationType.SGX_ENCLAVE, AttestationType.OPEN_ENCLAVE, AttestationType.TPM):
        policy, _ = admin.get_policy(t)
        print("default policy", t, "version=" in policy)
    result, _ = admin.set_policy(AttestationType.SGX_ENCLAVE, POLICY)
    print("set", result.policy_resolution)
    policy, _ = admin.get_policy(AttestationType.SGX_ENCLAVE)
    print("get", policy == POLICY)
    result, _ = admin.reset_policy(AttestationType.SGX_ENCLAVE)
    print("reset", result.policy_resolution)
    certs, _ = admin.get_policy_management_certificates()
    print("management certificates", len(certs))
elif mode == "tpm":
    try:
        print(client.attest_tpm(open(sys.argv[5]).read()))
    except HttpResponseError as e:
        print("refused", e.error.code if e.error else e.status_code)
elif mode == "attest":
    import hashlib, struct

    quote, runtime = open(sys.argv[5], "rb").read(), open(sys.argv[6], "rb").read()
    result, token = client.attest_sgx_enclave(quote, runtime_data=runtime)
    print("sgx mrenclave", result.mr_enclave)
    print("sgx ehd", result.enclave_held_data == runtime)
    print("sgx debuggable", result.is_debuggable)
    print("sgx issuer", result.issuer == url)
    result, _ = client.attest_sgx_enclave(quote, runtime_json=runtime)
    print("sgx runtime claims", result.runtime_claims)
    result, token = client.attest_sgx_enclave(
        quote, runtime_data=runtime, draft_policy="version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"draft\", value=true); };"
    )
    print("draft", token.algorithm, result.mr_enclave is not None)
    # Open Enclave's remote report: a 16-byte header (version 1, type 2, size) before the quote.
    report = struct.pack("<IIQ", 1, 2, len(quote)) + quote
    result, _ = client.attest_open_enclave(report, runtime_data=runtime)
    print("oe mrenclave", result.mr_enclave)
    try:
        client.attest_sgx_enclave(quote, runtime_data=runtime + b"x")
        print("other runtime data accepted")
    except HttpResponseError as e:
        print("other runtime data refused", e.status_code)
else:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(open(sys.argv[5], "rb").read(), None)
    cert = x509.load_pem_x509_certificate(open(sys.argv[6], "rb").read())
    result, _ = admin.set_policy(
        AttestationType.SGX_ENCLAVE, POLICY, signing_key=key, signing_certificate=cert
    )
    signer = result.policy_signer
    print("signed set", result.policy_resolution, signer is not None and signer.certificates[0] == cert.public_bytes(serialization.Encoding.PEM).decode())
    policy, _ = admin.get_policy(AttestationType.SGX_ENCLAVE)
    print("get", policy == POLICY)
    certs, _ = admin.get_policy_management_certificates()
    print("management certificates", len(certs))
    try:
        admin.set_policy(AttestationType.SGX_ENCLAVE, POLICY)
        print("unsigned set accepted")
    except HttpResponseError as e:
        print("unsigned set refused", e.error.code if e.error else e.status_code)
    result, _ = admin.reset_policy(
        AttestationType.SGX_ENCLAVE, signing_key=key, signing_certificate=cert
    )
    print("signed reset", result.policy_resolution)
