# Traefik on Nomad with a certresolver that gets *.home from certgate by
# DNS-01 (RFC 2136 updates to the DNS server authoritative for home.), and
# renews it on its own. Routers come from the Consul catalog.
#
#   nomad var put nomad/jobs/traefik \
#     certgate_root=@/opt/certgate-data/ca/root.pem \
#     tsig_secret=@/etc/bind/traefik-tsig.secret
#   nomad job run deploy/nomad/traefik.nomad.hcl
#
# See deploy/nomad/README.md for the TSIG key and the host volume.

variable "image" {
  type    = string
  default = "traefik:v3.3"
}

job "traefik" {
  type        = "service"
  datacenters = ["*"]

  group "traefik" {
    count = 1

    # acme.json: the ACME account and the certificates, kept across restarts
    # so Traefik renews instead of ordering anew.
    volume "traefik-acme" {
      type      = "host"
      source    = "traefik-acme"
      read_only = false
    }

    network {
      port "web" {
        static = 80
      }
      port "websecure" {
        static = 443
      }
    }

    service {
      name     = "traefik"
      provider = "consul"
      port     = "websecure"
    }

    task "traefik" {
      driver = "docker"

      config {
        image        = var.image
        # The Consul agent on 127.0.0.1:8500, and ports 80 and 443 of the host.
        network_mode = "host"
        args = [
          "--entrypoints.web.address=:80",
          "--entrypoints.web.http.redirections.entrypoint.to=websecure",
          "--entrypoints.websecure.address=:443",
          # Every router on websecure gets its certificate from certgate, and
          # they all share one wildcard.
          "--entrypoints.websecure.http.tls.certresolver=certgate",
          "--entrypoints.websecure.http.tls.domains[0].main=*.home",
          "--providers.consulcatalog.exposedbydefault=false",
          "--providers.consulcatalog.endpoint.address=127.0.0.1:8500",
          # certgate's ACME directory, as registered in Consul by certgate.nomad.hcl.
          "--certificatesresolvers.certgate.acme.caserver=https://certgate.service.consul:8443/acme/directory",
          "--certificatesresolvers.certgate.acme.email=ops@lab.example",
          "--certificatesresolvers.certgate.acme.storage=/data/acme.json",
          # Hours: the lifetime of the certificates (the Vault role's ttl),
          # from which Traefik picks when to renew. Its default, 2160, fits
          # 90-day certificates only.
          "--certificatesresolvers.certgate.acme.certificatesduration=720",
          "--certificatesresolvers.certgate.acme.dnschallenge.provider=rfc2136",
          "--certificatesresolvers.certgate.acme.dnschallenge.resolvers=10.0.0.53:53",
        ]
      }

      volume_mount {
        volume      = "traefik-acme"
        destination = "/data"
      }

      env {
        # Traefik's ACME client (lego) trusts certgate's HTTPS certificate
        # through this root, written by the first template below.
        LEGO_CA_CERTIFICATES   = "/local/certgate-root.pem"
        RFC2136_NAMESERVER     = "10.0.0.53:53"
        RFC2136_TSIG_KEY       = "traefik"
        RFC2136_TSIG_ALGORITHM = "hmac-sha256."
      }

      # certgate's root, from <data_dir>/ca/root.pem (also served at /ca/root.pem).
      template {
        destination = "local/certgate-root.pem"
        change_mode = "restart"
        data        = <<EOF
{{ with nomadVar "nomad/jobs/traefik" }}{{ .certgate_root }}{{ end }}
EOF
      }

      # The TSIG secret, as an environment variable only this task sees.
      template {
        destination = "secrets/rfc2136.env"
        env         = true
        change_mode = "restart"
        data        = <<EOF
{{ with nomadVar "nomad/jobs/traefik" }}RFC2136_TSIG_SECRET={{ .tsig_secret }}{{ end }}
EOF
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
