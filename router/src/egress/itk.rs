//! Delivering an ITK message: POST the SOAP envelope as received, read the HTTP response.
//!
//! HTTP 2xx is delivery. A SOAP fault with a Client code means the endpoint will never take
//! the message (dead letter); a Server fault, a 5xx, 408 or 429 mean try again later. Any other
//! 4xx without a fault is a refusal too: the request itself is what the endpoint objects to.
use std::io::{self, Write as _};

use codecs::{http1, itk};

use super::exchange::{read_more, Attempt, Exchange};
use super::verdict::{Failure, Verdict};
use crate::net::pool::BufferPool;
use crate::net::stream::Stream;
use crate::pipeline::Accepted;

/// Largest response we read.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// Sends `message` and judges the response; a response that is not delivery is left in `kept`.
pub async fn exchange(
    stream: &mut Stream,
    message: &Accepted,
    how: &Exchange<'_>,
    kept: &mut Vec<u8>,
) -> io::Result<Attempt> {
    let (endpoint, pool) = (how.endpoint, how.pool);
    let mut request = pool.take();
    let host = format!("{}:{}", endpoint.address.host, endpoint.address.port);
    let spec = http1::PostSpec {
        path: endpoint.address.path.as_deref().unwrap_or("/"),
        host: &host,
        soap_action: message.soap_action.as_deref().unwrap_or(""),
        content_type: "text/xml; charset=utf-8",
        keep_alive: true,
    };
    if let Err(e) = http1::write_post(&mut request, &spec, &message.bytes) {
        pool.give(request);
        // Nothing was sent: the request cannot be written (a SOAPAction with a control
        // character, say), and it never will be.
        return Ok(Attempt {
            verdict: Err(Failure::Unsendable(e.to_string())),
            keep: true,
        });
    }
    stream.write_pooled(request, pool).await?;

    let deadline = monoio::time::Instant::now() + how.reply_timeout;
    let mut buf = pool.take();
    let result = read_response(stream, &mut buf, deadline, pool, kept).await;
    pool.give(buf);
    result
}

async fn read_response(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    deadline: monoio::time::Instant,
    pool: &BufferPool,
    kept: &mut Vec<u8>,
) -> io::Result<Attempt> {
    let limits = http1::Limits {
        max_body: MAX_RESPONSE,
        ..http1::Limits::default()
    };
    loop {
        let (status, head_len, framing, keep_alive) = {
            let mut headers = [http1::EMPTY_HEADER; 64];
            match http1::parse_response(buf, &mut headers, &limits) {
                Ok(Some(head)) => (head.status, head.head_len, head.framing, head.keep_alive),
                Ok(None) => {
                    read_more(stream, buf, deadline, pool).await?;
                    continue;
                }
                Err(e) => {
                    return Ok(Attempt {
                        verdict: Err(Failure::BadReply(format!("unreadable HTTP response: {e}"))),
                        keep: false,
                    })
                }
            }
        };
        if (100..200).contains(&status) {
            // An interim response (100 Continue): the real one follows.
            buf.drain(..head_len);
            continue;
        }
        // The body stays in `buf`: a delivery copies nothing.
        let body = match framing {
            http1::BodyFraming::None => head_len..head_len,
            http1::BodyFraming::Length(len) => {
                let end = head_len + usize::try_from(len).unwrap_or(usize::MAX);
                while buf.len() < end {
                    read_more(stream, buf, deadline, pool).await?;
                }
                head_len..end
            }
            http1::BodyFraming::Chunked => {
                let mut decoder = http1::ChunkedDecoder::new(MAX_RESPONSE, head_len);
                let mut end = head_len;
                loop {
                    let (new_end, done) = decoder
                        .decode_vec(buf, end)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    end = new_end;
                    if done {
                        break;
                    }
                    read_more(stream, buf, deadline, pool).await?;
                }
                head_len..end
            }
            http1::BodyFraming::UntilClose => {
                loop {
                    match read_more(stream, buf, deadline, pool).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                head_len..buf.len()
            }
        };
        let body = buf.get(body).unwrap_or_default();
        let keep = keep_alive && framing != http1::BodyFraming::UntilClose;
        let verdict = judge(status, body);
        kept.clear();
        if verdict.is_err() {
            kept.extend_from_slice(body);
        } else {
            // What the message trace says the endpoint acknowledged with.
            let _ = write!(kept, "HTTP {status}");
        }
        return Ok(Attempt { verdict, keep });
    }
}

/// What an HTTP status and SOAP body mean for the message.
pub fn judge(status: u16, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Ok(());
    }
    if let Ok(response) = itk::parse_response(body) {
        if let itk::ResponseBody::Fault(fault) = response.body {
            let text = fault
                .error
                .and_then(|e| e.text)
                .and_then(|t| t.decoded().ok().map(|t| t.into_owned()))
                .or_else(|| fault.string.decoded().ok().map(|t| t.into_owned()))
                .unwrap_or_default();
            let why = format!(
                "HTTP {status}, SOAP {} fault: {text}",
                String::from_utf8_lossy(fault.code_local())
            );
            return Err(match fault.code_local() {
                b"Server" => Failure::Declined(why),
                _ => Failure::Refused(why),
            });
        }
    }
    let why = format!("HTTP {status} {}", http1::reason_phrase(status));
    Err(match status {
        408 | 429 => Failure::Declined(why),
        400..=499 => Failure::Refused(why),
        _ => Failure::Declined(why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(code: &str) -> Vec<u8> {
        format!(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:{code}</faultcode><faultstring>went wrong</faultstring></soap:Fault></soap:Body></soap:Envelope>"#
        )
        .into_bytes()
    }

    #[test]
    fn statuses_and_faults() {
        assert_eq!(judge(200, b""), Ok(()));
        assert_eq!(judge(202, b"anything"), Ok(()));
        assert!(
            matches!(judge(500, &fault("Client")), Err(Failure::Refused(w)) if w.contains("Client fault: went wrong"))
        );
        assert!(
            matches!(judge(500, &fault("Server")), Err(Failure::Declined(w)) if w.contains("Server fault"))
        );
        assert!(matches!(judge(503, b""), Err(Failure::Declined(_))));
        assert!(matches!(judge(429, b""), Err(Failure::Declined(_))));
        assert!(matches!(judge(404, b"<html/>"), Err(Failure::Refused(w)) if w.contains("404")));
    }
}
