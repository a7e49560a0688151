//! TLS for PostgreSQL connections: libpq's `sslmode` and `sslrootcert` in the connection string
//! (tokio-postgres itself only knows disable/prefer/require) plus the `ssl` option node-postgres
//! users know (`{ ca, rejectUnauthorized }`), on rustls through `tokio-postgres-rustls`.
//!
//! | sslmode        | encrypted            | certificate chain checked     | host name checked |
//! |----------------|----------------------|-------------------------------|-------------------|
//! | disable        | no                   | —                             | —                 |
//! | allow, prefer  | if the server offers | no (libpq: same)              | no                |
//! | require        | yes                  | only when a CA is given (libpq) | no              |
//! | verify-ca      | yes                  | yes                           | no                |
//! | verify-full    | yes                  | yes                           | yes               |
//!
//! With no `sslmode`, an `ssl` option means verify-full (node-postgres' `ssl: {}` verifies);
//! `rejectUnauthorized: false` turns every check off. Chains are checked against the given CA
//! (PEM, or the `sslrootcert` file), else the Mozilla roots (webpki-roots).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;

use crate::error::{AdapterError, Result};

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The `ssl` option of `PostgresCronAdapter`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgSslOptions {
    /// PEM certificates of the CA(s) that signed the server's certificate.
    pub ca: Option<String>,
    /// False: no certificate checks at all (encrypted, not authenticated).
    pub reject_unauthorized: Option<bool>,
}

/// What to do about TLS for one connection string.
#[derive(Debug, Clone, PartialEq)]
pub struct PgTlsPlan {
    /// The connection string with libpq-only parameters rewritten for tokio-postgres.
    pub connection_string: String,
    pub mode: PgSslMode,
    /// PEM text of the CA (from `ssl.ca` or the `sslrootcert` file).
    pub ca: Option<String>,
    /// Check the chain / the host name.
    pub verify_chain: bool,
    pub verify_host: bool,
}

impl PgTlsPlan {
    /// tokio-postgres' own mode for the rewritten string.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }
}

fn parse_mode(v: &str) -> Result<PgSslMode> {
    Ok(match v {
        "disable" => PgSslMode::Disable,
        "allow" | "prefer" => PgSslMode::Prefer,
        "require" => PgSslMode::Require,
        "verify-ca" => PgSslMode::VerifyCa,
        "verify-full" => PgSslMode::VerifyFull,
        _ => {
            return Err(AdapterError::config(
                "connectionString",
                "sslmode must be disable, allow, prefer, require, verify-ca or verify-full",
            ))
        }
    })
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`?a=b&…`) or key=value connection string and
/// puts back the sslmode tokio-postgres understands. Returns (string, sslmode, sslrootcert).
fn split_ssl_params(s: &str) -> Result<(String, Option<PgSslMode>, Option<String>)> {
    let (mut mode, mut root) = (None, None);
    let is_url = s.starts_with("postgres://") || s.starts_with("postgresql://");
    let mut take = |k: &str, v: &str| -> Result<bool> {
        match k {
            "sslmode" => mode = Some(parse_mode(v)?),
            "sslrootcert" => root = Some(v.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rebuilt = if is_url {
        match s.split_once('?') {
            None => s.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let v = percent_decode(v);
                    if !take(k, &v)? {
                        kept.push(pair.to_string());
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in s.split_whitespace() {
            let taken = match word.split_once('=') {
                Some((k, v)) => take(k.trim(), v.trim_matches('\''))?,
                None => false,
            };
            if !taken {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rebuilt, mode, root))
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Some(x) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TLS plan for a connection string and the `ssl` option.
pub fn plan(connection_string: &str, ssl: Option<&PgSslOptions>) -> Result<PgTlsPlan> {
    let (rebuilt, mode, root) = split_ssl_params(connection_string)?;
    let mode = match (mode, ssl) {
        (Some(m), _) => m,
        (None, Some(_)) => PgSslMode::VerifyFull,
        // tokio-postgres' default (prefer) without a connector was plain text: keep it plain
        (None, None) => PgSslMode::Disable,
    };
    let ca =
        match (ssl.and_then(|o| o.ca.clone()), root) {
            (Some(pem), _) => Some(pem),
            (None, Some(path)) => Some(std::fs::read_to_string(&path).map_err(|e| {
                AdapterError::config("connectionString", format!("cannot read sslrootcert {path}: {e}"))
            })?),
            (None, None) => None,
        };
    let reject = ssl.and_then(|o| o.reject_unauthorized).unwrap_or(true);
    let (verify_chain, verify_host) = match mode {
        PgSslMode::Disable | PgSslMode::Prefer => (false, false),
        PgSslMode::Require => (ca.is_some(), false),
        PgSslMode::VerifyCa => (true, false),
        PgSslMode::VerifyFull => (true, true),
    };
    let mode_text = match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Prefer => "prefer",
        _ => "require",
    };
    let connection_string = with_mode(&rebuilt, mode_text);
    Ok(PgTlsPlan {
        connection_string,
        mode,
        ca,
        verify_chain: verify_chain && reject,
        verify_host: verify_host && reject,
    })
}

fn with_mode(s: &str, mode: &str) -> String {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let sep = if s.contains('?') { '&' } else { '?' };
        format!("{s}{sep}sslmode={mode}")
    } else if s.trim().is_empty() {
        format!("sslmode={mode}")
    } else {
        format!("{s} sslmode={mode}")
    }
}

/// The rustls client config for a plan (None when the connection is never encrypted).
pub fn client_config(plan: &PgTlsPlan) -> Result<Option<ClientConfig>> {
    if plan.mode == PgSslMode::Disable {
        return Ok(None);
    }
    crate::core::tls::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    match &plan.ca {
        Some(pem) => {
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| AdapterError::config("ssl.ca", format!("not a PEM certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| AdapterError::config("ssl.ca", format!("unusable CA certificate: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(AdapterError::config("ssl.ca", "holds no PEM certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder();
    let config = if plan.verify_host {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let inner = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| AdapterError::config("ssl.ca", format!("unusable CA certificates: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Relaxed {
                inner,
                check_chain: plan.verify_chain,
            }))
            .with_no_client_auth()
    };
    Ok(Some(config))
}

/// verify-ca (chain checked, any host name) and require/no-verify (nothing checked); handshake
/// signatures are always checked by the provider.
#[derive(Debug)]
struct Relaxed {
    inner: Arc<WebPkiServerVerifier>,
    check_chain: bool,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, TlsError> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(CertificateError::NotValidForName))
            | Err(TlsError::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_are_rewritten_for_tokio_postgres() {
        let p = plan("postgres://u:p@h/db?sslmode=verify-full&application_name=x", None).unwrap();
        assert_eq!(p.mode, PgSslMode::VerifyFull);
        assert_eq!(
            p.connection_string,
            "postgres://u:p@h/db?application_name=x&sslmode=require"
        );
        assert!(p.verify_chain && p.verify_host);

        let p = plan("host=h user=u sslmode=verify-ca", None).unwrap();
        assert_eq!(p.connection_string, "host=h user=u sslmode=require");
        assert!(p.verify_chain && !p.verify_host);

        let p = plan("postgres://h/db?sslmode=require", None).unwrap();
        assert!(!p.verify_chain && !p.verify_host);
        assert_eq!(p.ssl_mode(), SslMode::Require);

        let p = plan("postgres://h/db", None).unwrap();
        assert_eq!(
            (p.mode, p.connection_string.as_str()),
            (PgSslMode::Disable, "postgres://h/db?sslmode=disable")
        );
        assert!(client_config(&p).unwrap().is_none());

        assert!(plan("postgres://h/db?sslmode=bogus", None).is_err());
    }

    #[test]
    fn the_ssl_option_verifies_unless_told_not_to() {
        let ca = PgSslOptions {
            ca: Some("x".into()),
            reject_unauthorized: None,
        };
        let p = plan("postgres://h/db", Some(&ca)).unwrap();
        assert!(p.verify_chain && p.verify_host);
        let p = plan("postgres://h/db?sslmode=require", Some(&ca)).unwrap();
        assert!(p.verify_chain && !p.verify_host); // libpq: require with a root cert = verify-ca
        let off = PgSslOptions {
            ca: None,
            reject_unauthorized: Some(false),
        };
        let p = plan("postgres://h/db?sslmode=verify-full", Some(&off)).unwrap();
        assert!(!p.verify_chain && !p.verify_host);
        assert!(client_config(&p).unwrap().is_some());
    }

    #[test]
    fn a_bad_ca_is_a_config_error() {
        let bad = PgSslOptions {
            ca: Some("not pem".into()),
            reject_unauthorized: None,
        };
        let p = plan("postgres://h/db", Some(&bad)).unwrap();
        assert!(client_config(&p).is_err());
        assert!(plan(
            "postgres://h/db?sslrootcert=/nonexistent/ca.pem&sslmode=verify-ca",
            None
        )
        .is_err());
        assert_eq!(percent_decode("%2Ftmp%2Fca.pem"), "/tmp/ca.pem");
    }
}
