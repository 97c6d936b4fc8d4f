package policy
import rego.v1
default allow := false
allow if {
    input.debug == false
    input.measurement in {"aa", "bb"}
}
claims := {"tier": "gold"} if allow
