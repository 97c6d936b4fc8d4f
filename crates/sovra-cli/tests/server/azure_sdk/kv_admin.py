# Drives Sovra's Managed HSM local RBAC (role definitions and role assignments) with the
# unmodified azure-keyvault-administration SDK (PyPI) and only its public calls.
# Usage: kv_admin.py PHASE INPUT_JSON
#   PHASE assign: definitions, assignments at the vault and at a key, refusals.
#   PHASE remove: the vault-wide assignment is removed.
#   PHASE scopes: every operation at /, /keys and /keys/k1.
# Prints "ok <check>" per check and exits 1 if any failed.
import json, sys, time

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.administration import KeyVaultAccessControlClient, KeyVaultRoleScope

phase = sys.argv[1]
cfg = json.load(open(sys.argv[2]))
failed = []


def check(name, cond, detail=""):
    print("ok" if cond else "FAIL", name, "" if cond else detail)
    if not cond:
        failed.append(name)


def raises(name, exc, fn, status=None):
    try:
        fn()
    except exc as e:
        st = getattr(e, "status_code", None)
        check(name, status is None or st == status, f"status {st}: {e}")
        return
    except Exception as e:
        check(name, False, f"raised {type(e).__name__}: {e}")
        return
    check(name, False, "no exception")


class SovraToken:
    def __init__(self, t):
        self.t = t

    def get_token(self, *scopes, **kw):
        return AccessToken(self.t, int(time.time()) + 3600)


def client(url, token):
    return KeyVaultAccessControlClient(
        url, SovraToken(token), verify_challenge_resource=False, connection_verify=cfg["ca"]
    )


admin = client(cfg["url"], cfg["admin"])
name = cfg["assignment"]
if phase == "assign":
    defs = {d.role_name: d for d in admin.list_role_definitions(KeyVaultRoleScope.GLOBAL)}
    check(
        "the built-in roles Sovra serves are listed",
        set(defs) == {"Managed HSM Crypto Officer", "Managed HSM Crypto User",
                      "Managed HSM Crypto Auditor", "Managed HSM Crypto Service Release User"},
        str(sorted(defs)),
    )
    user = defs["Managed HSM Crypto User"]
    check("Azure's role IDs", user.name == "21dbd100-6940-42c2-9190-5d6cb909625b", user.name)
    got = admin.get_role_definition(KeyVaultRoleScope.GLOBAL, user.name)
    check("a definition by name", got.role_name == user.role_name and got.permissions[0].data_actions)
    a = admin.create_role_assignment(KeyVaultRoleScope.GLOBAL, user.id, "app1", name=name)
    check("an assignment at the vault", a.name == name and a.properties.principal_id == "app1"
          and a.properties.scope == "/" and a.properties.role_definition_id == user.id)
    got = admin.get_role_assignment(KeyVaultRoleScope.GLOBAL, name)
    check("read back by name", got.properties.principal_id == "app1" and got.properties.role_definition_id == user.id)
    check("listed at the vault", any(x.name == name for x in admin.list_role_assignments(KeyVaultRoleScope.GLOBAL)))
    raises("the same name again is ResourceExistsError", ResourceExistsError,
           lambda: admin.create_role_assignment(KeyVaultRoleScope.GLOBAL, user.id, "app2", name=name))
    raises("the same grant again is ResourceExistsError", ResourceExistsError,
           lambda: admin.create_role_assignment(KeyVaultRoleScope.KEYS, user.id, "app1"))
    release = defs["Managed HSM Crypto Service Release User"]
    k = admin.create_role_assignment("/keys/k1", release.id, "app1")
    check("an assignment at a key", k.properties.scope == "/keys/k1")
    at_key = {x.name for x in admin.list_role_assignments("/keys/k1")}
    check("a key lists its own and the vault's", {name, k.name} <= at_key, str(at_key))
    raises("an unknown role is ResourceNotFoundError", ResourceNotFoundError,
           lambda: admin.create_role_assignment(KeyVaultRoleScope.GLOBAL,
                                                "a290e904-7015-4bba-90c8-60543313cdb4", "app1"))
    raises("custom roles are not offered", HttpResponseError,
           lambda: admin.set_role_definition(KeyVaultRoleScope.GLOBAL, permissions=[]), 400)
    raises("only an administrator assigns roles", HttpResponseError,
           lambda: client(cfg["url"], cfg["officer"]).create_role_assignment(
               KeyVaultRoleScope.GLOBAL, user.id, "app3"), 403)
    other = client(cfg["second_url"], cfg["admin"])
    check("another vault does not list them", not any(x.name == name for x in other.list_role_assignments(KeyVaultRoleScope.GLOBAL)))
    raises("nor reads them", ResourceNotFoundError, lambda: other.get_role_assignment(KeyVaultRoleScope.GLOBAL, name))
elif phase == "scopes":
    user_id = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b"
    for scope in (KeyVaultRoleScope.GLOBAL, KeyVaultRoleScope.KEYS, "/keys/k1"):
        check(f"{scope}: definitions", len(list(admin.list_role_definitions(scope))) == 4)
        check(f"{scope}: a definition", admin.get_role_definition(scope, "21dbd100-6940-42c2-9190-5d6cb909625b").role_name == "Managed HSM Crypto User")
        raises(f"{scope}: no custom definitions", HttpResponseError, lambda: admin.set_role_definition(scope, permissions=[]), 400)
        raises(f"{scope}: nor their deletion", HttpResponseError, lambda: admin.delete_role_definition(scope, "21dbd100-6940-42c2-9190-5d6cb909625b"), 400)
        a = admin.create_role_assignment(scope, user_id, "app-" + scope.replace("/", "-"))
        check(f"{scope}: assigned", admin.get_role_assignment(scope, a.name).name == a.name)
        check(f"{scope}: listed", any(x.name == a.name for x in admin.list_role_assignments(scope)))
        admin.delete_role_assignment(scope, a.name)
        raises(f"{scope}: removed", ResourceNotFoundError, lambda: admin.get_role_assignment(scope, a.name))
elif phase == "remove":
    admin.delete_role_assignment(KeyVaultRoleScope.GLOBAL, name)
    raises("a removed assignment is gone", ResourceNotFoundError,
           lambda: admin.get_role_assignment(KeyVaultRoleScope.GLOBAL, name))

print("checks failed:", len(failed))
sys.exit(1 if failed else 0)
