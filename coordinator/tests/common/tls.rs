//! Throw-away credentials for the authentication and TLS tests: a self-signed CA, a server
//! certificate it signs for `localhost` and 127.0.0.1, and coordinators that require them.

use coordinator::client::{ClientOptions, Token};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::{config, start_with, TestServer};

/// A CA and the server certificate and key it signed, PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A fresh CA and a server certificate for `localhost` and 127.0.0.1.
pub fn pki() -> TestPki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "lottery-sweep test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).expect("self-signed ca");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &*issuer)
        .expect("server certificate");
    TestPki {
        ca_pem: issuer.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A coordinator requiring a token, over TLS when `tls`, with what its clients need.
pub struct SecureServer {
    pub t: TestServer,
    pub token: Token,
    pub pki: Option<TestPki>,
}

impl SecureServer {
    /// The right token, and the right CA when the server speaks TLS.
    pub fn options(&self) -> ClientOptions {
        let options = ClientOptions::none().with_token(self.token.clone());
        match &self.pki {
            Some(pki) => options.with_tls_ca(pki.ca_pem.as_bytes()),
            None => options,
        }
    }

    pub fn url(&self) -> String {
        self.t.url()
    }
}

/// Starts a coordinator requiring a fresh token, over TLS when `tls`.
pub async fn start_secure(tls: bool) -> SecureServer {
    let token = Token::generate();
    let pki = tls.then(pki);
    let (t_token, t_pki) = (token.clone(), pki.clone());
    let t = start_with(move |dir| {
        let config = config(dir).with_token(t_token);
        match t_pki {
            Some(pki) => config.with_tls(pki.cert_pem, pki.key_pem),
            None => config,
        }
    })
    .await;
    SecureServer { t, token, pki }
}
