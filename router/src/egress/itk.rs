//! Delivering an ITK message: POST the SOAP envelope as received, read the HTTP response.
//!
//! HTTP 2xx is delivery. A SOAP fault with a Client code means the endpoint will never take
//! the message (dead letter); a Server fault, a 5xx, 408 or 429 mean try again later. Any other
//! 4xx without a fault is a refusal too: the request itself is what the endpoint objects to.
use std::io;
use std::time::Duration;

use codecs::{http1, itk};

use super::exchange::{read_more, Attempt};
use super::verdict::Verdict;
use crate::net::pool::BufferPool;
use crate::net::stream::Stream;
use crate::pipeline::Accepted;
use crate::routes::Endpoint;

/// Largest response we read.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// Sends `message` to `endpoint` and judges the response. The `bool` says whether the
/// connection may be used again.
pub async fn exchange(
    stream: &mut Stream,
    endpoint: &Endpoint,
    message: &Accepted,
    reply_timeout: Duration,
    pool: &BufferPool,
) -> io::Result<Attempt> {
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
            verdict: Verdict::Refused(format!("cannot write the request: {e}")),
            keep: true,
            reply: None,
        });
    }
    stream.write_pooled(request, pool).await?;

    let deadline = monoio::time::Instant::now() + reply_timeout;
    let mut buf = pool.take();
    let result = read_response(stream, &mut buf, deadline, pool).await;
    pool.give(buf);
    result
}

async fn read_response(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    deadline: monoio::time::Instant,
    pool: &BufferPool,
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
                        verdict: Verdict::Retry(format!("unreadable HTTP response: {e}")),
                        keep: false,
                        reply: None,
                    })
                }
            }
        };
        if (100..200).contains(&status) {
            // An interim response (100 Continue): the real one follows.
            buf.drain(..head_len);
            continue;
        }
        let body = match framing {
            http1::BodyFraming::None => Vec::new(),
            http1::BodyFraming::Length(len) => {
                let end = head_len + usize::try_from(len).unwrap_or(usize::MAX);
                while buf.len() < end {
                    read_more(stream, buf, deadline, pool).await?;
                }
                buf[head_len..end].to_vec()
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
                buf[head_len..end].to_vec()
            }
            http1::BodyFraming::UntilClose => {
                loop {
                    match read_more(stream, buf, deadline, pool).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                buf[head_len..].to_vec()
            }
        };
        let keep = keep_alive && framing != http1::BodyFraming::UntilClose;
        let verdict = judge(status, &body);
        let reply = matches!(verdict, Verdict::Refused(_)).then_some(body);
        return Ok(Attempt {
            verdict,
            keep,
            reply,
        });
    }
}

/// What an HTTP status and SOAP body mean for the message.
pub fn judge(status: u16, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Delivered;
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
            return match fault.code_local() {
                b"Server" => Verdict::Retry(why),
                _ => Verdict::Refused(why),
            };
        }
    }
    let why = format!("HTTP {status} {}", http1::reason_phrase(status));
    match status {
        408 | 429 => Verdict::Retry(why),
        400..=499 => Verdict::Refused(why),
        _ => Verdict::Retry(why),
    }
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
        assert_eq!(judge(200, b""), Verdict::Delivered);
        assert_eq!(judge(202, b"anything"), Verdict::Delivered);
        assert!(
            matches!(judge(500, &fault("Client")), Verdict::Refused(w) if w.contains("Client fault: went wrong"))
        );
        assert!(
            matches!(judge(500, &fault("Server")), Verdict::Retry(w) if w.contains("Server fault"))
        );
        assert!(matches!(judge(503, b""), Verdict::Retry(_)));
        assert!(matches!(judge(429, b""), Verdict::Retry(_)));
        assert!(matches!(judge(404, b"<html/>"), Verdict::Refused(w) if w.contains("404")));
    }
}
