# certgate as a Nomad service job: one allocation with its SQLite database on
# a host volume, Vault reached through a workload identity (the JWT auth
# method, no Vault token in the job), registered in Consul as `certgate`.
#
#   nomad job run deploy/nomad/certgate.nomad.hcl
#
# Before the first run (see deploy/nomad/README.md):
#   - the Nomad client has a host volume "certgate-data", owned by uid 65532;
#   - Vault has the JWT auth method at jwt-nomad, the role certgate-nomad
#     and the certgate policy (deploy/vault/setup.sh, its JWT alternative).

variable "image" {
  type        = string
  description = "certgate's container image, built from deploy/docker/Dockerfile"
  default     = "registry.lab.example/certgate:0.1.0"
}

job "certgate" {
  type        = "service"
  datacenters = ["*"]

  group "certgate" {
    # SQLite has one writer: one allocation. Without canaries Nomad stops
    # the old allocation before it starts the new one, so two never share
    # the database (a second certgate on the volume would exit 1: it holds
    # serve.lock in the data dir).
    count = 1

    volume "certgate-data" {
      type      = "host"
      source    = "certgate-data"
      read_only = false
    }

    network {
      # A fixed port: ACME clients keep the URLs certgate gave them.
      port "https" {
        static = 8443
      }
    }

    service {
      name     = "certgate"
      provider = "consul"
      port     = "https"
      tags     = ["acme"]

      check {
        name     = "certgate health"
        type     = "http"
        protocol = "https"
        path     = "/health"
        interval = "10s"
        timeout  = "3s"
        # certgate's HTTPS certificate comes from its own CA, which the
        # Consul agent does not trust; the check asks only "is it up".
        tls_skip_verify = true
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
        # Every connection and outbound validation is a file descriptor; the
        # usual soft limit of 1,024 is below what max_connections needs.
        ulimit {
          nofile = "65536:65536"
        }
      }

      volume_mount {
        volume      = "certgate-data"
        destination = "/var/lib/certgate"
      }

      # A JWT signed by Nomad, written to secrets/nomad_vault_default.jwt and
      # renewed by Nomad before it expires. certgate logs in to Vault with it
      # (auth/jwt-nomad/login) and reads the file again at every login.
      identity {
        name = "vault_default"
        aud  = ["vault.io"]
        file = true
        ttl  = "1h"
      }

      template {
        destination = "local/certgate.toml"
        change_mode = "restart"
        data        = <<EOF
# Written by Nomad from deploy/nomad/certgate.nomad.hcl.
listen = "0.0.0.0:8443"
data_dir = "/var/lib/certgate"
# The names clients use; certgate's own HTTPS certificate covers them.
tls_name = ["certgate.service.consul", "acme.home"]
external_url = "https://certgate.service.consul:8443"
# The DNS server authoritative for home., asked directly so a TXT record
# written a moment ago is seen (no resolver cache in between).
resolver = ["10.0.0.53"]
default_profile = "home"

[profiles.home]
issuer = "vault"
mount = "pki_int"
role = "home"
description = "home services, from Vault pki_int/home"

[vault]
address = "https://vault.service.consul:8200"
# When Vault's TLS certificate is not from a CA the image trusts, write that
# CA with one more template block and name it here:
# ca_cert = "/local/vault-ca.pem"

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
