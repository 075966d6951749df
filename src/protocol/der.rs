//! Strict DER (X.690 §10) for what clients send us in binary: one encoding
//! per value, so that what certgate checked is byte for byte what the CA
//! reads. x509-parser is lenient (BER lengths, a wrong outer tag); a CSR
//! another parser might read differently is refused before it is parsed.

/// Nesting deeper than this does not occur in a CSR.
const MAX_DEPTH: usize = 32;

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const CONSTRUCTED: u8 = 0x20;
const CLASS_MASK: u8 = 0xc0;

/// Checks that `bytes` is exactly one DER SEQUENCE: definite, minimal
/// lengths everywhere, constructed values exactly filled by their parts,
/// universal types other than SEQUENCE and SET primitive, and INTEGER and
/// BOOLEAN in their one DER form. The reason when it is not.
pub fn check_sequence(bytes: &[u8]) -> Result<(), String> {
    match bytes.first() {
        None => return Err("it is empty".into()),
        Some(&TAG_SEQUENCE) => {}
        Some(tag) => return Err(format!("its outer tag is 0x{tag:02x}, not SEQUENCE (0x30)")),
    }
    let used = element(bytes, 0)?;
    match bytes.len() - used {
        0 => Ok(()),
        n => Err(format!("{n} bytes follow the outer SEQUENCE")),
    }
}

/// Checks the element at the start of `bytes`; the bytes it takes.
fn element(bytes: &[u8], depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err(format!("it nests deeper than {MAX_DEPTH} levels"));
    }
    let tag = *bytes.first().ok_or("an element is cut short")?;
    if tag & 0x1f == 0x1f {
        return Err("it uses a high tag number, which a CSR never does".into());
    }
    let (length, header) = length(&bytes[1..])?;
    let content = bytes
        .get(1 + header..1 + header + length)
        .ok_or("an element's length runs past its end")?;
    let universal = tag & CLASS_MASK == 0;
    if tag & CONSTRUCTED != 0 {
        if universal && tag != TAG_SEQUENCE && tag != TAG_SET {
            return Err(format!(
                "universal type 0x{tag:02x} is constructed (BER, not DER)"
            ));
        }
        let mut at = 0;
        while at < content.len() {
            at += element(&content[at..], depth + 1)?;
        }
    } else if universal {
        primitive(tag, content)?;
    }
    Ok(1 + header + length)
}

/// The DER rules for the primitive universal types whose content has a
/// single valid form and that occur in a CSR's structure.
fn primitive(tag: u8, content: &[u8]) -> Result<(), String> {
    match (tag, content) {
        (TAG_BOOLEAN, [0x00 | 0xff]) => Ok(()),
        (TAG_BOOLEAN, _) => Err("a BOOLEAN is not 0x00 or 0xff".into()),
        (TAG_INTEGER, []) => Err("an INTEGER is empty".into()),
        (TAG_INTEGER, [0x00, next, ..]) if next & 0x80 == 0 => {
            Err("an INTEGER has a superfluous leading 0x00".into())
        }
        (TAG_INTEGER, [0xff, next, ..]) if next & 0x80 != 0 => {
            Err("an INTEGER has a superfluous leading 0xff".into())
        }
        _ => Ok(()),
    }
}

/// A definite length in its shortest form, and the bytes it takes.
fn length(bytes: &[u8]) -> Result<(usize, usize), String> {
    let first = *bytes.first().ok_or("a length is cut short")?;
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 {
        return Err("it uses an indefinite length (BER, not DER)".into());
    }
    if count > 4 {
        return Err(format!("a length takes {count} bytes"));
    }
    let digits = bytes.get(1..1 + count).ok_or("a length is cut short")?;
    if digits[0] == 0 {
        return Err("a length has a leading zero byte (not DER)".into());
    }
    let value = digits
        .iter()
        .fold(0usize, |value, &digit| value << 8 | usize::from(digit));
    if value < 0x80 {
        return Err("a length below 128 is written in the long form (not DER)".into());
    }
    Ok((value, 1 + count))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One element: `tag`, a minimal length, `content`.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend(content);
        out
    }

    fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(TAG_SEQUENCE, &parts.concat())
    }

    #[test]
    fn minimal_nested_structures_pass() {
        let der = sequence(&[
            tlv(TAG_INTEGER, &[0x00]),
            tlv(TAG_INTEGER, &[0x00, 0x80]),
            tlv(TAG_INTEGER, &[0xff, 0x7f]),
            tlv(TAG_BOOLEAN, &[0xff]),
            tlv(0xa0, &tlv(TAG_SET, &tlv(0x04, &[7; 200]))),
        ]);
        assert_eq!(check_sequence(&der), Ok(()));
    }

    #[test]
    fn the_outer_element_must_be_one_sequence_and_all_of_it() {
        let good = sequence(&[tlv(TAG_INTEGER, &[1])]);
        let mut set = good.clone();
        set[0] = TAG_SET;
        assert!(check_sequence(&set)
            .unwrap_err()
            .contains("outer tag is 0x31"));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(check_sequence(&trailing)
            .unwrap_err()
            .contains("1 bytes follow"));
        assert!(check_sequence(&good[..good.len() - 1]).is_err());
        assert!(check_sequence(&[]).is_err());
    }

    #[test]
    fn ber_lengths_are_refused() {
        // Indefinite length, closed by end-of-contents.
        let indefinite = [0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00];
        assert!(check_sequence(&indefinite)
            .unwrap_err()
            .contains("indefinite"));
        // Long form for a short length, and a padded long form.
        let long_short = [0x30, 0x81, 0x03, 0x02, 0x01, 0x01];
        assert!(check_sequence(&long_short)
            .unwrap_err()
            .contains("long form"));
        let mut padded = vec![0x30, 0x82, 0x00, 0x83];
        padded.extend(tlv(0x04, &[0; 0x80]));
        assert!(check_sequence(&padded)
            .unwrap_err()
            .contains("leading zero"));
        // A part longer than its parent.
        let overrun = [0x30, 0x03, 0x02, 0x05, 0x01];
        assert!(check_sequence(&overrun).is_err());
    }

    #[test]
    fn non_minimal_values_and_constructed_primitives_are_refused() {
        for (part, why) in [
            (tlv(TAG_INTEGER, &[0x00, 0x01]), "leading 0x00"),
            (tlv(TAG_INTEGER, &[0xff, 0x80]), "leading 0xff"),
            (tlv(TAG_INTEGER, &[]), "empty"),
            (tlv(TAG_BOOLEAN, &[0x01]), "BOOLEAN"),
            (tlv(0x24, &tlv(0x04, &[1])), "constructed"),
            (vec![0x1f, 0x81, 0x00, 0x00], "high tag"),
        ] {
            let error = check_sequence(&sequence(&[part])).unwrap_err();
            assert!(error.contains(why), "{why}: {error}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut der = tlv(TAG_INTEGER, &[1]);
        for _ in 0..=MAX_DEPTH {
            der = sequence(&[der]);
        }
        assert!(check_sequence(&der).unwrap_err().contains("nests deeper"));
    }
}
