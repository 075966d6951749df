//! The ACME protocol against certgate, one module per resource or
//! challenge: a real client library (instant-acme), raw JWS requests, and
//! the real clients (certbot from Debian and from PyPI, lego) against the
//! built binary, with a real BIND for DNS-01 and CAA.

mod acme_flow;
mod ari_certbot;
mod bad_requests;
mod caa;
mod dns01;
mod dns_persist;
mod eab;
mod egress;
mod fuzz_corpus;
mod http01;
mod key_change;
mod keys_and_csrs;
mod lifecycle;
mod rate_limits;
mod real_clients;
mod resources;
mod restart;
mod revoke;
mod substitutes;
mod superseded;
mod tls_alpn01;
mod validation_retry;
