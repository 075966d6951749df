//! DNS answers: CAA records (RFC 8659, 8657), DNS-01 TXT records and
//! dns-persist-01 records, from the wire message up, through the same
//! conversions and decisions the resolver's callers make.

use certgate::protocol::dns_persist::PersistRecord;
use certgate::protocol::issue_value;
use certgate::validate::caa::{decide, CaaQuestion};
use certgate::validate::dns_persist::{judge, PersistQuestion, Refusals};
use certgate::validate::resolver::{caa_record, joined};
use hickory_proto::op::Message;
use hickory_proto::rr::RData;

/// The challenge types a CAA `validationmethods` may name.
const METHODS: [&str; 4] = ["http-01", "dns-01", "tls-alpn-01", "dns-persist-01"];
/// The name the records were looked up for.
const NAME: &str = "host.lab.test";
/// A key authorization's DNS-01 value the TXT records are compared with.
const KEY_AUTHORIZATION: &str = "token.thumbprint";

/// `<flags byte><DNS message>`: bit 0 asks for a wildcard, bits 1–2 pick
/// the validation method; the message's answers are read as the resolver
/// reads them.
pub fn run(data: &[u8]) {
    let Some((&flags, wire)) = data.split_first() else {
        return;
    };
    let Ok(message) = Message::from_vec(wire) else {
        return;
    };
    let wildcard = flags & 1 == 1;
    let method = METHODS[usize::from(flags >> 1) % METHODS.len()];
    let mut caa = Vec::new();
    let mut texts = Vec::new();
    for record in message.answers() {
        match record.data() {
            RData::CAA(record) => caa.push(caa_record(record)),
            RData::TXT(txt) => texts.push(joined(txt)),
            _ => {}
        }
    }
    let identities = [crate::ISSUER_DOMAIN.to_owned()];
    let ours = |uri: &str| uri == crate::ACCOUNT_URL;
    let _ = decide(
        &caa,
        &CaaQuestion {
            name: NAME,
            wildcard,
            identities: &identities,
            method,
            is_our_account: &ours,
        },
    );
    let expected = certgate::validate::dns01_txt_value(KEY_AUTHORIZATION);
    let _ = texts.contains(&expected);
    for text in &texts {
        if let Ok(record) = PersistRecord::parse(text) {
            // What certgate prints for an operator to publish reads back
            // as the same record.
            assert_eq!(PersistRecord::parse(&record.to_txt()).as_ref(), Ok(&record));
        }
        let _ = issue_value::parse(text);
    }
    let question = PersistQuestion {
        name: NAME,
        wildcard,
        issuer_domain_names: &identities,
        is_our_account: &ours,
        now: 1_800_000_000,
    };
    let mut refusals = Refusals::default();
    for (at, via_parent) in [(NAME, false), ("lab.test", true)] {
        if judge(&question, at, via_parent, &texts, &mut refusals).is_some() {
            return;
        }
    }
    let _ = refusals.into_problem(&question);
}
