//! The answers stand-in endpoints give, written by the codecs: an MLLP-framed HL7v2 ACK whose
//! MSA-2 is the message's MSH-10, and an HTTP response carrying SOAP.
use codecs::hl7v2::{self, Ack, AckCode, Message};
use codecs::{http1, mllp};

/// MSA-3 and the ITK fault's text when an endpoint refuses: one voice for every stand-in, so a
/// dead letter shows which side said no.
pub const REFUSAL: &str = "endpoint says no";

/// Appends the MLLP-framed ACK of `message` with `code` to `out`, and returns the message's
/// MSH-10 (empty when it has none), or `None` when the message does not parse (the ACK is then
/// the codecs' fallback, MSA-2 empty).
pub fn hl7_ack<'m>(message: &'m [u8], code: AckCode, out: &mut Vec<u8>) -> Option<&'m [u8]> {
    let ack = Ack {
        code,
        control_id: b"ENDPOINT-ACK",
        timestamp: b"20261125000000",
        text: code.is_negative().then_some(REFUSAL),
        error: None,
    };
    let mut body = Vec::with_capacity(256);
    let id = match Message::parse(message) {
        Ok(parsed) => {
            let msh = parsed.msh();
            hl7v2::write_ack(Some(&msh), &ack, &mut body);
            Some(msh.control_id().unwrap_or_default())
        }
        Err(_) => {
            hl7v2::write_ack(None, &ack, &mut body);
            None
        }
    };
    mllp::encode(&body, out);
    id
}

/// Appends an HTTP response with `status` and a SOAP `body` to `out`; refused (nothing
/// written) for a status outside 100..=999 or a body where the status allows none.
pub fn http(
    status: u16,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<(), http1::HttpError> {
    let spec = http1::ResponseSpec {
        status,
        content_type: "text/xml; charset=utf-8",
        keep_alive,
    };
    http1::write_response(out, &spec, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_names_the_message_it_answers() {
        let message =
            b"MSH|^~\\&|PAS|RX8|EPR|F1|20261125093015||ADT^A01^ADT_A01|M-1|P|2.4\rPID|1\r";
        let mut out = Vec::new();
        assert_eq!(hl7_ack(message, AckCode::AE, &mut out), Some(&b"M-1"[..]));
        let mut decoder = mllp::Decoder::new(1 << 20);
        let Some(mllp::Event::Frame(ack)) = decoder.decode(&out).event else {
            panic!("one framed ACK");
        };
        let text = String::from_utf8_lossy(ack);
        assert!(text.contains("|ACK^A01^ACK|"), "{text}");
        assert!(text.contains(&format!("MSA|AE|M-1|{REFUSAL}\r")), "{text}");

        out.clear();
        assert_eq!(hl7_ack(b"not hl7", AckCode::AA, &mut out), None);
        assert!(!out.is_empty());
    }

    #[test]
    fn a_response_carries_its_status_body_and_connection_wish() {
        let mut out = Vec::new();
        assert!(http(500, b"<fault/>", false, &mut out).is_ok());
        let mut headers = [http1::EMPTY_HEADER; 16];
        let head = http1::parse_response(&out, &mut headers, &http1::Limits::default())
            .ok()
            .flatten()
            .map(|h| (h.status, h.keep_alive, h.head_len));
        let Some((status, keep_alive, head_len)) = head else {
            panic!("a response head");
        };
        assert_eq!((status, keep_alive), (500, false));
        assert_eq!(&out[head_len..], b"<fault/>");
    }
}
