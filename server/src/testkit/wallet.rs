//! Wallet identities made at test time with the openssl command: a root CA standing in for Apple's, an
//! intermediate standing in for WWDR, and a pass-type certificate it signed, as PEM files in a folder removed
//! on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use uuid::Uuid;

use crate::wallet::pkpass::AppleWalletFiles;

/// The pass type identifier of the test passes.
pub const TEST_PASS_TYPE_ID: &str = "pass.test.loyalty";

pub struct TestPassIdentity {
    pub dir: PathBuf,
    /// The root a verifier trusts.
    pub root_pem: PathBuf,
    pub files: AppleWalletFiles,
    /// An APNs authentication key (PKCS#8 PEM, as Apple's .p8) and its public half.
    pub apns_key: PathBuf,
    pub apns_public_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestPassIdentity {
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("loyalty-wallet-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder for the test wallet identity");
        std::fs::write(
            dir.join("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("pass.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "wwdr.key",
                "-out",
                "wwdr.csr",
                "-subj",
                "/CN=Test Worldwide Developer Relations",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "wwdr.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "2",
                "-out",
                "wwdr.pem",
                "-days",
                "2",
                "-extfile",
                "ca.ext",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "pass.key",
                "-out",
                "pass.csr",
                "-subj",
                &format!("/UID={TEST_PASS_TYPE_ID}/CN=Pass Type ID: {TEST_PASS_TYPE_ID}"),
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "pass.csr",
                "-CA",
                "wwdr.pem",
                "-CAkey",
                "wwdr.key",
                "-set_serial",
                "3",
                "-out",
                "pass.pem",
                "-days",
                "2",
                "-extfile",
                "pass.ext",
            ],
        );
        openssl(
            &dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "apns.p8",
            ],
        );
        openssl(
            &dir,
            &["pkey", "-in", "apns.p8", "-pubout", "-out", "apns.pub"],
        );
        Self {
            apns_key: dir.join("apns.p8"),
            apns_public_key: dir.join("apns.pub"),
            root_pem: dir.join("root.pem"),
            files: AppleWalletFiles {
                pass_type_id: TEST_PASS_TYPE_ID.to_owned(),
                team_id: "TEAM123456".to_owned(),
                certificate: dir.join("pass.pem"),
                key: dir.join("pass.key"),
                wwdr: dir.join("wwdr.pem"),
                images: None,
                background: "rgb(31, 95, 74)".to_owned(),
                foreground: "rgb(255, 255, 255)".to_owned(),
            },
            dir,
        }
    }

    /// Whether `signature` (DER) is a valid detached signature of `content` by a certificate chaining to the
    /// root, as `openssl smime -verify` says.
    pub fn verifies(&self, signature: &[u8], content: &[u8]) -> bool {
        let attempt = self.dir.join(format!("check-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&attempt).unwrap();
        std::fs::write(attempt.join("signature"), signature).unwrap();
        std::fs::write(attempt.join("content"), content).unwrap();
        let status = Command::new("openssl")
            .current_dir(&attempt)
            .args([
                "smime",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "signature",
                "-content",
                "content",
                "-purpose",
                "any",
                "-out",
                "/dev/null",
                "-CAfile",
            ])
            .arg(&self.root_pem)
            .output()
            .expect("running openssl smime");
        status.status.success()
    }
}

impl Drop for TestPassIdentity {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
