//! TLS set-up shared by the gateway client, the simulator and our own HTTPS listener.
//!
//! Gateways use self-signed certificates, so by default the client accepts any certificate (as
//! pypowerwall does). A configured SHA-256 pin turns that into "accept exactly this certificate
//! and nothing else". Signatures in the handshake are still verified with the certificate's key,
//! so a pinned connection cannot be intercepted. Everything uses rustls with the `ring` provider
//! (aws-lc-rs does not cross-compile cleanly for our router targets).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A SHA-256 certificate fingerprint.
pub type Fingerprint = [u8; 32];

fn crypto() -> Arc<CryptoProvider> {
    Arc::new(provider::default_provider())
}

/// Parses `94:21:7C:…` or plain hex (64 digits) into a fingerprint.
pub fn parse_fingerprint(s: &str) -> Result<Fingerprint, String> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes =
        crate::wire::hex(&hex).ok_or_else(|| format!("'{s}' is not a hex SHA-256 fingerprint"))?;
    bytes
        .try_into()
        .map_err(|_| format!("'{s}' is not 32 bytes (a SHA-256 fingerprint has 64 hex digits)"))
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> Fingerprint {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Formats a fingerprint the way `openssl x509 -fingerprint -sha256` does.
pub fn format_fingerprint(fp: &Fingerprint) -> String {
    fp.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[derive(Debug)]
struct GatewayVerifier {
    pin: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for GatewayVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(pin) if fingerprint(end_entity.as_ref()) != pin => {
                Err(rustls::Error::General(format!(
                    "certificate fingerprint {} does not match the configured pin",
                    format_fingerprint(&fingerprint(end_entity.as_ref()))
                )))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Client config for a gateway: any certificate, or only the pinned one. The unpinned one is
/// made once and shared by every gateway (issue 20: some 30 KB each at a thousand gateways).
pub fn gateway_client_config(pin: Option<Fingerprint>) -> Arc<rustls::ClientConfig> {
    static ANY: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    match pin {
        None => ANY.get_or_init(|| build_client_config(None)).clone(),
        Some(_) => build_client_config(pin),
    }
}

fn build_client_config(pin: Option<Fingerprint>) -> Arc<rustls::ClientConfig> {
    let provider = crypto();
    let verifier = Arc::new(GatewayVerifier {
        pin,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // The ring provider supports the default versions; this cannot fail.
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// Server config from PEM text (certificate chain + private key).
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found in the PEM".into());
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("reading private key PEM: {e}"))?
        .ok_or("no private key found in the PEM")?;
    let config = rustls::ServerConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}

/// A fresh self-signed certificate for `names` as (cert PEM, key PEM).
pub fn self_signed(names: &[&str]) -> Result<(String, String), String> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    Ok((ck.cert.pem(), ck.key_pair.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_both_forms() {
        let colon = "94:21:7C:D1:44:90:74:4A:4C:09:9C:86:42:01:38:24:F6:ED:66:2D:18:09:23:38:EB:D1:FF:A5:80:07:C7:BB";
        let fp = parse_fingerprint(colon).unwrap();
        assert_eq!(format_fingerprint(&fp), colon);
        assert_eq!(
            parse_fingerprint(&colon.replace(':', "").to_lowercase()).unwrap(),
            fp
        );
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }

    #[test]
    fn test_certificate_fingerprint_matches_fixture_readme() {
        let pem = include_bytes!("../sim/fixtures/certs/cert.pem");
        let der = rustls_pemfile::certs(&mut &pem[..])
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            format_fingerprint(&fingerprint(der.as_ref())),
            "94:21:7C:D1:44:90:74:4A:4C:09:9C:86:42:01:38:24:F6:ED:66:2D:18:09:23:38:EB:D1:FF:A5:80:07:C7:BB"
        );
    }

    #[test]
    fn server_configs_build() {
        let cert = include_bytes!("../sim/fixtures/certs/cert.pem");
        let key = include_bytes!("../sim/fixtures/certs/key.pem");
        assert!(server_config_from_pem(cert, key).is_ok());
        assert!(server_config_from_pem(b"", key).is_err());
        let (c, k) = self_signed(&["localhost"]).unwrap();
        assert!(server_config_from_pem(c.as_bytes(), k.as_bytes()).is_ok());
    }
}
