//! Certificates made at test time, for tests of HTTPS.

use uuid::Uuid;

/// A private certificate authority of its own and a server certificate it signed for 127.0.0.1 and
/// localhost, as PEM files in a folder removed on drop: for tests of HTTPS, where a client trusts this CA only
/// because it is told to.
pub struct TestTls {
    dir: std::path::PathBuf,
    /// The CA's certificate, for a client's extra roots.
    pub ca_pem: std::path::PathBuf,
    /// The server's certificate followed by the CA's: the chain a server presents.
    pub chain_pem: std::path::PathBuf,
    pub key_pem: std::path::PathBuf,
}

impl TestTls {
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Loyalty test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a CA key"))
            .expect("the CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&key, &ca)
            .expect("the server certificate");
        let dir = std::env::temp_dir().join(format!("loyalty-tls-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder for the test certificates");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("writing a test certificate");
            path
        };
        Self {
            ca_pem: write("ca.pem", ca.pem()),
            chain_pem: write("chain.pem", format!("{}{}", server.pem(), ca.pem())),
            key_pem: write("key.pem", key.serialize_pem()),
            dir,
        }
    }

    /// The server side, as the server binary builds it from the same files.
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        crate::tls::server_config(&self.chain_pem, &self.key_pem).expect("the test TLS identity")
    }

    /// A client that trusts this CA (beside the system's roots) and keeps cookies out of it.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca_pem).expect("the test CA file");
        reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("the test CA"))
            .build()
            .expect("an HTTPS client")
    }
}

impl Drop for TestTls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
