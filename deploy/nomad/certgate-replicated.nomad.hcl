# certgate as two allocations on one PostgreSQL database, each on a node of
# its own, registered in Consul as `certgate`: Consul DNS answers
# certgate.service.consul with the replicas that are ready, and any replica
# answers any request (nonces, background work, rate limits and EAB keys
# live in the database).
#
#   nomad job run deploy/nomad/certgate-replicated.nomad.hcl
#
# Before the first run (see deploy/nomad/README.md, "Several replicas"):
#   - the Nomad variable nomad/jobs/certgate holds database_url, the CA's
#     root_pem, intermediate_pem and intermediate_key (from
#     `certgate ca create`) and eab_key; only this job can read it;
#   - Vault as for certgate.nomad.hcl (JWT auth method, role certgate-nomad).
#
# The schema is migrated by serve at start: every replica takes
# PostgreSQL's advisory lock for it, so allocations starting together apply
# each migration once, and no prestart task has to be kept in step with it.

variable "image" {
  type        = string
  description = "certgate's container image, built from deploy/docker/Dockerfile"
  default     = "registry.lab.example/certgate:0.1.0"
}

job "certgate" {
  type        = "service"
  datacenters = ["*"]

  group "certgate" {
    count = 2

    # One replica per client node: a node that fails takes one with it.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # One allocation at a time, the next once this one passes its checks:
    # the other keeps serving meanwhile.
    update {
      max_parallel     = 1
      min_healthy_time = "10s"
      health_check     = "checks"
    }

    network {
      # The same port on every node, behind certgate.service.consul:8443.
      port "https" {
        static = 8443
      }
    }

    service {
      name     = "certgate"
      provider = "consul"
      port     = "https"
      tags     = ["acme"]

      # Readiness: Consul leaves a replica out of DNS while it cannot reach
      # the database or Vault.
      check {
        name            = "certgate ready"
        type            = "http"
        protocol        = "https"
        path            = "/ready"
        interval        = "5s"
        timeout         = "3s"
        tls_skip_verify = true
      }

      # Liveness: a replica that stops answering at all is restarted.
      check {
        name            = "certgate health"
        type            = "http"
        protocol        = "https"
        path            = "/health"
        interval        = "10s"
        timeout         = "3s"
        tls_skip_verify = true

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    restart {
      attempts = 3
      interval = "10m"
      delay    = "15s"
      mode     = "delay"
    }

    task "certgate" {
      driver = "docker"

      config {
        image = var.image
        ports = ["https"]
        args  = ["serve", "--config", "/local/certgate.toml"]
        ulimit {
          nofile = "65536:65536"
        }
      }

      identity {
        name = "vault_default"
        aud  = ["vault.io"]
        file = true
        ttl  = "1h"
      }

      # CERTGATE_DATABASE_URL, which may hold a password, from the variable.
      template {
        destination = "secrets/database.env"
        env         = true
        change_mode = "restart"
        data        = <<EOF
{{ with nomadVar "nomad/jobs/certgate" }}CERTGATE_DATABASE_URL={{ .database_url }}{{ end }}
EOF
      }

      # The CA every replica signs with, and the EAB key-encryption key:
      # root's, mode 0440, group 65532 (the image's user), so certgate reads
      # them through its group and the task cannot change them.
      template {
        destination = "secrets/ca/root.pem"
        change_mode = "restart"
        perms       = "0440"
        uid         = 0
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/certgate\" }}{{ .root_pem }}{{ end }}"
      }

      template {
        destination = "secrets/ca/intermediate.pem"
        change_mode = "restart"
        perms       = "0440"
        uid         = 0
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/certgate\" }}{{ .intermediate_pem }}{{ end }}"
      }

      template {
        destination = "secrets/ca/intermediate.key"
        change_mode = "restart"
        perms       = "0440"
        uid         = 0
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/certgate\" }}{{ .intermediate_key }}{{ end }}"
      }

      template {
        destination = "secrets/eab.key"
        change_mode = "restart"
        perms       = "0440"
        uid         = 0
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/certgate\" }}{{ .eab_key }}{{ end }}"
      }

      template {
        destination = "local/certgate.toml"
        change_mode = "restart"
        data        = <<EOF
# Written by Nomad from deploy/nomad/certgate-replicated.nomad.hcl.
listen = "0.0.0.0:8443"
# Per allocation and not shared: nothing in it outlives the allocation.
data_dir = "/local/data"
ca_dir = "/secrets/ca"
eab_key_file = "/secrets/eab.key"
# The audit table in PostgreSQL is shared; the JSON lines go to the task's
# stdout, collected with the allocation's logs.
audit_log = "-"
tls_name = ["certgate.service.consul", "acme.home"]
external_url = "https://certgate.service.consul:8443"
resolver = ["10.0.0.53"]
default_profile = "home"

[profiles.home]
issuer = "vault"
mount = "pki_int"
role = "home"
description = "home services, from Vault pki_int/home"

[vault]
address = "https://vault.service.consul:8200"

[vault.auth]
method = "jwt"
mount = "jwt-nomad"
role = "certgate-nomad"
jwt_file = "/secrets/nomad_vault_default.jwt"
EOF
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
