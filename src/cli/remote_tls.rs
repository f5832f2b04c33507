//! Client mode's TLS with `--ca-cert`: the server's certificate must chain to the Mozilla roots or to a
//! certificate of the file (webpki, as reqwest checks it), or be exactly one of the file's certificates, which
//! also accepts a self-signed certificate marked CA:TRUE (what `openssl req -x509` makes), as curl `--cacert`
//! does.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The rustls configuration for a client that trusts the certificates of `pem` beside the Mozilla roots.
pub(super) fn client_config(pem: &[u8]) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = TrustedOrWebPki::new(pem, &provider)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What reqwest offers without its http2 feature.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// webpki refuses a certificate marked as a CA when a server presents it as its own (`CaUsedAsEndEntity`), even
/// when it is the very certificate the user said to trust. So a server certificate byte-identical to one of the
/// `--ca-cert` certificates is trusted as itself: within its validity dates and for the name connected to;
/// every other certificate goes to webpki. The handshake signature is checked either way.
#[derive(Debug)]
struct TrustedOrWebPki {
    trusted: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl TrustedOrWebPki {
    fn new(pem: &[u8], provider: &Arc<rustls::crypto::CryptoProvider>) -> Result<Self, String> {
        let trusted = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate file: {e}"))?;
        if trusted.is_empty() {
            return Err("no certificate (-----BEGIN CERTIFICATE-----) in the file".into());
        }
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for certificate in &trusted {
            roots
                .add(certificate.clone())
                .map_err(|e| format!("not a usable certificate: {e}"))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("certificate verification: {e}"))?;
        Ok(TrustedOrWebPki {
            trusted,
            webpki,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for TrustedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if !self
            .trusted
            .iter()
            .any(|trusted| trusted.as_ref() == end_entity.as_ref())
        {
            return self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        }
        let (not_before, not_after) =
            validity(end_entity).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        if now.as_secs() < not_before {
            let not_before = at(not_before);
            let valid_yet = CertificateError::NotValidYetContext {
                time: now,
                not_before,
            };
            return Err(Error::InvalidCertificate(valid_yet));
        }
        if now.as_secs() > not_after {
            let not_after = at(not_after);
            let expired = CertificateError::ExpiredContext {
                time: now,
                not_after,
            };
            return Err(Error::InvalidCertificate(expired));
        }
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A certificate's notBefore and notAfter in seconds since the epoch (RFC 5280 §4.1: the fifth field of
/// tbsCertificate, after the optional [0] version, the serial number, the signature algorithm and the issuer).
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (certificate, _) = element(der, 0x30)?;
    let (mut fields, _) = element(certificate, 0x30)?;
    if fields.first() == Some(&0xa0) {
        fields = element(fields, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30] {
        fields = element(fields, tag)?.1;
    }
    let (validity, _) = element(fields, 0x30)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

/// The contents of the DER element at the start of `input`, which must have tag `tag`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    if found != tag {
        return None;
    }
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |length, byte| length << 8 | usize::from(*byte))
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, 19YY from 50) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), in seconds since the epoch,
/// and what follows it.
fn time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (text, rest) = match input.first()? {
        0x17 => element(input, 0x17)?,
        _ => element(input, 0x18)?,
    };
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let full = match (input.first()?, text.get(..2)?.parse::<u8>().ok()?) {
        (0x17, year) if year >= 50 => format!("19{text}"),
        (0x17, _) => format!("20{text}"),
        _ => text.to_string(),
    };
    if full.len() != 14 || !full.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    Some((u64::try_from(at.and_utc().timestamp()).ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utc_and_generalized_times() {
        let utc = [&[0x17, 13][..], b"250102030405Z"].concat();
        assert_eq!(time(&utc), Some((1_735_787_045, &[][..])));
        let old = [&[0x17, 13][..], b"750101000000Z"].concat();
        assert_eq!(time(&old), Some((157_766_400, &[][..])));
        let generalized = [&[0x18, 15][..], b"20500101000000Z"].concat();
        assert_eq!(time(&generalized), Some((2_524_608_000, &[][..])));
        assert_eq!(time(&[0x17, 3, b'1', b'2', b'Z']), None);
        assert_eq!(element(&[0x30, 0x82, 0x01], 0x30), None, "a cut length");
    }

    /// A self-signed CA:TRUE certificate for `localhost`, valid until `not_after` (year), as PEM.
    fn ca_certificate(not_after: i32) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("certificate parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        let key = rcgen::KeyPair::generate().expect("a key");
        params.self_signed(&key).expect("a certificate").pem()
    }

    fn check(trusted: &str, presented: &str, name: &str) -> Result<ServerCertVerified, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = TrustedOrWebPki::new(trusted.as_bytes(), &provider).expect("a verifier");
        let presented = CertificateDer::from_pem_slice(presented.as_bytes()).expect("PEM");
        let name = ServerName::try_from(name.to_string()).expect("a server name");
        verifier.verify_server_cert(&presented, &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn a_trusted_ca_certificate_is_still_checked_for_its_dates_and_name() {
        let current = ca_certificate(4000);
        assert!(check(&current, &current, "localhost").is_ok());
        assert!(matches!(
            check(&current, &current, "example.com"),
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
        let expired = ca_certificate(2000);
        assert!(matches!(
            check(&expired, &expired, "localhost"),
            Err(Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        assert!(
            check(&ca_certificate(4000), &current, "localhost").is_err(),
            "another certificate goes to webpki, which refuses it"
        );
    }
}
