//! A small authoritative DNS server for tests: every name has the A record
//! 127.0.0.1 (so HTTP-01 and TLS-ALPN-01 reach the test's own responders)
//! unless the test gives it other addresses, TXT records are whatever the
//! test sets, and names under `.invalid` do not exist. It speaks real DNS over UDP, so certgate's resolver code runs as it
//! does in production.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, TXT};
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinEncodable};
use tokio::net::UdpSocket;

type TxtRecords = Arc<Mutex<HashMap<String, Vec<String>>>>;
/// A and AAAA records of names that do not have the default 127.0.0.1.
type Addresses = Arc<Mutex<HashMap<String, Vec<IpAddr>>>>;
/// TXT questions asked so far, by name.
type TxtQueries = Arc<Mutex<HashMap<String, usize>>>;

pub struct DnsStub {
    addr: SocketAddr,
    txt: TxtRecords,
    addresses: Addresses,
    txt_queries: TxtQueries,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What the stub knows, shared with its task.
#[derive(Clone, Default)]
struct Zone {
    txt: TxtRecords,
    txt_queries: TxtQueries,
    addresses: Addresses,
}

fn answer(request: &Message, zone: &Zone) -> Message {
    let Zone {
        txt,
        txt_queries,
        addresses,
    } = zone;
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    for query in request.queries() {
        response.add_query(query.clone());
        let name = normalise(&query.name().to_ascii());
        if name.ends_with(".invalid") || name == "invalid" {
            response.set_response_code(ResponseCode::NXDomain);
            continue;
        }
        let listed = addresses.lock().unwrap().get(&name).cloned();
        let addresses = listed.unwrap_or_else(|| vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        match query.query_type() {
            RecordType::A | RecordType::AAAA => {
                for ip in addresses {
                    let rdata = match (query.query_type(), ip) {
                        (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
                        (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                        _ => continue,
                    };
                    response.add_answer(Record::from_rdata(query.name().clone(), 0, rdata));
                }
            }
            RecordType::TXT => {
                *txt_queries.lock().unwrap().entry(name.clone()).or_default() += 1;
                for value in txt.lock().unwrap().get(&name).into_iter().flatten() {
                    response.add_answer(Record::from_rdata(
                        query.name().clone(),
                        0,
                        RData::TXT(TXT::new(vec![value.clone()])),
                    ));
                }
            }
            _ => {}
        }
    }
    response
}

impl DnsStub {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A stub listening on `addr` (port 0 for any free port), for a server
    /// that must be told where to ask before the stub starts.
    pub async fn start_on(addr: SocketAddr) -> Self {
        let socket = UdpSocket::bind(addr).await.expect("bind DNS stub");
        let addr = socket.local_addr().unwrap();
        let zone = Zone::default();
        let Zone {
            txt,
            txt_queries,
            addresses,
        } = zone.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_bytes(&buf[..len]) else {
                    continue;
                };
                if let Ok(bytes) = answer(&request, &zone).to_bytes() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Self {
            addr,
            txt,
            addresses,
            txt_queries,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many TXT questions for `name` were answered so far.
    pub fn txt_queries(&self, name: &str) -> usize {
        self.txt_queries
            .lock()
            .unwrap()
            .get(&normalise(name))
            .copied()
            .unwrap_or(0)
    }

    /// Makes `name` resolve to `addrs` (A and AAAA) instead of 127.0.0.1.
    pub fn set_addresses(&self, name: &str, addrs: &[IpAddr]) {
        self.addresses
            .lock()
            .unwrap()
            .insert(normalise(name), addrs.to_vec());
    }

    /// Adds a TXT value at `name` (kept beside values already there).
    pub fn add_txt(&self, name: &str, value: &str) {
        self.txt
            .lock()
            .unwrap()
            .entry(normalise(name))
            .or_default()
            .push(value.to_owned());
    }
}
