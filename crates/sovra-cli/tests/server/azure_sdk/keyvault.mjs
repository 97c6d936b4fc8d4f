// Drives Sovra's Key Vault-compatible API with the unmodified @azure/keyvault-keys SDK (npm)
// and only its public calls: a TokenCredential returning a Sovra API token, Sovra's CA trusted
// through NODE_EXTRA_CA_CERTS, challenge-resource verification off (the vault is on 127.0.0.1).
// Usage: node keyvault.mjs INPUT_JSON   (NODE_PATH: where the SDK is installed)
// Prints "ok <check>" per check and exits 1 if any failed.
import { createRequire } from "node:module";
import { createHash, createPublicKey, verify as nodeVerify } from "node:crypto";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.SDK_DIR + "/");
const { KeyClient, CryptographyClient } = require("@azure/keyvault-keys");

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const failed = [];
function check(name, cond, detail = "") {
  if (cond) console.log("ok", name);
  else {
    console.log("FAIL", name, detail);
    failed.push(name);
  }
}
async function rejects(name, fn, status, code) {
  try {
    await fn();
    check(name, false, "did not fail");
  } catch (e) {
    const ok = (status === undefined || e.statusCode === status) && (code === undefined || e.code === code);
    check(name, ok, `status ${e.statusCode} code ${e.code}: ${e.message}`);
  }
}
const credential = (token) => ({
  getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }),
});
const options = { disableChallengeResourceVerification: true };
const kc = new KeyClient(cfg.url, credential(cfg.admin), options);
const crypto = (key) => new CryptographyClient(key, credential(cfg.admin), options);

const rsaKey = await kc.createRsaKey("js-rsa", { keySize: 2048 });
check("RSA key", rsaKey.keyType === "RSA" && rsaKey.key.n.length === 256);
const ecKey = await kc.createEcKey("js-ec", { curve: "P-256", hsm: true });
check("EC-HSM key", ecKey.keyType === "EC-HSM" && ecKey.key.x.length === 32, ecKey.keyType);
const octKey = await kc.createOctKey("js-aes", { keySize: 256 });
check("oct key", octKey.keyType === "oct");
await rejects("a missing key is 404 KeyNotFound", () => kc.getKey("js-missing"), 404, "KeyNotFound");

const names = [];
for await (const page of kc.listPropertiesOfKeys().byPage({ maxPageSize: 1 })) {
  for (const p of page) names.push(p.name);
}
check("list pages through every key", names.sort().join(",") === "js-aes,js-ec,js-rsa", names.join(","));

const ct = await crypto(rsaKey).encrypt({ algorithm: "RSA-OAEP-256", plaintext: Buffer.from("a secret") });
const pt = await crypto(rsaKey).decrypt({ algorithm: "RSA-OAEP-256", ciphertext: ct.result });
check("RSA-OAEP-256 round trip", Buffer.from(pt.result).toString() === "a secret");

const digest = createHash("sha256").update("message").digest();
const sig = await crypto(ecKey).sign("ES256", digest);
const jwk = { kty: "EC", crv: "P-256", x: Buffer.from(ecKey.key.x).toString("base64url"), y: Buffer.from(ecKey.key.y).toString("base64url") };
const independent = nodeVerify("sha256", Buffer.from("message"), { key: createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "ieee-p1363" }, Buffer.from(sig.result));
check("ES256 is raw r||s and verifies with the JWK", sig.result.length === 64 && independent);
check("SDK verify", (await crypto(ecKey).verify("ES256", digest, sig.result)).result === true);

const g = await crypto(octKey).encrypt({ algorithm: "A256GCM", plaintext: Buffer.from("plain"), additionalAuthenticatedData: Buffer.from("ctx") });
const back = await crypto(octKey).decrypt({ algorithm: "A256GCM", ciphertext: g.result, iv: g.iv, authenticationTag: g.authenticationTag, additionalAuthenticatedData: Buffer.from("ctx") });
check("A256GCM round trip", Buffer.from(back.result).toString() === "plain");

const rotated = await kc.rotateKey("js-ec");
check("rotate", rotated.properties.version === "2");
const upd = await kc.updateKeyProperties("js-aes", { enabled: false, tags: { team: "b" } });
check("disable and tag", upd.properties.enabled === false && upd.properties.tags.team === "b");
await rejects("a disabled key refuses to encrypt", () => crypto(octKey).encrypt({ algorithm: "A256GCM", plaintext: Buffer.from("x") }), 403, "Forbidden");

const del = await kc.beginDeleteKey("js-rsa", { updateIntervalInMs: 100 });
const deleted = await del.pollUntilDone();
check("delete is recoverable", deleted.properties.recoveryId.endsWith("/deletedkeys/js-rsa") && deleted.properties.scheduledPurgeDate > deleted.properties.deletedOn);
await rejects("a deleted key is not found", () => kc.getKey("js-rsa"), 404);
const rec = await kc.beginRecoverDeletedKey("js-rsa", { updateIntervalInMs: 100 });
const recovered = await rec.pollUntilDone();
check("recover", recovered.id === rsaKey.id);

const other = new KeyClient(cfg.second_url, credential(cfg.admin), options);
const blob = await kc.backupKey("js-rsa");
const restored = await other.restoreKeyBackup(blob);
check("backup restored into another vault", restored.id.startsWith(cfg.second_url + "/keys/js-rsa/") && Buffer.from(restored.key.n).equals(Buffer.from(rsaKey.key.n)));
const rnd = await kc.getRandomBytes(16);
check("random bytes", rnd.length === 16);

console.log("checks failed:", failed.length);
process.exit(failed.length ? 1 : 0);
