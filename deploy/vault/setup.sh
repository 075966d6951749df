#!/usr/bin/env bash
# Prepares an existing Vault for certgate, once, as a Vault operator:
#   1. a policy that lets certgate sign with one PKI role (and nothing else);
#   2. optionally (CREATE_ROLE=1) that PKI role itself;
#   3. an AppRole login bound to the policy, whose role_id is printed and whose
#      secret_id is written to a file only the operator can read.
#
# It expects the usual two-tier PKI layout to exist already: a root CA on the
# `pki` mount and an intermediate CA, signed by it, on `pki_int`. certgate signs
# with the intermediate; the root stays offline as far as certgate is concerned.
# The commented block below shows how that layout is usually created.
#
# Run it with a token allowed to write policies, auth methods and PKI roles:
#   export VAULT_ADDR=https://vault.lab.example:8200 VAULT_TOKEN=...   # or `vault login`
#   CREATE_ROLE=1 bash deploy/vault/setup.sh
# It is safe to run again: the policy, role and AppRole are overwritten with
# the same values, and a fresh secret_id replaces the file's content (the old
# secret_id stays valid until it expires or is destroyed).
#
# Settings (environment variables, with their defaults):
#   PKI_MOUNT=pki_int          PKI mount of the intermediate CA certgate signs with
#   PKI_ROLE=lab-internal      PKI role whose name rules apply to every certificate
#   ALLOWED_DOMAINS=lab.example  comma-separated domains the role allows (with subdomains)
#   MAX_TTL=2160h              longest certificate lifetime the role grants (90 days)
#   CREATE_ROLE=0              1: create or overwrite the PKI role
#   POLICY=certgate            name of the Vault policy
#   APPROLE=certgate           name of the AppRole role
#   APPROLE_MOUNT=approle      path the AppRole auth method is (or gets) mounted at
#   TOKEN_TTL=1h               life of a login token; certgate renews it at 2/3
#   TOKEN_MAX_TTL=24h          after this certgate logs in again with the secret_id
#   SECRET_ID_TTL=0            0: the secret_id never expires (rotate by re-running)
#   SECRET_ID_FILE=./certgate-secret-id  where the new secret_id is written (mode 0600)
set -euo pipefail

PKI_MOUNT=${PKI_MOUNT:-pki_int}
PKI_ROLE=${PKI_ROLE:-lab-internal}
ALLOWED_DOMAINS=${ALLOWED_DOMAINS:-lab.example}
MAX_TTL=${MAX_TTL:-2160h}
CREATE_ROLE=${CREATE_ROLE:-0}
POLICY=${POLICY:-certgate}
APPROLE=${APPROLE:-certgate}
APPROLE_MOUNT=${APPROLE_MOUNT:-approle}
TOKEN_TTL=${TOKEN_TTL:-1h}
TOKEN_MAX_TTL=${TOKEN_MAX_TTL:-24h}
SECRET_ID_TTL=${SECRET_ID_TTL:-0}
SECRET_ID_FILE=${SECRET_ID_FILE:-./certgate-secret-id}

die() {
  echo "setup.sh: $*" >&2
  exit 1
}

command -v vault >/dev/null 2>&1 || die "the vault command line is not installed"
vault token lookup >/dev/null || die "not logged in to Vault (set VAULT_ADDR and VAULT_TOKEN, or run vault login)"

# --- The PKI layout this script builds on (create it once, if you have not) ---
#
# vault secrets enable pki
# vault secrets tune -max-lease-ttl=87600h pki
# vault write -field=certificate pki/root/generate/internal \
#     common_name="Lab Root CA" issuer_name=lab-root ttl=87600h > lab-root-ca.pem
# vault write pki/config/urls \
#     issuing_certificates="$VAULT_ADDR/v1/pki/ca" crl_distribution_points="$VAULT_ADDR/v1/pki/crl"
#
# vault secrets enable -path=pki_int pki
# vault secrets tune -max-lease-ttl=43800h pki_int
# vault write -field=csr pki_int/intermediate/generate/internal \
#     common_name="Lab Intermediate CA" > pki_int.csr
# vault write -field=certificate pki/root/sign-intermediate \
#     issuer_ref=lab-root csr=@pki_int.csr format=pem_bundle ttl=43800h > pki_int.pem
# vault write pki_int/intermediate/set-signed certificate=@pki_int.pem
# vault write pki_int/config/urls \
#     issuing_certificates="$VAULT_ADDR/v1/pki_int/ca" crl_distribution_points="$VAULT_ADDR/v1/pki_int/crl"

vault read -field=certificate "$PKI_MOUNT/cert/ca_chain" >/dev/null 2>&1 ||
  die "$PKI_MOUNT has no CA certificate: create the pki -> $PKI_MOUNT layout first (see the comments in this script)"

# --- 1. The policy: sign with one role, read its rules and the chain, revoke ---
#
# `+` matches one path segment, so any issuer of the mount may be named in
# `<mount>/issuer/<ref>/sign/<role>` (a profile's issuer_ref). The two
# auth/token paths are in Vault's default policy too; they are repeated so a
# trimmed default policy cannot stop certgate renewing its own token.
vault policy write "$POLICY" - <<EOF
# certgate: sign CSRs with ${PKI_MOUNT}/roles/${PKI_ROLE}, nothing else.
path "${PKI_MOUNT}/sign/${PKI_ROLE}" {
  capabilities = ["update"]
}
path "${PKI_MOUNT}/issuer/+/sign/${PKI_ROLE}" {
  capabilities = ["update"]
}
# The role's name rules: certgate refuses an order the role would refuse at newOrder.
path "${PKI_MOUNT}/roles/${PKI_ROLE}" {
  capabilities = ["read"]
}
path "${PKI_MOUNT}/cert/ca_chain" {
  capabilities = ["read"]
}
# Revocation of certificates this mount issued.
path "${PKI_MOUNT}/revoke" {
  capabilities = ["update"]
}
# The inventory: list what the mount issued and which are revoked (each
# certificate, and the CRL, are read without a token).
path "${PKI_MOUNT}/certs" {
  capabilities = ["list"]
}
path "${PKI_MOUNT}/certs/revoked" {
  capabilities = ["list"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
EOF

# --- 2. The PKI role (only with CREATE_ROLE=1) ---
#
# key_type=any matters: a role's key_type defaults to rsa, and Vault then
# refuses every CSR with an EC key ("role requires keys of type rsa"), while
# lego (so Traefik), certbot 2.x and acme.sh send EC P-256 keys by default.
# allow_subdomains admits host.lab.example; allow_wildcard_certificates admits
# *.lab.example, which ACME clients obtain through DNS-01. `vault write`
# replaces the whole role: fields not named here return to Vault's defaults.
# max_ttl cannot exceed the mount's max-lease-ttl (vault secrets tune).
if [ "$CREATE_ROLE" = 1 ]; then
  vault write "$PKI_MOUNT/roles/$PKI_ROLE" \
    allowed_domains="$ALLOWED_DOMAINS" \
    allow_subdomains=true \
    allow_wildcard_certificates=true \
    key_type=any \
    max_ttl="$MAX_TTL"
elif ! vault read "$PKI_MOUNT/roles/$PKI_ROLE" >/dev/null 2>&1; then
  echo "warning: $PKI_MOUNT/roles/$PKI_ROLE does not exist; run again with CREATE_ROLE=1 to create it" >&2
fi

# --- 3. AppRole login for certgate ---
auth_mounts=$(vault auth list -format=json)
if ! grep -q "\"${APPROLE_MOUNT}/\"" <<<"$auth_mounts"; then
  vault auth enable -path="$APPROLE_MOUNT" approle
fi

# certgate renews its token at two thirds of token_ttl and logs in again with
# the secret_id when token_max_ttl is reached, so the secret_id must allow
# many logins (secret_id_num_uses=0).
vault write "auth/$APPROLE_MOUNT/role/$APPROLE" \
  token_policies="$POLICY" \
  token_ttl="$TOKEN_TTL" \
  token_max_ttl="$TOKEN_MAX_TTL" \
  secret_id_ttl="$SECRET_ID_TTL" \
  secret_id_num_uses=0
# To accept logins only from certgate's hosts, add for example:
#   secret_id_bound_cidrs=10.0.0.10/32 token_bound_cidrs=10.0.0.10/32

role_id=$(vault read -field=role_id "auth/$APPROLE_MOUNT/role/$APPROLE/role-id")

# The secret_id goes straight to a file created with mode 0600; it is never
# printed. certgate reads the file at every login, so replacing it rotates
# the credential without a restart.
umask 077
tmp=$(mktemp "${SECRET_ID_FILE}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
vault write -f -field=secret_id "auth/$APPROLE_MOUNT/role/$APPROLE/secret-id" >"$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$SECRET_ID_FILE"
trap - EXIT

cat <<EOF

Vault is ready for certgate.
  policy:     $POLICY (sign with $PKI_MOUNT/roles/$PKI_ROLE)
  approle:    auth/$APPROLE_MOUNT/role/$APPROLE
  role_id:    $role_id
  secret_id:  written to $SECRET_ID_FILE (mode 0600)

In certgate.toml (see deploy/vault/certgate.toml):
  [vault.auth]
  method = "approle"
  role_id = "$role_id"
  secret_id_file = "/etc/certgate/secret-id"    # copy $SECRET_ID_FILE there, readable by certgate only

Then: certgate check-config --config /etc/certgate/certgate.toml
EOF

# --- Alternatives to AppRole (run instead of step 3) ---
#
# Kubernetes: certgate logs in with its pod's service-account token.
#   vault auth enable kubernetes
#   vault write auth/kubernetes/config kubernetes_host="https://kubernetes.default.svc:443"   # the cluster's API server
#   vault write auth/kubernetes/role/certgate \
#       bound_service_account_names=certgate \
#       bound_service_account_namespaces=certgate \
#       token_policies="$POLICY" token_ttl=1h token_max_ttl=24h
# certgate.toml:
#   [vault.auth]
#   method = "kubernetes"
#   role = "certgate"
#   # jwt_file defaults to /var/run/secrets/kubernetes.io/serviceaccount/token
#
# JWT: a Nomad workload identity, on a jwt auth method mounted at jwt-nomad.
#   vault auth enable -path=jwt-nomad jwt
#   vault write auth/jwt-nomad/config \
#       jwks_url="https://nomad.lab.example:4646/.well-known/jwks.json" \
#       jwt_supported_algs=RS256,EdDSA
#   vault write auth/jwt-nomad/role/certgate-nomad - <<'JSON'
#   {
#     "role_type": "jwt",
#     "bound_audiences": ["vault.io"],
#     "user_claim": "/nomad_job_id",
#     "user_claim_json_pointer": true,
#     "bound_claims": {"nomad_job_id": "certgate"},
#     "token_type": "service",
#     "token_policies": ["certgate"],
#     "token_ttl": "1h",
#     "token_max_ttl": "24h"
#   }
#   JSON
# In the Nomad job, give the task an identity written to a file:
#   identity {
#     name = "vault_default"
#     aud  = ["vault.io"]
#     file = true
#     ttl  = "1h"
#   }
# certgate.toml:
#   [vault.auth]
#   method = "jwt"
#   mount = "jwt-nomad"
#   role = "certgate-nomad"
#   jwt_file = "/secrets/nomad_vault_default.jwt"   # the task's secrets/ directory
